"""Credentials and the environment for every git command against the backup repository.

- SSH (`ssh://…` and scp-style `git@host:path`): `source.backup.private_key` is in no named file at all:
  each git call gets it in a memory file (memfd, 0600) of its own, open only in that git and its ssh,
  closed when the call ends (`GitRunner`), and `GIT_SSH_COMMAND` runs
  `ssh -i /proc/<git>/fd/<that descriptor> -o IdentitiesOnly=yes` with a private known_hosts file: the
  lines of `source.ssh_known_hosts` (checked strictly) or an empty file
  that trust-on-first-use fills for this step only. `~/.ssh` (config, keys, known_hosts, agent) is
  never read or written.
- HTTPS: `source.backup.username`/`password` (or credentials written into the URI, which are taken out
  of it) reach git through a credential helper script in the workspace that reads them from the
  environment of the git process and answers only a request for the configured `scheme://host:port`:
  a redirect to another host, port or scheme gets nothing. Redirects are followed only on git's first
  request (`http.followRedirects=initial`, git's default, pinned), and only to https when the URL is
  https (`GIT_ALLOW_PROTOCOL` limits curl's redirects too). `http://` is accepted without credentials only.
- Nothing can make git run a program: the one transport in use is the only one allowed
  (`GIT_ALLOW_PROTOCOL`, `protocol.ext.allow=never`), no system or global git configuration is read
  (so no `core.sshCommand`, `url.*.insteadOf`, `remote.*.uploadpack`, hooks path or credential helper
  of anyone else), and no inherited `GIT_*` variable but the TLS trust ones reaches git (gitrunner).
- Every network call is bounded by `source.backup.timeout` (see `NetBounds`).
"""

from __future__ import annotations

import math
import os
import shlex
import shutil
import subprocess

from k0sctl_resource.config.models import BackupRepo, host_key_options
from k0sctl_resource.gitstore.remote import NetBounds
from k0sctl_resource.gitstore.runner import KEY_FD_VAR, GitEnv, key_file
from k0sctl_resource.gitstore.url import RemoteUrl as RemoteUrl  # noqa: PLC0414 - re-exported
from k0sctl_resource.gitstore.url import Transport as Transport  # noqa: PLC0414 - re-exported
from k0sctl_resource.runtime import lifecycle
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT
from k0sctl_resource.runtime.workspace import Workspace, write_private

USERNAME_VAR = "K0SCTL_RESOURCE_GIT_USERNAME"
PASSWORD_VAR = "K0SCTL_RESOURCE_GIT_PASSWORD"  # noqa: S105 - the name of a variable, not a secret
ORIGIN_VAR = "K0SCTL_RESOURCE_GIT_ORIGIN"

# git's credential protocol: `get` with protocol=, host= (host[:port]) lines. Answer only for our origin.
_CREDENTIAL_HELPER = f"""#!/bin/sh
[ "$1" = get ] || exit 0
proto= host=
while IFS= read -r line; do
  case "$line" in
    '') break ;;
    protocol=*) proto=${{line#protocol=}} ;;
    host=*) host=${{line#host=}} ;;
  esac
done
asked=$(printf '%s://%s' "$proto" "$host" | tr '[:upper:]' '[:lower:]')
[ -n "$proto" ] && [ "$asked" = "${ORIGIN_VAR}" ] || exit 0
printf 'username=%s\npassword=%s\n' "${USERNAME_VAR}" "${PASSWORD_VAR}"
"""


class GitAuth:
    """The environment every git command against the backup repository runs with."""

    def __init__(self, backup: BackupRepo, workspace: Workspace, *, ssh_known_hosts: str | None) -> None:
        """`backup` is `source.backup`; `ssh_known_hosts` the lines of `source.ssh_known_hosts` (None: trust
        on first use)."""
        self.backup = backup
        self.ssh_known_hosts = ssh_known_hosts
        self.workspace = workspace
        self.remote = RemoteUrl.parse(self.backup.uri)
        self.username = self.backup.username or self.remote.username
        self.password = self.backup.password if self.backup.password is not None else self.remote.password
        # The step runner registered the source's secret fields; a password written into the URI is known
        # only now that the URI parsed.
        REDACT.add(self.remote.password)
        if self.remote.transport == "http" and (self.username or self.password):
            raise ResourceError("source.backup.uri: http:// would send the credentials unencrypted; "
                                "use https:// (http:// is accepted without credentials only)")
        for value, what in ((self.username, "username"), (self.password, "password")):
            if value is not None and any(c in value for c in "\r\n\x00"):
                raise ResourceError(f"source.backup.{what}: contains a line break or NUL")
        self.bounds = NetBounds(stall=float(self.backup.timeout))
        self._env: GitEnv | None = None

    @property
    def url(self) -> str:
        return self.remote.url

    @property
    def env(self) -> GitEnv:
        if self._env is None:
            self._env = self._build()
        return self._env

    def _config(self) -> list[tuple[str, str]]:
        """Configuration for every git command (`GIT_CONFIG_COUNT`): no helper but ours, no program."""
        return [
            ("credential.helper", ""),  # forget every helper configured anywhere: nothing is remembered
            ("credential.useHttpPath", "false"),
            ("core.askPass", ""),
            ("protocol.allow", "never"),
            ("protocol.ext.allow", "never"),
            (f"protocol.{self.remote.transport}.allow", "always"),
            ("http.followRedirects", "initial"),
            ("core.hooksPath", os.devnull),
            ("core.fsmonitor", "false"),
        ]

    def _build(self) -> GitEnv:
        stall = max(1, math.ceil(self.bounds.stall))
        env = GitEnv({
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_ALLOW_PROTOCOL": self.remote.transport,
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS": "",
            "SSH_ASKPASS_REQUIRE": "never",
            "GIT_HTTP_LOW_SPEED_LIMIT": "1",
            "GIT_HTTP_LOW_SPEED_TIME": str(stall),
        }, ssh_key=self.key if self.remote.transport == "ssh" else None)
        config = self._config()
        folder = self.workspace.dir("git-auth")
        if self.remote.transport in ("http", "https"):
            helper = write_private(folder / "credential", _CREDENTIAL_HELPER, mode=0o700)
            config.append(("credential.helper", "!" + shlex.quote(str(helper))))
            env[ORIGIN_VAR] = self.remote.origin or ""
            env[USERNAME_VAR] = self.username or ""
            env[PASSWORD_VAR] = self.password or ""
        env["GIT_SSH_COMMAND"] = self._ssh_command(folder, stall) if self.remote.transport == "ssh" else "false"
        env["GIT_SSH_VARIANT"] = "ssh"
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for i, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        return env

    def _ssh_command(self, folder: os.PathLike[str], stall: int) -> str:
        ssh = shutil.which("ssh")
        if ssh is None:
            raise ResourceError("source.backup.uri is an SSH URL but ssh (openssh-client) is not on PATH")
        known_hosts = str(write_private(os.path.join(folder, "known_hosts"), self.ssh_known_hosts or ""))
        argv = [ssh, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", "IdentityAgent=none", *host_key_options(self.ssh_known_hosts, known_hosts),
                "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", f"ConnectTimeout={stall}", "-o", f"ServerAliveInterval={max(1, math.ceil(stall / 4))}",
                "-o", "ServerAliveCountMax=4"]
        command = " ".join(shlex.quote(a) for a in argv)
        if self.backup.private_key:
            self._check_key()
            # ssh closes every inherited descriptor first, so it reads the key through git's (its shell's
            # parent, `$PPID`), which holds this call's memory file open for as long as the call runs.
            return f'{command} -i "/proc/$PPID/fd/${{{KEY_FD_VAR}}}"'
        # Only the key we are given is ever offered: never ~/.ssh/id_* nor an agent.
        return f"{command} -i {shlex.quote(os.path.join(folder, 'no-key-configured'))}"

    @property
    def key(self) -> bytes | None:
        if not self.backup.private_key:
            return None
        return (self.backup.private_key.replace("\r\n", "\n").strip() + "\n").encode()

    def _check_key(self) -> None:
        """Fail with a clear sentence now rather than with ssh's "Permission denied" later."""
        keygen = shutil.which("ssh-keygen")
        key = self.key
        if keygen is None or key is None:
            return
        with key_file(key) as fd:
            proc = subprocess.run([keygen, "-y", "-P", "", "-f", f"/proc/self/fd/{fd}"], capture_output=True,
                                  text=True, timeout=30, check=False, stdin=subprocess.DEVNULL, pass_fds=(fd,),
                                  preexec_fn=lifecycle.child_setup)
            if proc.returncode != 0:
                detail = (proc.stderr or "").strip().lower()
                if "passphrase" in detail or "incorrect" in detail:
                    reason = "the key is protected by a passphrase; give an unencrypted key"
                else:
                    reason = "not an OpenSSH or PEM private key"
                raise ResourceError(f"source.backup.private_key: not usable ({reason})")
