"""What the system's ssh_config says about a destination, read the way k0sctl's connections read it.

- `ssh_g(args)`: `ssh -G <args>` (no connection: ssh prints the effective options and exits), as
  `config.endpoints.SshG` expects it. The `openSSH` connection runs this same `ssh`.
- `files_matter()`: whether an ssh_config file that rig's own client also reads (`~/.ssh/config`,
  `/etc/ssh/ssh_config` and what they `Include`) could change where a host is reached (`HostName`,
  `Port`, `ProxyJump`, `ProxyCommand`, a `Match` block). Only then is `ssh -G` asked about `ssh` hosts.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

SSH_G_TIMEOUT = 10.0
_REDIRECTS = re.compile(r"^\s*(hostname|port|proxyjump|proxycommand|match)\b", re.IGNORECASE | re.MULTILINE)
_INCLUDE = re.compile(r"^\s*include\s+(.+)$", re.IGNORECASE | re.MULTILINE)
GLOBAL_CONFIG = Path("/etc/ssh/ssh_config")


def ssh_g(args: list[str]) -> dict[str, list[str]]:
    """`ssh -G` of `args` (options and a destination): option name (lower case) -> its values."""
    binary = shutil.which("ssh")
    if binary is None:
        raise ValueError("ssh is not on PATH")
    try:
        proc = subprocess.run([binary, "-G", *args[:-1], "--", args[-1]], capture_output=True, text=True,
                              timeout=SSH_G_TIMEOUT, check=False, stdin=subprocess.DEVNULL, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise ValueError(f"ssh -G did not answer within {SSH_G_TIMEOUT:g}s") from None
    except OSError as exc:
        raise ValueError(f"cannot run ssh -G: {exc.strerror}") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        raise ValueError(lines[0][:200] if lines else f"exit {proc.returncode}")
    found: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        found.setdefault(key.lower(), []).append(value.strip())
    return found


def _homes() -> set[Path]:
    homes = {Path(os.environ["HOME"])} if os.environ.get("HOME") else set()
    with contextlib.suppress(KeyError):
        homes.add(Path(pwd.getpwuid(os.getuid()).pw_dir))
    return homes


def _redirects(path: Path, base: Path, depth: int = 0) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    if _REDIRECTS.search(text):
        return True
    if depth >= 8:
        return True
    for pattern in (m.group(1).strip() for m in _INCLUDE.finditer(text)):
        for given in pattern.split():
            word = os.path.expanduser(given)
            full = word if os.path.isabs(word) else str(base / word)
            if any(_redirects(Path(p), base, depth + 1) for p in sorted(glob.glob(full))):
                return True
    return False


def files_matter(global_config: Path = GLOBAL_CONFIG) -> bool:
    """Whether an ssh_config file could redirect a host (see the module doc)."""
    users = [(home / ".ssh" / "config", home / ".ssh") for home in _homes()]
    return any(_redirects(path, base) for path, base in [*users, (global_config, global_config.parent)])
