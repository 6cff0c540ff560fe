"""Credentials for the backup repository, handed to git through its environment only.

- SSH (`ssh://…` and scp-style `git@host:path`): `source.backup.private_key` is written to a 0600 file in
  the step's private workspace and `GIT_SSH_COMMAND` runs `ssh -i <that file> -o IdentitiesOnly=yes` with
  a private known_hosts file: the lines of `source.ssh_known_hosts` (checked strictly) or an empty file
  that trust-on-first-use fills for this step only. `~/.ssh` (config, keys, known_hosts, agent) is
  never read or written.
- HTTPS: `source.backup.username`/`password` (or credentials written into the URI, which are taken out
  of it) reach git through a `GIT_ASKPASS` helper script in the workspace that reads them from the
  environment of the git process. The URL git sees, stores and prints never carries a credential, and
  git's credential helpers are switched off so that nothing is remembered on disk.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass
from typing import Literal

from k0sctl_resource.config.models import BackupRepo, Source
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT
from k0sctl_resource.runtime.workspace import Workspace, write_private

Transport = Literal["ssh", "http", "file", "git"]

USERNAME_VAR = "K0SCTL_RESOURCE_GIT_USERNAME"
PASSWORD_VAR = "K0SCTL_RESOURCE_GIT_PASSWORD"  # noqa: S105 - the name of a variable, not a secret

_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>\[[^\]]+\]|[^@/:]+):(?P<path>(?!//).*)$")

_ASKPASS_SCRIPT = f"""#!/bin/sh
# git asks for the user name and then the password; both come from this process's environment.
case "$1" in
  [Uu]sername*) printf '%s\\n' "${USERNAME_VAR}" ;;
  *) printf '%s\\n' "${PASSWORD_VAR}" ;;
esac
"""


@dataclass(frozen=True)
class RemoteUrl:
    """The backup repository's URL, split into what git may see and the credentials it must not."""

    url: str  # credential-free: passed to git, shown in logs and errors
    transport: Transport
    host: str | None
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, uri: str) -> RemoteUrl:
        text = uri.strip()
        if "://" in text:
            parts = urllib.parse.urlsplit(text)
            scheme = parts.scheme.lower()
            if scheme in ("ssh", "git+ssh", "ssh+git"):
                transport: Transport = "ssh"
            elif scheme in ("http", "https"):
                transport = "http"
            elif scheme == "file":
                transport = "file"
            elif scheme == "git":
                transport = "git"
            else:
                raise ResourceError(f"source.backup.uri: unsupported scheme {scheme!r} "
                                    "(use ssh://, git@host:path, https:// or file://)")
            username = urllib.parse.unquote(parts.username) if parts.username else None
            password = urllib.parse.unquote(parts.password) if parts.password is not None else None
            host = parts.hostname
            netloc = parts.netloc.rsplit("@", 1)[-1]
            if transport == "ssh" and username:
                netloc = f"{parts.username}@{netloc}"  # the SSH login name is no secret
                username = None
            if transport == "ssh" and password:
                raise ResourceError("source.backup.uri: an ssh:// URL cannot carry a password; "
                                    "use source.backup.private_key")
            clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))
            if transport != "file" and not host:
                raise ResourceError("source.backup.uri: the URL names no host")
            return cls(url=clean, transport=transport, host=host, username=username, password=password)
        if text.startswith("/"):
            return cls(url=text, transport="file", host=None)
        match = _SCP_LIKE.match(text)
        if match is None or not match.group("path"):
            raise ResourceError("source.backup.uri: expected an ssh://, git@host:path, https:// or file:// URL")
        return cls(url=text, transport="ssh", host=match.group("host").strip("[]"))


class GitAuth:
    """The environment every git command against the backup repository runs with."""

    def __init__(self, source: Source, workspace: Workspace) -> None:
        if source.backup is None:
            raise ResourceError("source.backup is not configured")
        self.backup: BackupRepo = source.backup
        self.source = source
        self.workspace = workspace
        self.remote = RemoteUrl.parse(self.backup.uri)
        self.username = self.backup.username or self.remote.username
        self.password = self.backup.password if self.backup.password is not None else self.remote.password
        REDACT.add(self.password, self.backup.private_key)
        self._env: dict[str, str] | None = None

    @property
    def url(self) -> str:
        return self.remote.url

    @property
    def env(self) -> dict[str, str]:
        if self._env is None:
            self._env = self._build()
        return self._env

    def _build(self) -> dict[str, str]:
        env: dict[str, str] = {
            "GIT_TERMINAL_PROMPT": "0",
            # No credential helper may remember anything; a user's helpers are switched off for us.
            "GIT_CONFIG_COUNT": "2",
            "GIT_CONFIG_KEY_0": "credential.helper",
            "GIT_CONFIG_VALUE_0": "",
            "GIT_CONFIG_KEY_1": "core.askPass",
            "GIT_CONFIG_VALUE_1": "",
            "SSH_ASKPASS_REQUIRE": "never",
        }
        folder = self.workspace.dir("git-auth")
        if self.remote.transport == "ssh" or self.backup.private_key:
            env["GIT_SSH_COMMAND"] = self._ssh_command(folder)
            env["GIT_SSH_VARIANT"] = "ssh"
        if self.remote.transport == "http":
            askpass = write_private(folder / "askpass", _ASKPASS_SCRIPT, mode=0o700)
            env["GIT_ASKPASS"] = str(askpass)
            env[USERNAME_VAR] = self.username or ""
            env[PASSWORD_VAR] = self.password or ""
        return env

    def _ssh_command(self, folder: os.PathLike[str]) -> str:
        ssh = shutil.which("ssh")
        if ssh is None:
            raise ResourceError("source.backup.uri is an SSH URL but ssh (openssh-client) is not on PATH")
        known_hosts = str(write_private(os.path.join(folder, "known_hosts"), self.source.ssh_known_hosts or ""))
        checking = "yes" if self.source.ssh_known_hosts else "accept-new"
        argv = [ssh, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", "IdentityAgent=none", "-o", f"UserKnownHostsFile={known_hosts}",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", f"StrictHostKeyChecking={checking}",
                "-o", "ConnectTimeout=30", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
        if self.backup.private_key:
            key = self._write_key(folder)
            argv += ["-i", key]
        else:
            # Only the key we are given is ever offered: never ~/.ssh/id_* nor an agent.
            argv += ["-i", os.path.join(folder, "no-key-configured")]
        return " ".join(shlex.quote(a) for a in argv)

    def _write_key(self, folder: os.PathLike[str]) -> str:
        assert self.backup.private_key is not None
        material = self.backup.private_key.replace("\r\n", "\n").strip() + "\n"
        path = str(write_private(os.path.join(folder, "id_backup"), material))
        keygen = shutil.which("ssh-keygen")
        if keygen is not None:
            # Fail with a clear sentence now rather than with ssh's "Permission denied" later.
            proc = subprocess.run([keygen, "-y", "-P", "", "-f", path], capture_output=True, text=True,
                                  timeout=30, check=False, stdin=subprocess.DEVNULL)
            if proc.returncode != 0:
                detail = (proc.stderr or "").strip().lower()
                if "passphrase" in detail or "incorrect" in detail:
                    reason = "the key is protected by a passphrase; give an unencrypted key"
                else:
                    reason = "not an OpenSSH or PEM private key"
                raise ResourceError(f"source.backup.private_key: not usable ({reason})")
        return path
