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

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import TracebackType

from k0sctl_resource.config.models import Source
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.workspace import Workspace, write_private


class SshEnvironment:
    """Context manager giving the environment variables k0sctl needs to reach the hosts."""

    def __init__(self, source: Source, workspace: Workspace) -> None:
        self.source = source
        self.workspace = workspace
        self.env: dict[str, str] = {}
        self._agent: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> SshEnvironment:
        ssh_dir = self.workspace.dir("ssh")
        known_hosts = self.write_known_hosts(ssh_dir)
        self.env["SSH_KNOWN_HOSTS"] = str(known_hosts)
        self.env["PATH"] = f"{self._ssh_wrapper(ssh_dir, known_hosts)}{os.pathsep}{os.environ.get('PATH', '')}"
        if self.source.ssh_private_key:
            self.env["SSH_AUTH_SOCK"] = str(self._start_agent(ssh_dir, self.source.ssh_private_key))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._agent is not None:
            self._agent.send_signal(signal.SIGTERM)
            try:
                self._agent.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._agent.kill()
            self._agent = None

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

    def _start_agent(self, ssh_dir: Path, key: str) -> Path:
        agent_bin = shutil.which("ssh-agent")
        add_bin = shutil.which("ssh-add")
        if agent_bin is None or add_bin is None:
            raise ResourceError("source.ssh_private_key needs ssh-agent and ssh-add (openssh-client) on PATH")
        sock = ssh_dir / "agent.sock"
        self._agent = subprocess.Popen([agent_bin, "-D", "-a", str(sock)], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                       start_new_session=True)
        deadline = time.monotonic() + 10
        while not sock.exists():
            if self._agent.poll() is not None or time.monotonic() > deadline:
                raise ResourceError("could not start ssh-agent for source.ssh_private_key")
            time.sleep(0.02)
        material = key if key.endswith("\n") else key + "\n"
        proc = subprocess.run([add_bin, "-q", "-"], input=material.encode(), capture_output=True,
                              env={**os.environ, "SSH_AUTH_SOCK": str(sock), "SSH_ASKPASS_REQUIRE": "never",
                                   "DISPLAY": ""},
                              timeout=30, check=False)
        if proc.returncode != 0:
            reason = proc.stderr.decode(errors="replace").strip().splitlines()
            detail = reason[-1] if reason else f"exit {proc.returncode}"
            if "passphrase" in detail.lower():
                detail = "the key has a passphrase; give an unencrypted key"
            raise ResourceError(f"source.ssh_private_key: not a usable private key ({detail})")
        log.info("ssh: source.ssh_private_key loaded into a private ssh-agent; host keys "
                 + ("verified against source.ssh_known_hosts" if self.strict
                    else "trusted on first use for this step only"))
        return sock
