"""A real OpenSSH server on loopback for tests: git over SSH, or any command over SSH.

`SshServer` starts Debian's `/usr/sbin/sshd` as a normal foreground process (`-D -e`) on 127.0.0.1 and a
free port, with a host key and a client key generated at run time, a private `sshd_config` and an
`AuthorizedKeysFile` that only the test controls. It logs in as the current user (root here).

Fixtures (import them into a test module, e.g. `from tests.support.sshd import sshd_server, ssh_git_repo`):

- `sshd_server` (session): a running `SshServer`; `.client_key` is the private key text,
  `.known_hosts` the host's known_hosts line, `.url(path)` an `ssh://` URL, `.scp_url(path)` the
  scp-style form (only when the server listens on port 22, see `sshd_port22`).
- `ssh_git_repo` (function): a fresh bare repository served by `sshd_server`, as `SshRepo(path, url)`.
- `sshd_port22` (session): a second server on 127.0.0.2:22, for scp-style `user@host:path` URLs (which
  cannot name a port); the test is skipped when that port cannot be bound.

`git_protocol_v2=True` (the default) passes `GIT_PROTOCOL` through (`AcceptEnv`), as GitHub, GitLab and
Gitea do; with False the server speaks git protocol v0 only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.tools import require_tool

SSHD = "/usr/sbin/sshd"
PRIVSEP_DIR = Path("/run/sshd")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519", comment: str = "k0sctl-resource-test") -> tuple[str, str]:
    """Generate an unencrypted key pair at `path`; return (private text, public line)."""
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", comment, "-f", str(path)]
    if kind == "rsa":
        args[4:4] = ["-b", "3072"]
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL)
    return path.read_text(encoding="utf-8"), path.with_name(path.name + ".pub").read_text(encoding="utf-8").strip()


def sshd_config(listen: str, host_key: Path, authorized_keys: Path, *, pid_file: str = "none",
                extra: list[str] | None = None) -> str:
    """A test sshd's configuration: key-only login (root included) against one authorized_keys file."""
    lines = [
        f"ListenAddress {listen}",
        f"HostKey {host_key}",
        f"PidFile {pid_file}",
        f"AuthorizedKeysFile {authorized_keys}",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        # Test files live under /tmp (world-writable parents): strict modes would refuse them.
        "StrictModes no",
        "PrintMotd no",
        "LogLevel VERBOSE",
        "MaxStartups 50:30:100",
        "MaxSessions 50",
        *(extra or []),
        "Subsystem sftp internal-sftp",
    ]
    return "\n".join(lines) + "\n"


class SshServer:
    """One sshd process with its own keys and config; stop() (or the context manager) ends it."""

    def __init__(self, root: Path, *, host: str = "127.0.0.1", port: int | None = None,
                 git_protocol_v2: bool = True) -> None:
        self.root = root
        self.host = host
        self.port = port or free_port(host)
        self.git_protocol_v2 = git_protocol_v2
        self.user = os.environ.get("USER") or _current_user()
        self.proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self.host_key_path = root / "ssh_host_ed25519_key"
        _, host_pub = keygen(self.host_key_path, comment="test-host")
        self.client_key_path = root / "client_ed25519"
        self.client_key, self.client_pub = keygen(self.client_key_path)
        self.authorized_keys = root / "authorized_keys"
        self.authorized_keys.write_text(self.client_pub + "\n", encoding="utf-8")
        os.chmod(self.authorized_keys, 0o600)
        target = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        key_type, key_b64 = host_pub.split()[:2]
        self.known_hosts = f"{target} {key_type} {key_b64}"
        self.log_file = root / "sshd.log"
        self.config = root / "sshd_config"
        self.config.write_text(
            sshd_config(f"{self.host}:{self.port}", self.host_key_path, self.authorized_keys,
                        pid_file=str(root / "sshd.pid"),
                        extra=["AcceptEnv GIT_PROTOCOL"] if git_protocol_v2 else []),
            encoding="utf-8",
        )

    def add_authorized_key(self, public_line: str) -> None:
        with self.authorized_keys.open("a", encoding="utf-8") as handle:
            handle.write(public_line.strip() + "\n")

    def start(self, timeout: float = 10.0) -> SshServer:
        require_tool(SSHD, "Debian openssh-server")
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        check = subprocess.run([SSHD, "-t", "-f", str(self.config)], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"sshd rejects its test config: {check.stderr.strip()}")
        log = self.log_file.open("ab")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sshd exited at start: {self.log_file.read_text(errors='replace')[-500:]}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.5):
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"sshd did not listen on {self.host}:{self.port} within {timeout}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> SshServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------------
    def url(self, path: Path | str) -> str:
        return f"ssh://{self.user}@{self.host}:{self.port}{Path(path).resolve()}"

    def scp_url(self, path: Path | str) -> str:
        if self.port != 22:
            raise ValueError("scp-style URLs cannot carry a port; use a server on port 22")
        return f"{self.user}@{self.host}:{Path(path).resolve()}"

    def ssh_command(self, known_hosts_file: Path) -> list[str]:
        """An ssh argv (without the remote command) that logs in with the client key."""
        return ["ssh", "-F", "/dev/null", "-p", str(self.port), "-i", str(self.client_key_path),
                "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known_hosts_file}",
                "-o", "StrictHostKeyChecking=yes", f"{self.user}@{self.host}"]


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


@dataclass(frozen=True)
class SshRepo:
    path: Path
    url: str


def bare_repo(path: Path, *, allow_filter: bool = True) -> Path:
    """A bare repository as a git server keeps it; `allow_filter` enables partial-clone filters."""
    subprocess.run(["git", "init", "-q", "--bare", str(path)], check=True)
    if allow_filter:
        subprocess.run(["git", "-C", str(path), "config", "uploadpack.allowFilter", "true"], check=True)
    return path


@pytest.fixture(scope="session")
def sshd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    require_tool("ssh", "Debian openssh-client")
    with SshServer(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture
def ssh_git_repo(sshd_server: SshServer, tmp_path: Path) -> SshRepo:
    path = bare_repo(tmp_path / "served.git")
    return SshRepo(path=path, url=sshd_server.url(path))


@pytest.fixture(scope="session")
def sshd_port22(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    host = "127.0.0.2"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, 22))
    except OSError as exc:
        pytest.skip(f"cannot listen on {host}:22 for scp-style URLs ({exc.strerror})")
    with SshServer(tmp_path_factory.mktemp("sshd22"), host=host, port=22) as server:
        yield server
