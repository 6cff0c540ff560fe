"""Aborts as Concourse's runtime does them, and SIGKILL at any moment.

The runtime sends SIGTERM, then SIGKILL 10 s later. k0sctl answers a first SIGTERM with "Aborting..."
and goes on with its phase (the double's `abort_finishes_phase`). The step must have removed its
secrets (ssh-agent, private directory) before it waits for k0sctl, and exited with its one `error:
aborted by SIGTERM` line before the runtime's SIGKILL. A SIGKILL of the step itself, at any moment,
leaves no process and no private file behind (after a short bounded wait for the watchdog).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.steps.test_abort import (
    RunningStep,
    assert_aborted,
    slow_repo,
    ssh_push_under_way,
    step_processes,
    wait_for,
)
from tests.support.backup_support import backup_source, put_request
from tests.support.fixtures import Double
from tests.support.resource import Resource, StepRun
from tests.support.sshd import SshServer

__all__ = ["slow_repo"]  # the fixture, used below

RUNTIME_GRACE = 10.0  # Concourse's containerd runtime: SIGKILL this long after SIGTERM


@dataclass
class Abort:
    code: int
    out: str
    err: str
    to_no_secret: float  # seconds from SIGTERM until no agent and no private directory remained
    to_exit: float  # seconds from SIGTERM until the step exited
    helper_alive_when_secrets_gone: bool


def secrets_gone(resource: Resource) -> bool:
    agents = [p for p in step_processes(resource.tmpdir) if "ssh-agent" in p]
    return not agents and not list(resource.tmpdir.glob("k0sctl-resource-*"))


def play_concourse(step: RunningStep | Any, resource: Resource, helper_alive: Callable[[], bool]) -> Abort:
    """SIGTERM, watch, SIGKILL at the runtime's grace period if the step is still there."""
    proc = step.proc
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    no_secret: float | None = None
    alive_then = False
    killed = False
    while proc.poll() is None:
        now = time.monotonic() - started
        if no_secret is None and secrets_gone(resource):
            no_secret, alive_then = now, helper_alive()
        if now >= RUNTIME_GRACE and not killed:
            proc.kill()
            killed = True
        time.sleep(0.01)
    exited = time.monotonic() - started
    out, err = proc.communicate(timeout=30)
    if no_secret is None and secrets_gone(resource):
        no_secret = exited
    return Abort(proc.returncode, out.decode(), err.decode(), no_secret if no_secret is not None else float("inf"),
                 exited, alive_then)


def pid_alive(pid: int) -> bool:
    try:
        return b"State:\tZ" not in Path(f"/proc/{pid}/status").read_bytes()
    except OSError:
        return False


def k0sctl_pid(resource: Resource) -> int | None:
    for line in step_processes(resource.tmpdir):
        pid, _, cmd = line.partition(" ")
        if re.search(r"k0sctl (apply|backup|reset) ", cmd + " "):
            return int(pid)
    return None


def assert_nothing_left_after_kill(resource: Resource) -> None:
    """The watchdog needs a moment: wait (bounded) until no process of the step and no private
    directory remain."""
    wait_for(lambda: step_processes(resource.tmpdir) == [] and not list(resource.tmpdir.glob("k0sctl-resource-*")),
             f"nothing left of the step: {step_processes(resource.tmpdir)}", timeout=20)


def test_concourse_abort_against_a_k0sctl_that_goes_on(resource: Resource, workdir: Path, double: Double,
                                                       ssh_keypair: tuple[str, str]) -> None:
    private, _ = ssh_keypair
    resource.secrets.append(private)
    # spawn_holder: the double records its holder once it has read the config and entered its phase;
    # a SIGTERM before that would find k0sctl still starting, with no phase to go on with.
    double.set(sleep=120, abort_finishes_phase=True, spawn_holder=120)
    step = RunningStep(resource, ["out", str(workdir)], put_request({"ssh_private_key": private}, "apply"))
    wait_for(lambda: k0sctl_pid(resource) is not None and bool(double.state().get("holder_pids")),
             "k0sctl to connect")
    pid = k0sctl_pid(resource)
    assert pid is not None
    result = play_concourse(step, resource, lambda: pid_alive(pid))
    print(f"apply (double): no secret after {result.to_no_secret:.2f}s, exit after {result.to_exit:.2f}s")
    assert result.code == 128 + signal.SIGTERM, "the runtime's SIGKILL came first: " + result.err
    assert_aborted(result.code, result.out, result.err, signal.SIGTERM)
    assert "error: aborted by SIGTERM" in result.err
    assert "Aborting... Press Ctrl-C again to exit now." in result.err  # k0sctl went on with its phase
    assert result.to_no_secret <= result.to_exit
    assert result.helper_alive_when_secrets_gone  # the secrets went before k0sctl was waited for
    assert_nothing_left_after_kill(resource)


# -- SIGKILL of the step -----------------------------------------------------------------------------

def test_sigkill_while_k0sctl_runs_leaves_nothing(resource: Resource, workdir: Path, double: Double,
                                                  ssh_keypair: tuple[str, str]) -> None:
    private, _ = ssh_keypair
    resource.secrets.append(private)
    double.set(sleep=120, spawn_holder=120, holder_daemon=True, abort_finishes_phase=True)
    step = RunningStep(resource, ["out", str(workdir)], put_request({"ssh_private_key": private}, "apply"))
    wait_for(lambda: bool(double.state().get("holder_pids")), "k0sctl and its daemon child to start")
    assert any("ssh-agent" in p for p in step_processes(resource.tmpdir))
    assert list(resource.tmpdir.glob("k0sctl-resource-*"))
    step.proc.kill()
    step.proc.communicate(timeout=30)
    assert_nothing_left_after_kill(resource)  # ssh-agent, k0sctl, its escaped daemon, the private folder
    (holder,) = double.state()["holder_pids"]
    assert not pid_alive(holder)


def test_sigkill_during_an_ssh_push_leaves_nothing(resource: Resource, workdir: Path, double: Double,
                                                   sshd_server: SshServer, slow_repo: tuple[Path, Path]) -> None:
    step = ssh_push_under_way(resource, workdir, double, sshd_server, slow_repo)
    step.proc.kill()
    out, err = step.proc.communicate(timeout=30)
    assert_nothing_left_after_kill(resource)  # git, ssh, the private folder
    resource.scan(StepRun([], step.proc.returncode, out.decode(), err.decode()))  # no key in any file


PASSPHRASE = "correct horse battery"


@dataclass
class PassphraseBackup:
    source: dict[str, Any]
    get_dir: str  # a get's directory (the archive as stored) inside the build directory


def passphrase_backup(resource: Resource, workdir: Path, double: Double, tmp_path: Path) -> PassphraseBackup:
    from tests.support.sshd import bare_repo

    repo = bare_repo(tmp_path / "pass.git")
    resource.secrets.append(PASSPHRASE)
    source = backup_source(f"file://{repo}", passphrase=PASSPHRASE)
    double.set(running=True)
    made = resource.put(put_request(source, "backup"), workdir, timeout=180).expect_ok()
    got = workdir / "backup"
    got.mkdir()
    resource.get({"source": source, "version": made.answer["version"]}, got, timeout=120).expect_ok()
    assert (got / "backup.tar.gz.age").exists() and not (got / "backup.tar.gz").exists()  # decrypt is opt-in
    double.set(running=False)
    return PassphraseBackup(source, "backup")


def forks_of(pid: int) -> list[int]:
    """Children of `pid` that are forks of it (the watchdog, a crypto child), not programs it ran."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_bytes()
            same = Path(f"/proc/{entry.name}/cmdline").read_bytes() == cmdline
        except OSError:
            continue
        if same and int(stat[stat.rfind(b")") + 2:].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cpu_seconds(pid: int) -> float:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def decrypting(step: RunningStep) -> bool:
    """The step's scrypt child (a fork of it that works, unlike its idle watchdog) runs, or the step ended."""
    return any(_cpu_seconds(pid) >= 0.1 for pid in forks_of(step.proc.pid)) or step.proc.poll() is not None


def test_sigkill_while_a_passphrase_archive_is_decrypted(resource: Resource, workdir: Path, double: Double,
                                                         tmp_path: Path) -> None:
    backup = passphrase_backup(resource, workdir, double, tmp_path)
    step = RunningStep(resource, ["out", str(workdir)],
                       put_request(backup.source, "apply", restore_from=backup.get_dir))
    wait_for(lambda: decrypting(step), "the decryption to start", timeout=120)
    assert step.proc.poll() is None, f"the step ended before the test could kill it: {step.proc.communicate()}"
    step.proc.kill()
    step.proc.communicate(timeout=30)
    assert_nothing_left_after_kill(resource)
    assert [argv[0] for argv in double.commands()] == ["backup"]  # the apply never reached k0sctl


def test_concourse_abort_while_a_get_decrypts(resource: Resource, workdir: Path, double: Double,
                                              tmp_path: Path) -> None:
    """scrypt holds the interpreter for seconds: it runs in a child, and the abort does not wait for it."""
    backup = passphrase_backup(resource, workdir, double, tmp_path)
    out = tmp_path / "plain"
    out.mkdir()
    ref = json.loads((workdir / backup.get_dir / "metadata.json").read_text(encoding="utf-8"))["ref"]
    step = RunningStep(resource, ["in", str(out)],
                       {"source": backup.source, "version": {"ref": ref}, "params": {"decrypt": True}})
    wait_for(lambda: decrypting(step), "the decryption to start", timeout=120)
    assert step.proc.poll() is None, f"the step ended before the test could abort it: {step.proc.communicate()}"
    result = play_concourse(step, resource, lambda: False)
    print(f"get decrypt: true (passphrase): no secret after {result.to_no_secret:.2f}s, "
          f"exit after {result.to_exit:.2f}s")
    assert result.code == 128 + signal.SIGTERM, "the runtime's SIGKILL came first: " + result.err
    assert_aborted(result.code, result.out, result.err, signal.SIGTERM)
    assert_nothing_left_after_kill(resource)
    assert [p.name for p in out.iterdir() if "backup.tar.gz" in p.name] == []  # no plain archive, not half of one


def test_no_core_dump_and_every_helper_limited(resource: Resource, workdir: Path, double: Double,
                                               ssh_keypair: tuple[str, str], tmp_path: Path) -> None:
    private, _ = ssh_keypair
    resource.secrets.append(private)
    double.set(sleep=120)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    from tests.support.resource import executable

    proc = subprocess.Popen([executable(), "out", str(workdir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=resource.environment(), cwd=cwd)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(put_request({"ssh_private_key": private}, "apply")).encode())
    proc.stdin.close()
    proc.stdin = None
    wait_for(lambda: k0sctl_pid(resource) is not None, "k0sctl to start")
    for line in step_processes(resource.tmpdir):
        pid = line.split()[0]
        limits = Path(f"/proc/{pid}/limits").read_text(encoding="utf-8")
        core = next(row.split()[4:6] for row in limits.splitlines() if row.startswith("Max core file size"))
        assert core in (["0", "0"], ["1", "1"]), f"{line}: core limit {core}"
    proc.send_signal(signal.SIGABRT)  # a crash: the default action writes a core file where allowed
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGABRT
    assert_nothing_left_after_kill(resource)
    assert list(cwd.iterdir()) == []  # core_pattern "core" would have written cwd/core
