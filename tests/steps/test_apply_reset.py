"""apply and reset through the real `out` step against the k0sctl test double."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.resource import Resource, executable
from tests.support.sshd import keygen


def put(params: dict[str, Any], source: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"source": source or {}, "params": params}


def k0s_archive(path: Path, *, record: bool = True) -> Path:
    """A small archive shaped like a k0s backup, with the metadata.json of a get beside it that vouches
    for it (restore_from refuses an archive no record vouches for)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in (("k0s.yaml", b"apiVersion: k0s.k0sproject.io/v1beta1\n"), ("etcd/snapshot.db", b"x" * 64)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    if record:
        facts = {"ref": "0" * 40, "kind": "backup", "sha256": hashlib.sha256(buf.getvalue()).hexdigest(),
                 "size": len(buf.getvalue())}
        (path.parent / "metadata.json").write_text(json.dumps(facts), encoding="utf-8")
    return path


def test_apply_fresh_cluster(resource: Resource, workdir: Path, double: Double) -> None:
    run = resource.put(put({"command": "apply"}), workdir).expect_ok()
    ((command, flag, cfg),) = double.commands()
    assert (command, flag) == ("apply", "--config")
    assert Path(cfg).is_relative_to(resource.tmpdir) and Path(cfg).name == "k0sctl.yaml", "a private copy"
    assert run.metadata["restored"] == "false"
    assert run.answer["version"] == {"ref": "none"}
    assert double.state()["running"] is True


def test_apply_flags(resource: Resource, workdir: Path, double: Double) -> None:
    resource.put(put({"command": "apply", "no_wait": True, "no_drain": True},
                     {"k0sctl": {"debug": True, "concurrency": 4}}), workdir).expect_ok()
    (argv,) = double.commands()
    assert argv[0] == "apply"
    for flag in ("--no-wait", "--no-drain", "--debug"):
        assert flag in argv
    assert argv[argv.index("--concurrency") + 1] == "4"


def test_dry_run_never_passes_restore_from(resource: Resource, workdir: Path, double: Double) -> None:
    """k0sctl would really restore in a dry run; the plan says whether a real apply would restore."""
    k0s_archive(workdir / "snap.tar.gz")
    fresh = resource.put(put({"command": "apply", "dry_run": True, "restore_from": "snap.tar.gz"}), workdir)
    fresh.expect_ok()
    assert fresh.metadata["restore_planned"] == "true"
    double.set(running=True)
    running = resource.put(put({"command": "apply", "dry_run": True, "restore_from": "snap.tar.gz"}), workdir)
    assert running.expect_ok().metadata["restore_planned"] == "false"
    assert "would NOT restore" in running.stderr
    assert all("--restore-from" not in argv for argv in double.commands())
    assert double.state().get("restores", []) == []


@pytest.mark.parametrize("changes", [True, False])
def test_dry_run_reports_changes(resource: Resource, workdir: Path, double: Double, changes: bool) -> None:
    double.set(running=True, changes=changes)
    run = resource.put(put({"command": "apply", "dry_run": True}), workdir).expect_ok()
    assert "--dry-run" in double.commands()[0]
    assert run.metadata["changes"] == str(changes).lower()
    if changes:
        assert int(run.metadata["planned_actions"]) >= 1
        assert "would change the cluster" in run.stderr
    else:
        assert "would not change the cluster" in run.stderr


def test_restore_onto_fresh_cluster(resource: Resource, workdir: Path, double: Double) -> None:
    get_dir = workdir / "cluster"
    get_dir.mkdir()
    archive = k0s_archive(get_dir / "backup.tar.gz")
    run = resource.put(put({"command": "apply", "restore_from": "cluster", "restore": "required"}), workdir)
    run.expect_ok()
    assert run.metadata["restored"] == "true"
    assert "the cluster was restored" in run.stderr
    real = [argv for argv in double.commands() if "--dry-run" not in argv]
    # k0sctl reads the verified private copy, not the file in the put's inputs
    assert real[0][real[0].index("--restore-from") + 1].startswith(str(resource.tmpdir / "k0sctl-resource-"))
    (restored,) = double.state()["restores"]
    assert restored["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()


def test_restore_skipped_on_running_cluster_is_reported(resource: Resource, workdir: Path, double: Double) -> None:
    double.set(running=True)
    k0s_archive(workdir / "snap.tar.gz")
    run = resource.put(put({"command": "apply", "restore_from": "snap.tar.gz"}), workdir).expect_ok()
    assert run.metadata["restored"] == "false"
    assert "NOT restored" in run.stderr


def test_restore_required_refuses_running_cluster_before_touching_it(resource: Resource, workdir: Path,
                                                                     double: Double) -> None:
    double.set(running=True)
    k0s_archive(workdir / "snap.tar.gz")
    run = resource.put(put({"command": "apply", "restore_from": "snap.tar.gz", "restore": "required"}), workdir)
    assert run.returncode != 0
    assert "restore: required" in run.error_lines[0]
    (argv,) = double.commands()
    assert "--dry-run" in argv, "only the plan may run"
    assert "--restore-from" not in argv, "k0sctl's restore phase has no dry-run mode"


def test_restore_required_fails_when_restore_silently_skipped(resource: Resource, workdir: Path,
                                                             double: Double) -> None:
    """k0sctl older than v0.17 cannot plan; a restore that silently did not happen must still fail the put."""
    double.set(running=True)
    k0s_archive(workdir / "snap.tar.gz")
    run = resource.put(put({"command": "apply", "restore_from": "snap.tar.gz", "restore": "required"}), workdir,
                       env={"K0SCTL_DOUBLE_VERSION": "v0.15.2"})
    assert run.returncode != 0
    assert "k0sctl did not restore" in run.error_lines[0]


def test_restore_from_get_without_archive_is_fresh_install(resource: Resource, workdir: Path, double: Double) -> None:
    get_dir = workdir / "cluster"
    get_dir.mkdir()
    (get_dir / "metadata.json").write_text(json.dumps({"ref": "none", "kind": "none"}))
    run = resource.put(put({"command": "apply", "restore_from": "cluster"}), workdir).expect_ok()
    assert "fresh install" in run.stderr
    assert "--restore-from" not in double.commands()[0]
    required = resource.put(put({"command": "apply", "restore_from": "cluster", "restore": "required"}), workdir)
    assert required.returncode != 0 and "holds no archive" in required.error_lines[0]


def test_restore_digest_mismatch_refused(resource: Resource, workdir: Path, double: Double) -> None:
    get_dir = workdir / "cluster"
    get_dir.mkdir()
    k0s_archive(get_dir / "backup.tar.gz")
    (get_dir / "metadata.json").write_text(json.dumps({"kind": "backup", "sha256": "0" * 64}))
    run = resource.put(put({"command": "apply", "restore_from": "cluster"}), workdir)
    assert run.returncode != 0 and "sha256" in run.error_lines[0]
    assert double.commands() == []


def test_unreadable_restore_archive_refused(resource: Resource, workdir: Path, double: Double) -> None:
    (workdir / "snap.tar.gz").write_bytes(gzip.compress(b"not a tar at all" * 10))
    run = resource.put(put({"command": "apply", "restore_from": "snap.tar.gz"}), workdir)
    assert run.returncode != 0
    assert double.commands() == []


def test_restore_from_symlink_escaping_dir_refused(resource: Resource, workdir: Path, double: Double,
                                                   tmp_path: Path) -> None:
    outside = k0s_archive(tmp_path / "outside.tar.gz")
    (workdir / "link.tar.gz").symlink_to(outside)
    run = resource.put(put({"command": "apply", "restore_from": "link.tar.gz"}), workdir)
    assert run.returncode != 0 and "outside" in run.error_lines[0]
    assert double.commands() == []


def test_apply_failure_shows_reason_and_log_tail(resource: Resource, workdir: Path, double: Double) -> None:
    double.set(fail={"apply": "failed to connect to 192.0.2.10:22: connection refused"})
    run = resource.put(put({"command": "apply"}), workdir)
    assert run.returncode == 1
    assert run.error_lines == ["error: k0sctl apply failed: failed to connect to 192.0.2.10:22: connection refused"]
    assert "lines of k0sctl.log" in run.stderr


def test_old_k0sctl_gets_only_its_flags(resource: Resource, workdir: Path, double: Double) -> None:
    env = {"K0SCTL_DOUBLE_VERSION": "v0.13.1"}
    resource.put(put({"command": "apply"}, {"k0sctl": {"concurrency": 2}}), workdir, env=env).expect_ok()
    (call,) = [c for c in double.calls() if c["argv"][0] == "apply"]
    assert "--concurrency" not in call["argv"]  # v0.15+
    assert call["env"]["DISABLE_TELEMETRY"] == "true"  # the old releases' flag, as its environment variable
    run = resource.put(put({"command": "apply", "dry_run": True}), workdir, env=env)
    assert run.returncode != 0 and "dry_run needs k0sctl v0.17" in run.error_lines[0]


# -- reset -----------------------------------------------------------------------------------------

def test_reset_needs_confirm(resource: Resource, workdir: Path, double: Double) -> None:
    double.set(running=True)
    missing = resource.put(put({"command": "reset"}), workdir)
    assert missing.returncode != 0 and "params.confirm: required" in missing.error_lines[0]
    wrong = resource.put(put({"command": "reset", "confirm": "prod-us"}), workdir)
    assert wrong.returncode != 0 and "does not match" in wrong.error_lines[0]
    assert double.commands() == []
    assert double.state()["running"] is True


def test_reset_confirmed(resource: Resource, workdir: Path, double: Double) -> None:
    double.set(running=True)
    run = resource.put(put({"command": "reset", "confirm": CLUSTER_NAME}), workdir).expect_ok()
    assert double.commands()[0][:1] == ["reset"] and "--force" in double.commands()[0]
    assert run.metadata["backup_first"] == "false"
    assert double.state()["running"] is False


# -- the runner: timeout, signals, secrets ----------------------------------------------------------

def test_timeout_stops_k0sctl(resource: Resource, workdir: Path, double: Double) -> None:
    double.set(sleep=60)
    started = time.monotonic()
    run = resource.put(put({"command": "apply"}, {"k0sctl": {"timeout": "2s"}}), workdir)
    assert time.monotonic() - started < 30
    assert run.returncode != 0
    assert "did not finish within source.k0sctl.timeout (2s)" in run.error_lines[0]


def test_timeout_escalates_to_sigkill(resource: Resource, workdir: Path, double: Double) -> None:
    double.set(sleep=120, ignore_sigterm=True)
    started = time.monotonic()
    run = resource.put(put({"command": "apply"}, {"k0sctl": {"timeout": "1s"}}), workdir)
    elapsed = time.monotonic() - started
    assert run.returncode != 0
    assert 10 <= elapsed < 40, elapsed  # SIGTERM ignored, SIGKILL after the grace period


def test_sigterm_from_concourse_is_forwarded(resource: Resource, workdir: Path, double: Double) -> None:
    double.set(sleep=60)
    proc = subprocess.Popen([executable(), "out", str(workdir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=resource.environment())
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(put({"command": "apply"})).encode())
    proc.stdin.close()
    proc.stdin = None  # communicate() must not touch it again
    deadline = time.monotonic() + 20
    while not double.commands() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert double.commands(), "k0sctl did not start"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + signal.SIGTERM
    assert out == b""
    # k0sctl is stopped however far the step got when the signal came (inside the k0sctl run, or a moment
    # before or after it): the contract is the exit code, no answer and one line saying why.
    assert b"aborted" in err and b"SIGTERM" in err


def test_ssh_key_reaches_k0sctl_through_a_private_agent(resource: Resource, workdir: Path, double: Double,
                                                        ssh_keypair: tuple[str, str]) -> None:
    private, _public = ssh_keypair
    known = "192.0.2.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKnownHostKeyForTheTestOnly000000000000000"
    resource.secrets.append(private)
    resource.put(put({"command": "apply"}, {"ssh_private_key": private, "ssh_known_hosts": known}), workdir).expect_ok()
    (call,) = [c for c in double.calls() if c["argv"][0] == "apply"]
    env = call["env"]
    assert env["SSH_AUTH_SOCK"].startswith(str(resource.tmpdir))
    assert env["SSH_KNOWN_HOSTS"].startswith(str(resource.tmpdir))
    assert env["XDG_CACHE_HOME"].startswith(str(resource.tmpdir))
    assert not Path(env["SSH_AUTH_SOCK"]).exists(), "the agent must be gone after the step"
    assert not (resource.home / ".ssh").exists(), "nothing may be written to the home directory"


def test_unusable_ssh_key_is_one_clear_error(resource: Resource, workdir: Path, double: Double) -> None:
    # not a key (base64 of a sentence); the header is split so no tracked file looks like it holds one
    bogus = ("-----BEGIN OPENSSH " "PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbCBqdXN0IHRleHQ=\n"
             "-----END OPENSSH PRIVATE KEY-----\n")
    resource.secrets.append(bogus)
    run = resource.put(put({"command": "apply"}, {"ssh_private_key": bogus}), workdir)
    assert run.returncode != 0
    assert "source.ssh_private_key: not a usable private key" in run.error_lines[0]
    assert double.commands() == []


def test_a_tmpdir_too_long_for_the_agent_socket_is_one_clear_error(resource: Resource, workdir: Path, double: Double,
                                                                  tmp_path: Path) -> None:
    """The agent's socket lives under TMPDIR; a path over the 107 bytes a Unix socket takes is named, not guessed."""
    key, _ = keygen(tmp_path / "client")
    resource.secrets.append(key)
    resource.tmpdir = resource.tmpdir / ("t" * 90)
    resource.tmpdir.mkdir()
    run = resource.put(put({"command": "apply"}, {"ssh_private_key": key}), workdir)
    assert run.returncode == 1 and len(run.error_lines) == 1, run.stderr
    assert "more than the 107 a Unix socket allows; set TMPDIR to a shorter directory" in run.error_lines[0]
    assert double.commands() == [] and not list(resource.tmpdir.iterdir())


def test_stray_k0sctl_flag_variables_do_not_reach_k0sctl(resource: Resource, workdir: Path, double: Double) -> None:
    """DRY_RUN=1 in the container's environment would silently turn an apply into a dry run."""
    run = resource.put(put({"command": "apply"}), workdir, env={"DRY_RUN": "true", "DEBUG": "yes"}).expect_ok()
    assert run.metadata["restored"] == "false"
    assert double.state()["running"] is True, "the apply really ran"


def test_secrets_printed_by_k0sctl_are_masked(resource: Resource, workdir: Path, double: Double) -> None:
    secret_pw = "s3cr3t-Proxy-Passw0rd"
    proxy = f"http://proxyuser:{secret_pw}@proxy.example.test:3128"
    double.set(echo_env=["HTTPS_PROXY"])
    resource.secrets.append(secret_pw)
    run = resource.put(put({"command": "apply"}, {"k0sctl": {"env": {"HTTPS_PROXY": proxy}}}), workdir).expect_ok()
    assert "proxyuser:***@proxy.example.test" in run.stderr
    (call,) = [c for c in double.calls() if c["argv"][0] == "apply"]
    assert call["env"]["HTTPS_PROXY"] == proxy  # k0sctl itself gets the real value


def test_nothing_left_behind(resource: Resource, workdir: Path, double: Double) -> None:
    double.set(running=True)
    resource.put(put({"command": "apply"}), workdir).expect_ok()
    assert not list(resource.tmpdir.iterdir())
    assert sorted(os.listdir(workdir)) == ["config"]


def test_archive_left_on_controller_is_reported(resource: Resource, workdir: Path, double: Double) -> None:
    """k0sctl only warns when it cannot remove its copy of the archive from the leader; say it loudly."""
    double.set(cleanup_fails=True)
    k0s_archive(workdir / "snap.tar.gz")
    run = resource.put(put({"command": "apply", "restore_from": "snap.tar.gz"}), workdir).expect_ok()
    assert run.metadata["restored"] == "true"
    assert run.metadata["controller_leftovers"] == "1"
    assert "could not remove the backup archive 192.0.2.10:22:/tmp/k0sctl-restore/k0s_backup.tar.gz" in run.stderr
