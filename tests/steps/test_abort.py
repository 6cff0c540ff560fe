"""Nothing secret lingers (docs/security.md): a Concourse abort (SIGTERM or SIGINT) at
any moment, a failure, or a success leaves no private directory in TMPDIR and no process of the step
(ssh-agent, git, ssh, k0sctl and its children) running; k0sctl never sees the backup repository's key.

Processes "of the step" are found by their environment: every one of them inherits the step's TMPDIR,
which is unique to the test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import backup_source, put_request, ssh_key
from tests.support.fixtures import Double, k0sctl_yaml
from tests.support.resource import Resource, executable
from tests.support.sshd import SshServer, bare_repo


def step_processes(tmpdir: Path) -> list[str]:
    """`pid cmdline` of every live process whose environment holds the step's TMPDIR."""
    needle = f"TMPDIR={tmpdir}".encode() + b"\0"
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry.name}/environ").read_bytes()
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in environ + b"\0":
            words = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{entry.name} {words}")
    return found


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class RunningStep:
    def __init__(self, resource: Resource, args: list[str], request: dict[str, Any],
                 env: dict[str, str] | None = None) -> None:
        self.resource = resource
        self.proc = subprocess.Popen([executable(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=resource.environment(env))
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(request).encode())
        self.proc.stdin.close()
        self.proc.stdin = None

    def signal_and_finish(self, sig: int = signal.SIGTERM, timeout: float = 40) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out.decode(), err.decode()


def assert_nothing_left(resource: Resource) -> None:
    """No private directory in TMPDIR, no process of the step (after a short grace for the kernel)."""
    deadline = time.monotonic() + 3
    while step_processes(resource.tmpdir) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert step_processes(resource.tmpdir) == []
    assert list(resource.tmpdir.glob("k0sctl-resource-*")) == []


def assert_aborted(code: int, out: str, err: str, sig: int) -> None:
    assert code == 128 + sig, err
    assert out == ""  # no answer: Concourse marks the step failed (aborted)
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "aborted" in errors[0] and signal.Signals(sig).name in errors[0], err
    assert "Traceback" not in err and "internal error" not in err


@pytest.fixture
def slow_repo(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A bare repository whose pre-receive hook marks that a push arrived, then hangs (a slow server)."""
    repo = bare_repo(tmp_path / "slow.git")
    marker = tmp_path / "push-arrived"
    hook = repo / "hooks" / "pre-receive"
    hook.write_text(f"#!/bin/sh\ntouch '{marker}'\nsleep 120\n", encoding="utf-8")
    hook.chmod(0o755)
    yield repo, marker


# -- SIGTERM / SIGINT at several moments -----------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_abort_during_k0sctl_stops_everything(resource: Resource, workdir: Path, double: Double,
                                              ssh_keypair: tuple[str, str], sig: int) -> None:
    private, _ = ssh_keypair
    resource.secrets.append(private)
    double.set(sleep=60, spawn_holder=120)  # k0sctl hangs, and left a child that holds its stdout
    step = RunningStep(resource, ["out", str(workdir)],
                       put_request({"ssh_private_key": private}, "apply"))
    wait_for(lambda: bool(double.state().get("holder_pids")), "k0sctl to start")
    assert any("ssh-agent" in p for p in step_processes(resource.tmpdir))
    code, out, err = step.signal_and_finish(sig)
    assert_aborted(code, out, err, sig)
    assert "k0sctl was stopped" in err
    assert_nothing_left(resource)


def test_abort_during_k0sctl_that_ignores_sigterm(resource: Resource, workdir: Path, double: Double) -> None:
    double.set(sleep=120, ignore_sigterm=True, spawn_holder=120, holder_daemon=True)
    step = RunningStep(resource, ["out", str(workdir)], put_request({}, "apply"))
    wait_for(lambda: bool(double.state().get("holder_pids")), "k0sctl to start")
    started = time.monotonic()
    code, out, err = step.signal_and_finish()
    assert time.monotonic() - started < 25  # SIGKILL after the grace period
    assert_aborted(code, out, err, signal.SIGTERM)
    assert_nothing_left(resource)


def test_abort_during_a_push_to_a_slow_server(resource: Resource, workdir: Path, double: Double,
                                               slow_repo: tuple[Path, Path]) -> None:
    repo, marker = slow_repo
    double.set(running=True)
    step = RunningStep(resource, ["out", str(workdir)],
                       put_request(backup_source(f"file://{repo}", plaintext=True), "backup"))
    wait_for(marker.exists, "the push to reach the server")
    assert any("git" in p for p in step_processes(resource.tmpdir))
    code, out, err = step.signal_and_finish()
    assert_aborted(code, out, err, signal.SIGTERM)
    assert_nothing_left(resource)  # git push, git-receive-pack and the hook's sleep included


def ssh_push_under_way(resource: Resource, workdir: Path, double: Double, sshd_server: SshServer,
                       slow_repo: tuple[Path, Path]) -> RunningStep:
    """A put backup whose push over SSH reached a server that hangs; ssh still runs."""
    repo, marker = slow_repo
    double.set(running=True)
    resource.secrets.append(sshd_server.client_key)
    source = backup_source(sshd_server.url(repo), private_key=sshd_server.client_key,
                           known_hosts=sshd_server.known_hosts, plaintext=True)
    step = RunningStep(resource, ["out", str(workdir)], put_request(source, "backup"))
    wait_for(marker.exists, "the push to reach the server")
    assert any(" ssh " in f" {p} " or "/ssh " in p for p in step_processes(resource.tmpdir))
    return step


def test_abort_during_an_ssh_push_removes_the_key(resource: Resource, workdir: Path, double: Double,
                                                  sshd_server: SshServer, slow_repo: tuple[Path, Path]) -> None:
    step = ssh_push_under_way(resource, workdir, double, sshd_server, slow_repo)
    code, out, err = step.signal_and_finish()
    assert_aborted(code, out, err, signal.SIGTERM)
    assert_nothing_left(resource)
    resource.scan(subprocess_run(code, out, err))  # the key is in no file under TMPDIR or HOME


def subprocess_run(code: int, out: str, err: str) -> Any:
    from tests.support.resource import StepRun

    return StepRun([], code, out, err)


def _slow_tool(bin_dir: Path, name: str, marker: Path) -> None:
    real = subprocess.run(["sh", "-c", f"command -v {name}"], capture_output=True, text=True,
                          check=True).stdout.strip()
    wrapper = bin_dir / name
    wrapper.write_text(f"#!/bin/sh\ntouch '{marker}'\nsleep 3\nexec '{real}' \"$@\"\n", encoding="utf-8")
    wrapper.chmod(0o755)


@pytest.mark.parametrize("tool", ["ssh-agent", "ssh-add"])
def test_abort_during_ssh_agent_setup(resource: Resource, workdir: Path, double: Double, tmp_path: Path,
                                      ssh_keypair: tuple[str, str], tool: str) -> None:
    private, _ = ssh_keypair
    resource.secrets.append(private)
    bin_dir = tmp_path / "slow-bin"
    bin_dir.mkdir()
    marker = tmp_path / f"{tool}-started"
    _slow_tool(bin_dir, tool, marker)
    resource.path_prefix.insert(0, bin_dir)
    step = RunningStep(resource, ["out", str(workdir)], put_request({"ssh_private_key": private}, "apply"))
    wait_for(marker.exists, f"{tool} to start")
    code, out, err = step.signal_and_finish()
    assert_aborted(code, out, err, signal.SIGTERM)
    assert_nothing_left(resource)
    assert double.commands() == []  # k0sctl never ran


def _catches(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` (SigCgt in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return False
    caught = next((line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), "0")
    return bool(int(caught, 16) & (1 << (signum - 1)))


def test_abort_while_reading_the_request_is_clean(resource: Resource) -> None:
    proc = subprocess.Popen([executable(), "check"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=resource.environment())
    wait_for(lambda: _catches(proc.pid, signal.SIGTERM), "the step to take over SIGTERM")  # then it reads stdin
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert_aborted(proc.returncode, out.decode(), err.decode(), signal.SIGTERM)
    assert_nothing_left(resource)


# -- failures and successes leave nothing either ---------------------------------------------------

def _protected_key(tmp_path: Path) -> str:
    path = tmp_path / "protected"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "correct horse", "-f", str(path)], check=True)
    return path.read_text(encoding="utf-8")


def test_passphrase_protected_ssh_key_leaves_no_agent(resource: Resource, workdir: Path, double: Double,
                                                      tmp_path: Path) -> None:
    key = _protected_key(tmp_path)
    run = resource.put(put_request({"ssh_private_key": key}, "apply"), workdir)
    assert run.returncode == 1
    assert run.error_lines == ["error: source.ssh_private_key: not a usable private key (the key has a "
                               "passphrase; give an unencrypted key)"]
    assert_nothing_left(resource)
    assert double.commands() == []


def test_passphrase_protected_backup_key_leaves_nothing(resource: Resource, workdir: Path, double: Double,
                                                        tmp_path: Path, sshd_server: SshServer) -> None:
    key = _protected_key(tmp_path)
    repo = bare_repo(tmp_path / "r.git")
    source = backup_source(sshd_server.url(repo), private_key=key, known_hosts=sshd_server.known_hosts,
                           plaintext=True)
    run = resource.put(put_request(source, "backup"), workdir)
    assert run.returncode == 1 and "passphrase" in run.error_lines[0]
    assert_nothing_left(resource)


def test_k0sctl_failure_and_success_leave_no_process(resource: Resource, workdir: Path, double: Double,
                                                     ssh_keypair: tuple[str, str]) -> None:
    private, _ = ssh_keypair
    double.set(spawn_holder=60, fail={"apply": "boom"})
    failed = resource.put(put_request({"ssh_private_key": private}, "apply"), workdir)
    assert failed.returncode == 1 and "boom" in failed.error_lines[0]
    assert_nothing_left(resource)
    double.set(fail={}, holder_daemon=True)
    started = time.monotonic()
    resource.put(put_request({"ssh_private_key": private}, "apply"), workdir).expect_ok()
    assert time.monotonic() - started < 20  # the holder of k0sctl's stdout did not hold the step
    assert_nothing_left(resource)
    assert len(double.state()["holder_pids"]) == 2


# -- k0sctl never sees the backup repository's key --------------------------------------------------

def test_files_upload_cannot_find_the_backup_key(resource: Resource, tmp_path: Path, double: Double,
                                                 sshd_server: SshServer) -> None:
    workdir = tmp_path / "build"
    (workdir / "config").mkdir(parents=True)
    doc = json.loads(k0sctl_yaml())
    everything = "${TMPDIR}/**"  # k0sctl expands variables in its config; ** matches the private dirs
    doc["spec"]["hosts"][0]["files"] = [{"src": everything, "dstDir": "/tmp/loot"}]
    (workdir / "config" / "k0sctl.yaml").write_text(json.dumps(doc), encoding="utf-8")
    repo = bare_repo(tmp_path / "backups.git")
    stranger = ssh_key(tmp_path, "stranger")  # a second secret: an age-free SSH identity
    resource.secrets += [sshd_server.client_key, stranger.private]
    source = backup_source(sshd_server.url(repo), private_key=sshd_server.client_key,
                           known_hosts=sshd_server.known_hosts, plaintext=True)
    source["ssh_private_key"] = stranger.private
    source["k0sctl"] = {"env": {"GIT_SSH_COMMAND": "leak"}}
    double.set(running=True, echo_env=["GIT_SSH_COMMAND", "K0SCTL_RESOURCE_GIT_PASSWORD", "GIT_ASKPASS"])
    run = resource.put(put_request(source, "apply", backup_first=True), workdir,
                       env={"GIT_SSH_COMMAND": "inherited", "K0SCTL_RESOURCE_GIT_PASSWORD": "inherited"})
    run.expect_ok()
    uploaded = double.state()["uploaded"]
    assert uploaded, "the double uploaded nothing: the test would prove nothing"
    assert any("/k0sctl-resource-" in item["path"] for item in uploaded)  # it did reach the private dir
    assert not [item for item in uploaded if item["path"].endswith("id_backup")]
    key_digest = _sha256(sshd_server.client_key.replace("\r\n", "\n").strip() + "\n")
    assert key_digest not in {item.get("sha256") for item in uploaded}
    assert "environment GIT_SSH_COMMAND=leak" in run.stderr  # what the user set for k0sctl stays
    assert "inherited" not in run.stderr  # what the step inherited for git does not reach k0sctl
    assert len(double.commands()) == 2  # the backup first, then the apply


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()


# -- k0sctl.timeout bounds the whole run, children that hold its output included (class 5) ----------

@pytest.mark.parametrize("daemon", [False, True])
def test_timeout_ends_a_run_whose_child_holds_stdout(resource: Resource, workdir: Path, double: Double,
                                                     daemon: bool) -> None:
    double.set(sleep=60, spawn_holder=120, holder_daemon=daemon)
    started = time.monotonic()
    run = resource.put(put_request({"k0sctl": {"timeout": "2s"}}, "apply"), workdir, timeout=60)
    assert time.monotonic() - started < 20
    assert run.returncode == 1
    assert run.error_lines[0].startswith("error: k0sctl apply did not finish within source.k0sctl.timeout (2s)")
    assert_nothing_left(resource)
    (holder,) = double.state()["holder_pids"]
    assert not Path(f"/proc/{holder}").exists() or b"zombie" in Path(f"/proc/{holder}/status").read_bytes()


def test_timeout_with_sigterm_ignored_everywhere(resource: Resource, workdir: Path, double: Double) -> None:
    double.set(sleep=120, ignore_sigterm=True, spawn_holder=120, holder_daemon=True)
    started = time.monotonic()
    run = resource.put(put_request({"k0sctl": {"timeout": "1s"}}, "apply"), workdir, timeout=90)
    assert 10 <= time.monotonic() - started < 30  # SIGKILL after the grace, then no wait for the holder
    assert run.returncode == 1 and "source.k0sctl.timeout" in run.error_lines[0]
    assert_nothing_left(resource)


def test_supervised_kills_an_escaped_child_at_the_deadline(tmp_path: Path) -> None:
    """The runner alone (no step around it): a child in its own session that holds stdout is found
    through the process tree while k0sctl still runs, and killed with it."""
    from k0sctl_resource.k0sctl.process import Supervised

    pid_file = tmp_path / "child.pid"
    proc = subprocess.Popen(["sh", "-c", f"setsid sh -c 'echo $$ > {pid_file}; exec sleep 60' & "
                             "echo started; exec sleep 60"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    seen: list[str] = []
    run = Supervised(proc, timeout=1.0, on_line=seen.append)
    started = time.monotonic()
    try:
        code = run.run()
    finally:
        run.close()
    assert time.monotonic() - started < 8
    assert run.timed_out and code == -signal.SIGTERM and seen == ["started"]
    child = int(pid_file.read_text())
    wait_for(lambda: not Path(f"/proc/{child}").exists()
             or b"State:\tZ" in Path(f"/proc/{child}/status").read_bytes(), "the escaped child to die", 5)


def test_supervised_never_holds_output_without_newlines_whole() -> None:
    """A child that writes megabytes without a newline is passed on in pieces of bounded size, all of it."""
    from k0sctl_resource.k0sctl.process import MAX_LINE, Supervised

    size = 5 * MAX_LINE + 123
    proc = subprocess.Popen(["sh", "-c", f"head -c {size} /dev/zero | tr '\\0' x; echo; echo done"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    seen: list[str] = []
    run = Supervised(proc, timeout=30.0, on_line=seen.append)
    try:
        assert run.run() == 0
    finally:
        run.close()
    assert seen[-1] == "done" and len(seen) > 2
    assert max(len(line) for line in seen) <= MAX_LINE + 65536  # one held line plus one read
    assert sum(len(line) for line in seen[:-1]) == size


@pytest.mark.parametrize("watchdog_runs", [True, False], ids=["watchdog", "no-watchdog"])
def test_an_abort_sends_k0sctl_one_sigterm(monkeypatch: pytest.MonkeyPatch, watchdog_runs: bool) -> None:
    """k0sctl takes a second SIGTERM as "Ctrl-C again" and exits at once, mid-phase. The watchdog hears the
    step's signal and sends k0sctl's group its SIGTERM; the step then sends none of its own (a loaded machine
    let the two arrive apart). Without a watchdog the step sends it. Either way SIGKILL follows the grace."""
    from k0sctl_resource.k0sctl import process
    from k0sctl_resource.runtime import watchdog

    monkeypatch.setattr(watchdog, "pid", lambda: 4_194_304 if watchdog_runs else 0)  # no such pid is signalled
    proc = subprocess.Popen(["sh", "-c", "trap 'echo TERM' TERM; echo started; while :; do sleep 0.05; done"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    seen: list[str] = []
    run = process.Supervised(proc, timeout=60.0, on_line=seen.append)
    try:

        def started() -> bool:
            run._read()
            return seen == ["started"]

        wait_for(started, "the child to start", 30)
        code = run.stop(signal.SIGTERM)
    finally:
        run.close()
    assert code == -signal.SIGKILL, seen
    assert seen.count("TERM") == (0 if watchdog_runs else 1), seen
