"""SSH for k0sctl: the key from `source.ssh_private_key` and the host keys, without touching any home.

- The private key is loaded into an `ssh-agent` that listens on a socket in the private workspace;
  k0sctl (rig) offers the agent's keys to every host (`SSH_AUTH_SOCK`). The key never lands in a file.
- Host keys: `SSH_KNOWN_HOSTS` points k0sctl at a private known_hosts file: the lines of
  `source.ssh_known_hosts` when set (verified strictly), otherwise an empty file that trust-on-first-use
  fills for this step only.
- Hosts using k0sctl's `openSSH` connection run the system `ssh`; a wrapper placed first on PATH adds the
  same known_hosts file and checking policy, so that no `~/.ssh/known_hosts` is ever written either.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from k0sctl_resource.config.models import Source
from k0sctl_resource.runtime import lifecycle, log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.workspace import Workspace, write_private

SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes, the last one a NUL


class SshAgent:
    """A private `ssh-agent` listening on `sock`, stopped when the block ends (or by the step's final
    sweep, should an abort cut the block short). When setting it up fails, it is stopped at once."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock
        self._proc: subprocess.Popen[bytes] | None = None
        self._token = 0

    def __enter__(self) -> SshAgent:
        agent_bin = shutil.which("ssh-agent")
        if agent_bin is None:
            raise ResourceError("ssh-agent (openssh-client) is not on PATH")
        size = len(os.fsencode(self.sock))
        if size > SOCKET_PATH_MAX:
            raise ResourceError(f"cannot start ssh-agent: its socket path {self.sock} is {size} bytes, more than the "
                                f"{SOCKET_PATH_MAX} a Unix socket allows; set TMPDIR to a shorter directory")
        self._proc = subprocess.Popen([agent_bin, "-D", "-a", str(self.sock)], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True, preexec_fn=lifecycle.child_setup)  # noqa: PLW1509 - see lifecycle.child_setup
        self._token = lifecycle.at_exit(self._stop)
        lifecycle.helper(self._proc.pid)
        try:
            deadline = time.monotonic() + 10
            while not self._listening():  # the socket file appears at bind(), before the agent listens
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise ResourceError("could not start ssh-agent")
                time.sleep(0.02)
        except BaseException:
            self._stop()
            raise
        return self

    def _listening(self) -> bool:
        if not self.sock.exists():
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(self.sock))
            except OSError:
                return False
        return True

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()  # at once: the agent holds the key, and has nothing to save
            proc.wait()
            lifecycle.helper(proc.pid, alive=False)
        self.sock.unlink(missing_ok=True)
        lifecycle.done(self._token)

    def add(self, key: str, what: str) -> None:
        """Load the private key `key` (named `what` in errors), which must be unencrypted."""
        add_bin = shutil.which("ssh-add")
        if add_bin is None:
            raise ResourceError(f"{what} needs ssh-add (openssh-client) on PATH")
        material = key if key.endswith("\n") else key + "\n"
        # No terminal and no askpass: a key with a passphrase fails instead of prompting.
        proc = subprocess.run([add_bin, "-q", "-"], input=material.encode(), capture_output=True,
                              env={**os.environ, "SSH_AUTH_SOCK": str(self.sock), "SSH_ASKPASS_REQUIRE": "never",
                                   "DISPLAY": ""},
                              timeout=30, check=False, start_new_session=True, preexec_fn=lifecycle.child_setup)
        if proc.returncode != 0:
            reason = proc.stderr.decode(errors="replace").strip().splitlines()
            detail = reason[-1] if reason else f"exit {proc.returncode}"
            if "passphrase" in detail.lower():
                detail = "the key has a passphrase; give an unencrypted key"
            raise ResourceError(f"{what}: not a usable private key ({detail})")


class SshEnvironment:
    """Context manager giving the environment variables k0sctl needs to reach the hosts."""

    def __init__(self, source: Source, workspace: Workspace) -> None:
        self.source = source
        self.workspace = workspace
        self.env: dict[str, str] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> SshEnvironment:
        with contextlib.ExitStack() as stack:  # a failure below stops what was started
            ssh_dir = self.workspace.dir("ssh")
            known_hosts = self.write_known_hosts(ssh_dir)
            self.env["SSH_KNOWN_HOSTS"] = str(known_hosts)
            self.env["PATH"] = f"{self._ssh_wrapper(ssh_dir, known_hosts)}{os.pathsep}{os.environ.get('PATH', '')}"
            if self.source.ssh_private_key:
                agent = stack.enter_context(SshAgent(ssh_dir / "agent.sock"))
                agent.add(self.source.ssh_private_key, "source.ssh_private_key")
                self.env["SSH_AUTH_SOCK"] = str(agent.sock)
                log.info("ssh: source.ssh_private_key loaded into a private ssh-agent; host keys "
                         + ("verified against source.ssh_known_hosts" if self.strict
                            else "trusted on first use for this step only"))
            self._stack = stack.pop_all()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()

    @property
    def strict(self) -> bool:
        return bool(self.source.ssh_known_hosts)

    def write_known_hosts(self, ssh_dir: Path) -> Path:
        return write_private(ssh_dir / "known_hosts", self.source.ssh_known_hosts or "")

    def ssh_options(self, known_hosts: Path) -> list[str]:
        return [*self.source.host_key_options(known_hosts), "-o", "BatchMode=yes"]

    def _ssh_wrapper(self, ssh_dir: Path, known_hosts: Path) -> Path:
        real = shutil.which("ssh")
        bin_dir = ssh_dir / "bin"
        bin_dir.mkdir(mode=0o700, exist_ok=True)
        if real is None:
            return bin_dir
        opts = " ".join(f"'{o}'" for o in self.ssh_options(known_hosts))
        write_private(bin_dir / "ssh", f"#!/bin/sh\nexec '{real}' {opts} \"$@\"\n", mode=0o700)
        return bin_dir
