"""The resource with every k0sctl release users run, through the real `out` step against the k0sctl double:
the resource decides whether a restore happens (v0.34 refuses `--restore-from` onto a running cluster,
MODELLED from its release notes), `collect_logs` after a failure, and flags gated by release."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.steps.test_apply_reset import k0s_archive, put
from tests.support import OLDER, PINNED
from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.resource import Resource

MODELLED = "v0.34.0"
RELEASES = (OLDER, PINNED, "v0.33.0", MODELLED)


def apply_commands(double: Double) -> list[list[str]]:
    return [argv for argv in double.commands() if argv[:1] == ["apply"]]


@pytest.mark.parametrize("release", RELEASES)
def test_the_upgrade_of_a_running_cluster_with_restore_from_works(resource: Resource, workdir: Path, double: Double,
                                                                   release: str) -> None:
    """The sample pipeline's install passes restore_from on every apply: on a running cluster the archive is
    left alone, and --restore-from never reaches k0sctl (v0.34 would refuse the whole apply)."""
    double.set(running=True, k0s_version="v1.31.2+k0s.0")
    k0s_archive(workdir / "snap.tar.gz")
    run = resource.put(put({"command": "apply", "restore_from": "snap.tar.gz"}), workdir,
                       env={"K0SCTL_DOUBLE_VERSION": release}).expect_ok()
    assert run.metadata["restored"] == "false"
    assert "NOT restored: k0s is already running on 192.0.2.10:22" in run.stderr
    dry, real = apply_commands(double)
    assert "--dry-run" in dry and "--restore-from" not in dry
    assert "--dry-run" not in real and "--restore-from" not in real
    assert double.state().get("restores") in (None, [])


@pytest.mark.parametrize("release", RELEASES)
def test_a_stopped_cluster_is_restored(resource: Resource, workdir: Path, double: Double, release: str) -> None:
    k0s_archive(workdir / "snap.tar.gz")
    run = resource.put(put({"command": "apply", "restore_from": "snap.tar.gz", "restore": "required"}), workdir,
                       env={"K0SCTL_DOUBLE_VERSION": release}).expect_ok()
    assert run.metadata["restored"] == "true"
    assert "--restore-from" in apply_commands(double)[-1]
    assert len(double.state()["restores"]) == 1


def test_a_refusal_after_the_check_is_one_error_line(resource: Resource, workdir: Path, double: Double) -> None:
    """k0s starts between the resource's dry run and its apply (a race): v0.34 refuses the restore."""
    double.set(running_after_dry_run=True)
    k0s_archive(workdir / "snap.tar.gz")
    run = resource.put(put({"command": "apply", "restore_from": "snap.tar.gz", "collect_logs": "never"}), workdir,
                       env={"K0SCTL_DOUBLE_VERSION": MODELLED})
    assert run.returncode != 0 and len(run.error_lines) == 1, run.stderr
    assert run.error_lines[0].startswith("error: k0sctl refused the restore: k0s started on a controller after")
    assert "refusing to restore cluster state onto a running cluster" in run.error_lines[0]


def test_a_skip_after_the_check_is_reported(resource: Resource, workdir: Path, double: Double) -> None:
    """The same race with a release that skips the restore without a word."""
    double.set(running_after_dry_run=True)
    k0s_archive(workdir / "snap.tar.gz")
    auto = resource.put(put({"command": "apply", "restore_from": "snap.tar.gz"}), workdir).expect_ok()
    assert auto.metadata["restored"] == "false" and "NOT restored" in auto.stderr
    double.set(running=False, running_after_dry_run=True)
    required = resource.put(put({"command": "apply", "restore_from": "snap.tar.gz", "restore": "required"}),
                            workdir)
    assert required.returncode != 0 and "k0sctl did not restore" in required.error_lines[0]


SERVICE_LOG = [f"k0s[{n}]: starting etcd attempt {n}" for n in range(100)] + [
    "k0s: token long-log-passphrase-0123 \x1b]0;pwned\x07\x1b[2J done"]


@pytest.mark.parametrize("command", ["apply", "reset"])
def test_collect_logs_after_a_failure(resource: Resource, workdir: Path, double: Double, command: str) -> None:
    double.set(running=True, fail={command: "etcd did not start"}, service_log=SERVICE_LOG)
    source = {"encryption": {"passphrase": "long-log-passphrase-0123"}}
    resource.secrets.append("long-log-passphrase-0123")
    params = {"command": command, "confirm": CLUSTER_NAME, "backup_first": False} if command == "reset" else \
        {"command": command}
    run = resource.put(put(params, source), workdir, env={"K0SCTL_DOUBLE_VERSION": MODELLED})
    assert run.returncode != 0 and "etcd did not start" in run.error_lines[0]
    assert double.commands()[-1][:2] == ["logs", "--config"]
    assert f"collect_logs: the k0s service's logs after the failed {command}" in run.stderr
    assert "--- last 40 lines of the k0s service log of 192.0.2.10:22 ---" in run.stderr
    assert "starting etcd attempt 99" in run.stderr and "starting etcd attempt 60\n" not in run.stderr
    assert "k0s: token *** \\x1b]0;pwned\\x07\\x1b[2J done" in run.stderr
    assert "long-log-passphrase" not in run.stderr and "\x1b]0" not in run.stderr


@pytest.mark.parametrize(("release", "collect", "said"), [
    (MODELLED, "never", None), (PINNED, "on_failure", f"k0sctl {PINNED} has no `logs` command")])
def test_no_logs_when_not_asked_or_not_there(resource: Resource, workdir: Path, double: Double, release: str,
                                            collect: str, said: str | None) -> None:
    double.set(fail={"apply": "boom"})
    run = resource.put(put({"command": "apply", "collect_logs": collect}), workdir,
                       env={"K0SCTL_DOUBLE_VERSION": release})
    assert run.returncode != 0 and "boom" in run.error_lines[0]
    assert not [argv for argv in double.commands() if argv[0] == "logs"]
    assert (said in run.stderr) if said else "collect_logs" not in run.stderr


def test_flags_users_ask_for(resource: Resource, workdir: Path, double: Double) -> None:
    params = {"command": "apply", "force": True, "evict_taint": "k0sctl.k0sproject.io/evict=true:NoExecute",
              "kubeconfig_api_address": "https://api.example.test:6443"}
    resource.put(put(params), workdir).expect_ok()
    (argv,) = double.commands()
    assert argv[argv.index("--evict-taint") + 1] == "k0sctl.k0sproject.io/evict=true:NoExecute"
    assert argv[argv.index("--kubeconfig-api-address") + 1] == "https://api.example.test:6443"
    assert "--force" in argv


@pytest.mark.parametrize(("param", "value", "release"), [
    ("evict_taint", "a=b:NoExecute", "v0.23.0"), ("force", True, "v0.15.2"),
    ("kubeconfig_api_address", "https://x:6443", "v0.13.1")])
def test_a_flag_the_release_lacks_is_refused_before_anything_runs(resource: Resource, workdir: Path, double: Double,
                                                                  param: str, value: object, release: str) -> None:
    run = resource.put(put({"command": "apply", param: value}), workdir, env={"K0SCTL_DOUBLE_VERSION": release})
    assert run.returncode != 0 and len(run.error_lines) == 1
    assert f"params.{param} needs k0sctl" in run.error_lines[0] and f"(found {release})" in run.error_lines[0]
    assert double.commands() == []
