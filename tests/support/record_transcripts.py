"""Records what the REAL k0sctl prints, for the reader of its output (k0sctl/transcript.py) to be tested against.

    sudo .venv/bin/python -m tests.support.record_transcripts [VERSION ...]   (default: the pinned release and v0.28.0)

For each version, on one k0s test node (tests/support/k0s_node.py), a fixed sequence of k0sctl commands runs
twice: once with k0sctl's output on a pipe (logfmt, as in Concourse) and once on a pseudo-terminal (coloured
text). Every run's output (stdout and stderr together, as the resource reads them) is written unchanged to
tests/contract/data/transcripts/<version>/<mode>/<name>.txt, with `# exit <code>` as its last line. The test
nodes hold no secret worth hiding: the transcripts are kept as k0sctl wrote them.
"""

from __future__ import annotations

import contextlib
import os
import pty
import subprocess
import sys
from pathlib import Path

from tests.support import OLDER, PINNED, ROOT
from tests.support.k0s_node import K0sLab
from tests.support.k0sctl_fixtures import real_k0sctl
from tests.support.netns import NetnsLab
from tests.support.node import HostGuard, require_node_support

OUT = ROOT / "tests" / "contract" / "data" / "transcripts"
NEWER_K0S = "v1.32.3+k0s.0"

# (name, argv after the config, spec.k0s.version or None for the default)
SEQUENCE: tuple[tuple[str, tuple[str, ...], str | None], ...] = (
    ("apply-fresh", ("apply",), None),
    ("apply-dry-run-unchanged", ("apply", "--dry-run"), None),
    ("apply-dry-run-upgrade", ("apply", "--dry-run"), NEWER_K0S),
    ("backup", ("backup", "-o", "{work}/backup.tar.gz"), None),
    ("apply-restore-running", ("apply", "--restore-from", "{work}/backup.tar.gz"), None),
    ("reset", ("reset", "--force"), None),
    ("backup-no-controller", ("backup", "-o", "{work}/none.tar.gz"), None),
    ("apply-restore", ("apply", "--restore-from", "{work}/backup.tar.gz"), None),
    ("reset-after-restore", ("reset", "--force"), None),
)


def _run_pipe(argv: list[str], env: dict[str, str]) -> tuple[bytes, int]:
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=300, check=False)
    return proc.stdout, proc.returncode


def _run_tty(argv: list[str], env: dict[str, str]) -> tuple[bytes, int]:
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return b"".join(chunks), proc.wait(timeout=300)


def record(version: str) -> None:
    binary = real_k0sctl(version)
    guard = HostGuard()
    with NetnsLab() as netns, contextlib.ExitStack():
        root = Path(f"/tmp/k0sctl-transcripts-{os.getpid()}")
        lab = K0sLab(netns, root)
        lab.node("single")
        work = root / "work"
        work.mkdir()
        for mode, runner in (("logfmt", _run_pipe), ("terminal", _run_tty)):
            target = OUT / version / mode
            target.mkdir(parents=True, exist_ok=True)
            for name, args, k0s in SEQUENCE:
                config = work / "k0sctl.yaml"
                text = lab.k0sctl_yaml("transcripts", k0s) if k0s else lab.k0sctl_yaml("transcripts")
                config.write_text(text.replace("        port: 22\n",
                                               f"        port: 22\n        keyPath: {lab.client.path}\n"))
                home = work / "home"
                home.mkdir(exist_ok=True)
                env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
                       "TERM": "xterm-256color", "XDG_CACHE_HOME": str(work / "cache"),
                       "SSH_KNOWN_HOSTS": "", "DISABLE_TELEMETRY": "true", "DISABLE_UPGRADE_CHECK": "true"}
                argv = lab.ctl.command([str(binary), args[0], "--config", str(config),
                                        *(a.format(work=work) for a in args[1:])])
                output, code = runner(argv, env)
                (target / f"{name}.txt").write_bytes(output + f"# exit {code}\n".encode())
                print(f"{version} {mode} {name}: exit {code}", file=sys.stderr)
            for leftover in work.glob("*.tar.gz"):
                leftover.unlink()
    guard.check()


def main() -> None:
    require_node_support()
    for version in sys.argv[1:] or [PINNED, OLDER]:
        record(version)


if __name__ == "__main__":
    main()
