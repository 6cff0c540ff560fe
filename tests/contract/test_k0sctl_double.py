"""The k0sctl test double's behaviours (tests/support/k0sctl_double/k0sctl); no real k0sctl needed.

How the double's command line and error shapes match real k0sctl is held by test_k0sctl_contract.py;
these tests hold the scripted cluster: install, restore, dry run, backup archives, reset, kubeconfig,
timeouts and signals, the log file and the call record.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support import DOUBLE, PINNED
from tests.support.fixtures import Double, DoubleRun

CONFIG = """\
apiVersion: k0sctl.k0sproject.io/v1beta1
kind: Cluster
metadata:
  name: double-test   # a comment
spec:
  hosts:
  - role: controller
    ssh:
      address: 192.0.2.10
      user: root
      port: 2222
  - role: worker
    ssh: {address: 192.0.2.11, user: root}
  k0s:
    version: "v1.31.2+k0s.0"
"""


@pytest.fixture
def direct_double(tmp_path: Path, k0sctl_env: dict[str, str]) -> Double:
    """The double to run directly, in an environment that touches no home, on CONFIG (unlike the shared
    `double`, which the steps find on PATH)."""
    d = Double(tmp_path, k0sctl_env)
    d.config.write_text(CONFIG)
    d.set(running=False)
    return d


def k0s_archive(path: Path, *, with_config: bool = True) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        members = [("etcd-snapshot.db", b"\x01" * 128)]
        if with_config:
            members.append(("k0s.yaml", b"apiVersion: k0s.k0sproject.io/v1beta1\n"))
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())
    return path


def phases(result: DoubleRun) -> list[str]:
    return re.findall(r'msg="==> Running phase: ([^"]+)"', result.stdout)


# -- version and flags --------------------------------------------------------------------------------

@pytest.mark.parametrize(("version", "commit_len"),
                         [(PINNED, 40), ("v0.28.0", 40), ("v0.22.0", 40), ("v0.20.0", 40), ("v0.13.1", 7)])
def test_version_prints_version_and_commit(direct_double: Double, version: str, commit_len: int) -> None:
    result = direct_double.run("version", version=version)
    assert result.returncode == 0 and result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == f"version: {version}"
    assert re.fullmatch(rf"commit: [0-9a-f]{{{commit_len}}}", lines[1])


FLAG_HISTORY = [
    ("v0.13.1", ["apply", "--dry-run"], False), ("v0.17.0", ["apply", "--dry-run"], True),
    ("v0.13.1", ["apply", "--kubeconfig-out", "k"], False), ("v0.14.0", ["apply", "--kubeconfig-out", "k"], True),
    ("v0.13.1", ["apply", "--concurrency", "2"], False), ("v0.15.0", ["apply", "--concurrency", "2"], True),
    ("v0.15.0", ["kubeconfig", "--concurrency", "2"], True), ("v0.16.0", ["kubeconfig", "--concurrency", "2"], False),
    ("v0.22.0", ["apply", "--timeout", "1m"], False), ("v0.23.0", ["apply", "--timeout", "1m"], True),
    ("v0.22.0", ["backup", "-o", "x.tgz"], False), ("v0.24.0", ["backup", "-o", "x.tgz"], True),
    ("v0.20.0", ["apply", "--disable-telemetry"], True), ("v0.21.0", ["apply", "--disable-telemetry"], False),
    ("v0.13.1", ["backup", "--disable-upgrade-check"], True),
    ("v0.20.0", ["backup", "--disable-upgrade-check"], False),
    ("v0.20.0", ["apply", "--disable-upgrade-check"], True),
    ("v0.17.6", ["apply", "--disable-upgrade-check"], False),
    ("v0.13.1", ["kubeconfig", "--disable-upgrade-check"], False),
    ("v0.22.0", ["reset", "-f"], True), ("v0.28.0", ["reset", "-f"], False), ("v0.28.0", ["reset", "--force"], True),
    ("v0.19.4", ["kubeconfig", "-u", "me"], False), ("v0.19.5", ["kubeconfig", "-u", "me"], True),
]


@pytest.mark.parametrize(("version", "args", "accepted"), FLAG_HISTORY)
def test_flags_follow_the_release(direct_double: Double, tmp_path: Path, version: str, args: list[str],
                                  accepted: bool) -> None:
    missing = str(tmp_path / "absent.yaml")
    result = direct_double.run(args[0], "--config", missing, *args[1:], version=version)
    assert result.returncode == 1
    if accepted:
        assert result.stderr == ""
        assert result.fatal in ("no configuration files found", "failed to locate configuration")
    else:
        flag = args[1].lstrip("-")
        assert result.stdout.startswith(f"Incorrect Usage: flag provided but not defined: -{flag}\n\n")
        assert re.fullmatch(rf'time="[^"]+" level=fatal msg="flag provided but not defined: -{flag}"\n',
                            result.stderr)


def test_unknown_command_and_env_bool(direct_double: Double) -> None:
    unknown = direct_double.run("frobnicate")
    assert (unknown.returncode, unknown.stdout, unknown.stderr) == (3, "", "No help topic for 'frobnicate'\n")
    strict = direct_double.run("version", env={"DEBUG": "yes"})
    assert strict.returncode == 1
    assert strict.stdout.startswith('Incorrect Usage: could not parse "yes" as bool value from environment variable '
                                    '"DEBUG" for flag debug: strconv.ParseBool: parsing "yes": invalid syntax')
    old = direct_double.run("version", env={"DEBUG": "yes"}, version="v0.13.1")
    assert old.returncode == 1 and old.stdout == ""
    assert 'msg="could not parse \\"yes\\" as bool value for flag debug' in old.stderr


# -- apply ---------------------------------------------------------------------------------------------

def test_apply_installs_a_fresh_cluster(direct_double: Double) -> None:
    result = direct_double.run("apply")
    assert result.returncode == 0, result
    assert phases(result)[:2] == ["Connect to hosts", "Detect host operating systems"]
    assert "Initialize the k0s cluster" in phases(result) and "Install workers" in phases(result)
    assert phases(result)[-1] == "Disconnect from hosts"
    assert 'level=info msg="192.0.2.10:2222: connected"' in result.stdout
    assert 'msg="k0s cluster version v1.31.2+k0s.0 is now installed"' in result.stdout
    assert result.stdout.startswith("\n") and f"k0sctl {PINNED} Copyright 2026, k0sctl authors.\n" in result.stdout
    assert " ▌ " in result.stderr  # v0.32's notice on stderr
    state = direct_double.state()
    assert state["running"] is True and state["installs"] == 1 and state["cluster_name"] == "double-test"


def test_apply_on_running_cluster_changes_nothing_to_install(direct_double: Double) -> None:
    direct_double.set(running=True, k0s_version="v1.31.2+k0s.0")
    result = direct_double.run("apply")
    assert result.returncode == 0, result
    assert "Initialize the k0s cluster" not in phases(result)
    assert direct_double.state().get("installs") is None


def test_old_release_names_hosts_the_rig_v0_way(direct_double: Double) -> None:
    result = direct_double.run("apply", version="v0.28.0")
    assert 'msg="[ssh] 192.0.2.10:2222: connected"' in result.stdout
    assert "k0sctl v0.28.0 Copyright 2025, k0sctl authors.\n" in result.stdout and result.stderr == ""


def test_restore_on_stopped_cluster_runs_the_restore_phase(direct_double: Double, tmp_path: Path) -> None:
    archive = k0s_archive(tmp_path / "backup.tar.gz")
    result = direct_double.run("apply", "--restore-from", str(archive))
    assert result.returncode == 0, result
    assert "Restore cluster state" in phases(result)
    assert phases(result).index("Restore cluster state") < phases(result).index("Initialize the k0s cluster")
    assert 'msg="192.0.2.10:2222: restoring cluster state"' in result.stdout
    (restore,) = direct_double.state()["restores"]
    assert restore["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert direct_double.state()["running"] is True


def test_restore_is_skipped_silently_on_running_cluster(direct_double: Double, tmp_path: Path) -> None:
    direct_double.set(running=True)
    archive = k0s_archive(tmp_path / "backup.tar.gz")
    result = direct_double.run("apply", "--restore-from", str(archive))
    assert result.returncode == 0, result
    assert "Restore" not in result.stdout and "restor" not in result.stdout
    assert "restores" not in direct_double.state()


@pytest.mark.parametrize("content", [b"garbage", gzip.compress(b"not a tar" * 20, mtime=0), None],
                         ids=["garbage", "gzip-not-tar", "missing"])
def test_restore_of_unusable_archive_fails(direct_double: Double, tmp_path: Path, content: bytes | None) -> None:
    archive = tmp_path / "backup.tar.gz"
    if content is None:
        k0s_archive(archive, with_config=False)
    else:
        archive.write_bytes(content)
    result = direct_double.run("apply", "--restore-from", str(archive))
    assert result.returncode == 1
    assert 'level=error msg="192.0.2.10:2222: restore failed: ' in result.stdout
    assert result.fatal is not None and result.fatal.endswith("restore failed: command failed: exit status 1")
    assert 'msg="==> Apply failed"' in result.stdout
    assert direct_double.state()["running"] is False


def test_restore_from_missing_file_fails(direct_double: Double, tmp_path: Path) -> None:
    missing = tmp_path / "nope.tar.gz"
    result = direct_double.run("apply", "--restore-from", str(missing))
    assert result.returncode == 1
    assert result.fatal is not None
    assert result.fatal.endswith(f"open file for upload: open {missing}: no such file or directory")


@pytest.mark.parametrize(("running", "changes", "expect_changes"),
                         [(True, False, False), (True, True, True), (False, False, True)])
def test_dry_run_reports_and_changes_nothing(direct_double: Double, running: bool, changes: bool,
                                             expect_changes: bool) -> None:
    direct_double.set(running=running, changes=changes)
    before = direct_double.state_file.read_bytes()
    result = direct_double.run("apply", "--dry-run")
    assert result.returncode == 0, result
    assert direct_double.state_file.read_bytes() == before
    if expect_changes:
        assert "dry-run: cluster state altering actions would be performed:\n" in result.stdout
        assert re.search(r"^dry-run: \* 192\.0\.2\.10:2222 :\ndry-run:  - ", result.stdout, re.MULTILINE)
    else:
        assert "dry-run: no cluster state altering actions would be performed\n" in result.stdout
    assert "is now installed" not in result.stdout
    assert result.stdout.index("dry-run:") < result.stdout.index("==> Finished in")


def test_dry_run_with_restore_on_stopped_cluster_fails_like_k0sctl(direct_double: Double, tmp_path: Path) -> None:
    """The restore phase has no dry-run mode: k0sctl runs `k0s restore`, which a dry run never installed."""
    archive = k0s_archive(tmp_path / "backup.tar.gz")
    result = direct_double.run("apply", "--dry-run", "--restore-from", str(archive))
    assert result.returncode == 1
    assert "Restore cluster state" in phases(result)
    assert direct_double.state()["running"] is False and "restores" not in direct_double.state()


def test_apply_writes_kubeconfig_out(direct_double: Double, tmp_path: Path) -> None:
    out = tmp_path / "admin.conf"
    result = direct_double.run("apply", "--kubeconfig-out", str(out))
    assert result.returncode == 0, result
    assert "Get admin kubeconfig" in phases(result) and "Tip:" not in result.stdout
    assert yaml.safe_load(out.read_text())["clusters"][0]["cluster"]["server"] == "https://192.0.2.10:6443"


# -- backup --------------------------------------------------------------------------------------------

def test_backup_writes_a_k0s_shaped_archive(direct_double: Double, tmp_path: Path) -> None:
    direct_double.set(running=True, backup_bytes=10000)
    out = tmp_path / "backup.tar.gz"
    result = direct_double.run("backup", "-o", str(out))
    assert result.returncode == 0, result
    assert phases(result)[-3:] == ["Take backup", "Release exclusive host lock", "Disconnect from hosts"]
    assert str(out) not in result.stdout  # v0.24+ do not log the path
    with tarfile.open(out, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert {"k0s.yaml", "etcd-snapshot.db", "pki/ca.crt", "pki"} <= set(members)
        assert members["etcd-snapshot.db"].size == 10000
        config = tar.extractfile("k0s.yaml")
        assert config is not None and b"ClusterConfig" in config.read()
    assert direct_double.state()["backups"] == 1


def test_old_release_writes_backup_to_cwd_and_logs_it(direct_double: Double, tmp_path: Path) -> None:
    direct_double.set(running=True)
    work = tmp_path / "work"
    work.mkdir()
    result = direct_double.run("backup", version="v0.22.0", cwd=work)
    assert result.returncode == 0, result
    (archive,) = work.glob("k0s_backup_*.tar.gz")
    assert re.fullmatch(r"k0s_backup_\d+\.tar\.gz", archive.name)
    assert f'msg="backup file written to {archive}"' in result.stdout
    with tarfile.open(archive, "r:gz") as tar:
        assert "k0s.yaml" in tar.getnames()


def test_corrupt_backup(direct_double: Double, tmp_path: Path) -> None:
    direct_double.set(running=True, backup_corrupt=True)
    out = tmp_path / "backup.tar.gz"
    assert direct_double.run("backup", "-o", str(out)).returncode == 0
    with pytest.raises((OSError, tarfile.TarError)):
        tarfile.open(out, "r:gz").close()


def test_backup_of_stopped_cluster_fails_and_removes_the_file(direct_double: Double, tmp_path: Path) -> None:
    out = tmp_path / "backup.tar.gz"
    result = direct_double.run("backup", "-o", str(out))
    assert result.returncode == 1 and result.stderr.strip().startswith("▌")
    log = Path(direct_double.env["XDG_CACHE_HOME"]) / "k0sctl" / "k0sctl.log"
    assert result.fatal == f"backup failed - log file saved to {log}: failed to find a running controller"
    assert "Take backup" not in phases(result)
    assert not out.exists()


# -- reset ---------------------------------------------------------------------------------------------

def test_reset_requires_force_without_a_tty(direct_double: Double) -> None:
    direct_double.set(running=True)
    result = direct_double.run("reset")
    assert result.returncode == 1
    assert result.fatal is not None and result.fatal.endswith(": reset requires --force")
    assert phases(result) == [] and direct_double.state()["running"] is True
    old = direct_double.run("reset", version="v0.13.1")
    assert old.fatal == "reset requires --force"


def test_reset_force_stops_the_cluster(direct_double: Double) -> None:
    direct_double.set(running=True)
    result = direct_double.run("reset", "--force")
    assert result.returncode == 0, result
    assert {"Reset workers", "Reset leader"} <= set(phases(result))
    assert direct_double.state()["running"] is False and direct_double.state()["resets"] == 1


# -- kubeconfig ----------------------------------------------------------------------------------------

def test_kubeconfig_of_running_cluster(direct_double: Double) -> None:
    direct_double.set(running=True, kubeconfig_secret="0123abcd")
    result = direct_double.run("kubeconfig")
    assert result.returncode == 0 and result.stderr == ""
    config = yaml.safe_load(result.stdout)
    assert config["current-context"] == "double-test"
    assert config["clusters"][0]["cluster"]["server"] == "https://192.0.2.10:6443"
    key = config["users"][0]["user"]["client-key-data"]
    assert "0123abcd" in __import__("base64").b64decode(key).decode()


def test_kubeconfig_of_stopped_cluster_fails_on_stdout(direct_double: Double) -> None:
    result = direct_double.run("kubeconfig")
    assert result.returncode == 1 and result.stderr == ""
    assert result.stdout.startswith('level=fatal msg="getting kubeconfig failed - log file saved to ')
    assert len(result.stdout.splitlines()) == 1


# -- failures, timeouts, signals ---------------------------------------------------------------------------

def test_scripted_failure(direct_double: Double) -> None:
    direct_double.set(running=True, fail={"backup": "disk full"})
    result = direct_double.run("backup", "-o", "b.tgz")
    assert result.returncode == 1
    assert result.fatal is not None and result.fatal.endswith(": disk full")
    assert 'msg="* Running clean-up for phase: Acquire exclusive host lock"' in result.stdout
    old = direct_double.run("apply", version="v0.13.1", env={"DISABLE_TELEMETRY": "true"})
    assert old.returncode == 0
    direct_double.set(fail={"apply": "boom"})
    old = direct_double.run("apply", version="v0.13.1")
    assert 'level=error msg="apply failed - log file saved to ' in old.stdout and old.fatal == "boom"


def test_auth_failure(direct_double: Double) -> None:
    direct_double.set(auth_fail=True)
    result = direct_double.run("apply")
    assert result.returncode == 1
    assert result.fatal is not None and "no usable authentication method found" in result.fatal
    assert result.fatal.split(": ", 1)[1].startswith("failed on 2 hosts:\n - 192.0.2.10:2222: ")


def test_timeout_flag_bounds_a_hanging_run(direct_double: Double) -> None:
    direct_double.set(sleep=60)
    started = time.monotonic()
    result = direct_double.run("apply", "--timeout", "1s")
    assert time.monotonic() - started < 15
    assert result.returncode == 1
    assert result.fatal is not None and result.fatal.endswith("context deadline exceeded")
    assert 'msg="==> Apply failed"' in result.stdout


def wait_for_phase(proc: subprocess.Popen[str], title: str) -> list[str]:
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        seen.append(line)
        if f"==> Running phase: {title}" in line:
            return seen
    raise AssertionError(f"no phase {title}: {seen}")


def test_sigterm_cancels_like_k0sctl(direct_double: Double) -> None:
    direct_double.set(sleep=60)
    proc = direct_double.start("apply")
    wait_for_phase(proc, "Connect to hosts")
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1
    assert 'level=warning msg="Aborting... Press Ctrl-C again to exit now."' in out
    assert "context canceled" in out


def test_second_signal_forces_exit(direct_double: Double) -> None:
    direct_double.set(sleep=60)
    proc = direct_double.start("apply")
    wait_for_phase(proc, "Connect to hosts")
    proc.send_signal(signal.SIGTERM)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 130, out
    assert 'level=warning msg="Aborting... Press Ctrl-C again to exit now."\nlevel=error msg="Forced exit"\n' in out


def test_abort_finishes_phase_answers_and_goes_on(direct_double: Double) -> None:
    """As real k0sctl does while a command on a host hangs: "Aborting..." at once, the phase goes on to
    its end, then the cancel; a second signal exits at once."""
    direct_double.set(sleep=3, abort_finishes_phase=True)
    proc = direct_double.start("apply")
    wait_for_phase(proc, "Connect to hosts")
    assert proc.stdout is not None
    signalled = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout.readline() == 'level=warning msg="Aborting... Press Ctrl-C again to exit now."\n'
    out, _ = proc.communicate(timeout=30)  # the phase ran on: no "Forced exit", a cancel before the next one
    assert time.monotonic() - signalled >= 1  # the rest of the 3 s phase, not cut short
    assert proc.returncode == 1, out
    assert 'context canceled before entering phase \\"' in out and "Forced exit" not in out

    direct_double.set(sleep=60)
    proc = direct_double.start("apply")
    wait_for_phase(proc, "Connect to hosts")
    proc.send_signal(signal.SIGTERM)
    assert proc.stdout is not None and "Aborting..." in proc.stdout.readline()
    assert proc.poll() is None  # still in its phase
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 130 and 'level=error msg="Forced exit"' in out


def test_releases_before_v0_23_die_of_sigterm(direct_double: Double) -> None:
    direct_double.set(sleep=60)
    proc = direct_double.start("apply", version="v0.22.0")
    wait_for_phase(proc, "Connect to hosts")
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGTERM


def test_ignore_sigterm_needs_sigkill(direct_double: Double) -> None:
    direct_double.set(sleep=60, ignore_sigterm=True)
    proc = direct_double.start("apply")
    wait_for_phase(proc, "Connect to hosts")
    proc.send_signal(signal.SIGTERM)
    time.sleep(1)
    assert proc.poll() is None
    proc.kill()
    proc.communicate(timeout=20)
    assert proc.returncode == -signal.SIGKILL


# -- log file, record, configuration ------------------------------------------------------------------------

def test_log_file_in_xdg_cache(direct_double: Double) -> None:
    direct_double.run("apply")
    log = Path(direct_double.env["XDG_CACHE_HOME"]) / "k0sctl" / "k0sctl.log"
    text = log.read_text()
    assert text.startswith('time="') and 'level=info msg="###### New session ######"' in text
    assert 'msg="==> Running phase: Connect to hosts"' in text
    assert oct(log.stat().st_mode & 0o777) == "0o600"


def test_unwritable_cache_fails_every_command(direct_double: Double, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = direct_double.run("kubeconfig", env={"XDG_CACHE_HOME": str(blocker)})
    assert result.returncode == 1
    assert result.fatal == f"could not create any of the following paths: [{blocker}/k0sctl]"


def test_every_call_is_recorded(direct_double: Double) -> None:
    env = {"SSH_AUTH_SOCK": "/tmp/agent.sock", "HTTPS_PROXY": "http://proxy:3128", "no_proxy": "localhost",
           "K0SCTL_EXTRA": "1", "SECRET_TOKEN": "must-not-be-recorded", "SSH_KNOWN_HOSTS": "/tmp/kh"}
    direct_double.run("version", env=env)
    direct_double.run("apply", "--bogus", env=env)
    first, second = direct_double.calls()
    assert first["argv"] == ["version"] and second["argv"][:2] == ["apply", "--bogus"]
    assert first["cwd"] == str(direct_double.dir) and first["version"] == PINNED
    recorded = first["env"]
    for name in ("SSH_AUTH_SOCK", "HTTPS_PROXY", "no_proxy", "K0SCTL_EXTRA", "SSH_KNOWN_HOSTS", "XDG_CACHE_HOME",
                 "HOME", "DISABLE_TELEMETRY"):
        assert recorded[name] == direct_double.environment(PINNED, env)[name], name
    assert "SECRET_TOKEN" not in recorded and "PATH" not in recorded


def test_config_from_stdin(direct_double: Double) -> None:
    result = direct_double.run("apply", "-c", "-", stdin=CONFIG)
    assert result.returncode == 0, result
    no_stdin = direct_double.run("apply", "-c", "-")
    assert no_stdin.fatal == "can't read stdin"


def test_config_env_substitution_and_defaults(direct_double: Double, tmp_path: Path) -> None:
    templated = tmp_path / "t.yaml"
    templated.write_text(CONFIG.replace("192.0.2.10", "${CONTROLLER_ADDR}").replace("double-test",
                                                                                    "${NAME:-fallback}"))
    result = direct_double.run("apply", "-c", str(templated), env={"CONTROLLER_ADDR": "198.51.100.7"})
    assert 'msg="198.51.100.7:2222: connected"' in result.stdout
    assert direct_double.state()["cluster_name"] == "fallback"


def test_invalid_configs_fail_after_flags(direct_double: Double, tmp_path: Path) -> None:
    cases = {
        "kind: Cluster\n": "failed to parse config",
        "apiVersion: v1\nkind: ConfigMap\n": "no resources found for apiVersion=k0sctl.k0sproject.io/v1beta1",
        CONFIG.replace("spec:", "unknown: 1\nspec:"): "field unknown not found",
        CONFIG.replace("role: worker", "role: boss"): "cluster config validation failed",
    }
    for n, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"bad{n}.yaml"
        path.write_text(text)
        result = direct_double.run("apply", "-c", str(path))
        assert result.returncode == 1 and result.fatal is not None and expected in result.fatal, result


def load_double() -> Any:
    import importlib.machinery
    import importlib.util

    name = "k0sctl_double_module"
    if name not in sys.modules:
        loader = importlib.machinery.SourceFileLoader(name, str(DOUBLE))
        spec = importlib.util.spec_from_loader(name, loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        loader.exec_module(module)
    return sys.modules[name]


YAML_SAMPLES = [
    CONFIG,
    CONFIG + "---\napiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\nspec:\n  api:\n    port: 6443\n",
    """\
apiVersion: 'k0sctl.k0sproject.io/v1beta1'
kind: Cluster
metadata: {name: "with \\"quotes\\"", labels: [a, b]}
spec:
  hosts:
    - role: controller+worker
      openSSH:
        address: my-alias
      installFlags:
      - --debug
      - "--labels=a=b,c=d"
      hooks:
        apply:
          before:
            - echo 'hi # not a comment'
      files:
      - name: script
        data: |
          #!/bin/sh
          echo "line two"

        dst: /tmp/x
  options:
    wait: {enabled: false}
    concurrency:
      limit: 3
      uploads: 1
  k0s:
    version: 1.31.2+k0s.0
    config:
      spec:
        network: {provider: calico}
        empty:
        list_of_lists:
        - - 1
          - 2
        - [3, 4]
""",
    json.dumps({"apiVersion": "k0sctl.k0sproject.io/v1beta1", "kind": "Cluster",
                "spec": {"hosts": [{"role": "single", "localhost": {"enabled": True}}]}}, indent=2),
]


@pytest.mark.parametrize("text", YAML_SAMPLES)
def test_config_reader_agrees_with_pyyaml(text: str) -> None:
    assert load_double().load_documents(text) == [d for d in yaml.safe_load_all(text) if d is not None]


def test_echo_env_hook(direct_double: Double) -> None:
    direct_double.set(echo_env=["HTTPS_PROXY"])
    result = direct_double.run("apply", env={"HTTPS_PROXY": "http://u:pw@proxy:3128"})
    assert 'msg="environment HTTPS_PROXY=http://u:pw@proxy:3128"' in result.stdout


def test_debug_adds_timestamps_and_debug_lines(direct_double: Double) -> None:
    result = direct_double.run("apply", "--debug")
    assert re.search(r'^time="[^"]+" level=debug msg=', result.stdout, re.MULTILINE)
    assert re.search(r'^time="[^"]+" level=info msg="==> Running phase: Connect to hosts"', result.stdout,
                     re.MULTILINE)
    root_flag = direct_double.run("--debug", "apply")  # parsed, then ignored: the command has its own --debug
    assert "level=debug" not in root_flag.stdout


def test_state_survives_parallel_runs(direct_double: Double) -> None:
    direct_double.set(running=True)
    procs = [subprocess.Popen([str(DOUBLE), "backup", "-o", f"b{n}.tgz", "--config", str(direct_double.config)],
                              env=direct_double.environment(PINNED), cwd=direct_double.dir,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for n in range(6)]
    assert [p.wait(timeout=60) for p in procs] == [0] * 6
    assert direct_double.state()["backups"] == 6


def test_runs_with_a_bare_python(tmp_path: Path, k0sctl_env: dict[str, str]) -> None:
    """The double needs nothing but the standard library (also when started as `python3 k0sctl`)."""
    env = {k: v for k, v in k0sctl_env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    proc = subprocess.run(["python3", "-I", str(DOUBLE), "version"], env=env, capture_output=True, text=True,
                          check=True, timeout=60, cwd=tmp_path)
    assert proc.stdout.startswith(f"version: {PINNED}\n")
    assert os.access(DOUBLE, os.X_OK)
