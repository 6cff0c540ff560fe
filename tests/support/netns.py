"""Network namespaces for tests: small labs with real packets that never leave this machine.

A :class:`NetnsLab` owns every namespace, veth pair, bridge, ``/etc/netns`` file and process it
creates, and removes all of them when it is closed (``with NetnsLab() as lab:``, the
:func:`netns_lab` pytest fixture, or at interpreter exit as a last resort). Namespace names carry the
creating process id (``k0t-<pid>-<n>``), so labs of parallel test runs never collide, and
:func:`cleanup_stale` can remove the leftovers of runs that were killed.

Typical use::

    with NetnsLab() as lab:
        router = lab.namespace("rt", forwarding=True)
        client = lab.namespace("client")
        lab.veth(client, "eth0", router, "c0")
        client.add_address("eth0", "192.0.2.10/24")
        router.add_address("c0", "192.0.2.1/24")
        client.add_route("default", via="192.0.2.1")
        server = client.spawn([sys.executable, "-m", "http.server", "8000"])
        client.wait_listening(8000)
        client.run(["curl", "http://127.0.0.1:8000/"])

Everything needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN); :func:`require_netns` skips a test with
the reason when ``ip netns add`` does not work here (fails it under CI=true, tests/support/tools.py).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import signal
import subprocess
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import pytest

from tests.support.tools import unavailable

NAME_PREFIX = "k0t"
ETC_NETNS = Path("/etc/netns")
_IFNAME_MAX = 15
_counter = itertools.count(1)


class NetnsError(RuntimeError):
    """A command that builds the lab failed; the message holds the command and its stderr."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False, timeout=30)
    if check and proc.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc


def netns_unavailable_reason() -> str | None:
    """None when network namespaces can be created here, else why not (for a skip message)."""
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    name = f"{NAME_PREFIX}-{os.getpid()}-probe{next(_counter)}"
    try:
        proc = _ip("netns", "add", name, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"`ip netns add` could not run: {exc}"
    if proc.returncode != 0:
        return f"`ip netns add` failed (needs root): {proc.stderr.strip()}"
    _ip("netns", "del", name, check=False)
    return None


def require_netns() -> None:
    """Skip (fail when CI=true) the calling test, with the reason, when network namespaces cannot be created."""
    reason = netns_unavailable_reason()
    if reason is not None:
        unavailable(f"network namespaces cannot be created here: {reason}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def cleanup_stale() -> list[str]:
    """Delete namespaces (and their /etc/netns folders) left by labs whose process is gone."""
    removed: list[str] = []
    proc = _ip("netns", "list", check=False)
    pattern = re.compile(rf"^{NAME_PREFIX}-(\d+)-\S+")
    for line in proc.stdout.splitlines():
        match = pattern.match(line.strip())
        if match is None or _pid_alive(int(match.group(1))):
            continue
        name = line.split()[0]
        _kill_namespace_pids(name)
        _ip("netns", "del", name, check=False)
        shutil.rmtree(ETC_NETNS / name, ignore_errors=True)
        removed.append(name)
    return removed


def _kill_namespace_pids(name: str) -> None:
    proc = _ip("netns", "pids", name, check=False)
    for pid_text in proc.stdout.split():
        with contextlib.suppress(ValueError, ProcessLookupError, PermissionError):
            os.kill(int(pid_text), signal.SIGKILL)


class Namespace:
    """One network namespace of a lab. Create it with :meth:`NetnsLab.namespace`."""

    def __init__(self, lab: NetnsLab, name: str, short: str) -> None:
        self.lab = lab
        self.name = name
        self.short = short

    def __repr__(self) -> str:
        return f"Namespace({self.short!r} = {self.name!r})"

    # -- configuration -------------------------------------------------------------------------

    def ip(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `ip -n NAME ARGS...`."""
        return _ip("-n", self.name, *args, check=check)

    def sysctl(self, key: str, value: str) -> None:
        """Set a per-namespace sysctl, e.g. ``sysctl("net.ipv4.ip_forward", "1")``."""
        self.run(["sysctl", "-q", "-w", f"{key}={value}"])

    def read_sysctl(self, key: str) -> str:
        return self.run(["sysctl", "-n", key]).stdout.strip()

    def link_up(self, dev: str) -> None:
        self.ip("link", "set", dev, "up")

    def add_address(self, dev: str, cidr: str) -> None:
        """Add an address (IPv4 or IPv6, with prefix length) and bring the device up.

        IPv6 addresses skip duplicate address detection, so they are usable at once.
        """
        extra = ["nodad"] if ":" in cidr else []
        self.ip("addr", "add", cidr, "dev", dev, *extra)
        self.link_up(dev)

    def add_route(self, dest: str, *, via: str | None = None, dev: str | None = None) -> None:
        """Add a route; ``dest`` may be ``default``. IPv6 is chosen from the addresses."""
        family = ["-6"] if ":" in dest or (via is not None and ":" in via) else []
        args = [*family, "route", "add", dest]
        if via is not None:
            args += ["via", via]
        if dev is not None:
            args += ["dev", dev]
        _ip("-n", self.name, *args)

    def add_bridge(self, dev: str) -> None:
        """Create a bridge (STP off, no forwarding delay) and bring it up."""
        self.ip("link", "add", dev, "type", "bridge", "stp_state", "0", "forward_delay", "0")
        self.link_up(dev)

    def attach(self, dev: str, bridge: str) -> None:
        """Make ``dev`` a port of ``bridge`` and bring it up."""
        self.ip("link", "set", dev, "master", bridge)
        self.link_up(dev)

    def write_etc(self, filename: str, content: str) -> Path:
        """Write /etc/netns/NAME/FILENAME: `ip netns exec` bind-mounts it over /etc/FILENAME.

        Use it for ``hosts`` or ``resolv.conf`` so name resolution inside the namespace is
        private to the test. Removed with the lab.
        """
        folder = ETC_NETNS / self.name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / filename
        path.write_text(content, encoding="utf-8")
        path.chmod(0o644)
        return path

    # -- processes -----------------------------------------------------------------------------

    def command(self, argv: Sequence[str]) -> list[str]:
        """The argv that runs ``argv`` inside this namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 60,
            input: str | None = None, env: Mapping[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace to completion, capturing text output."""
        proc = subprocess.run(self.command(argv), capture_output=True, text=True, check=False,
                              timeout=timeout, input=input,
                              env=dict(env) if env is not None else None)
        if check and proc.returncode != 0:
            raise NetnsError(f"[{self.short}] {' '.join(argv)} exited {proc.returncode}: "
                             f"{proc.stderr.strip()[-2000:]}")
        return proc

    def spawn(self, argv: Sequence[str], *, stdout: int | IO[Any] | None = subprocess.DEVNULL,
              stderr: int | IO[Any] | None = subprocess.DEVNULL,
              stdin: int | IO[Any] | None = subprocess.DEVNULL,
              env: Mapping[str, str] | None = None, text: bool = False,
              ) -> subprocess.Popen[Any]:
        """Start a long-running process inside the namespace; the lab stops it on close.

        The process gets its own session, so stopping it also stops its children.
        """
        proc: subprocess.Popen[Any] = subprocess.Popen(
            self.command(argv), stdout=stdout, stderr=stderr, stdin=stdin,
            env=dict(env) if env is not None else None, start_new_session=True, text=text)
        self.lab._processes.append(proc)
        return proc

    def wait_listening(self, port: int, *, proto: str = "tcp", timeout: float = 10.0,
                       process: subprocess.Popen[Any] | None = None) -> None:
        """Wait until something listens on ``port`` inside the namespace (checked with `ss`).

        With ``process`` given, fail at once when that process exits instead.
        """
        flag = "-Hltn" if proto == "tcp" else "-Hlun"
        deadline = time.monotonic() + timeout
        while True:
            out = self.run(["ss", flag, f"sport = :{port}"], check=False).stdout
            if out.strip():
                return
            if process is not None and process.poll() is not None:
                raise NetnsError(f"[{self.short}] process exited ({process.returncode}) "
                                 f"before listening on {proto}/{port}")
            if time.monotonic() > deadline:
                raise NetnsError(f"[{self.short}] nothing listens on {proto}/{port} after {timeout}s")
            time.sleep(0.02)


class NetnsLab:
    """A set of namespaces and the things in them, all removed by :meth:`close`."""

    def __init__(self, prefix: str = NAME_PREFIX) -> None:
        self.prefix = prefix
        self.namespaces: list[Namespace] = []
        self._processes: list[subprocess.Popen[Any]] = []
        self._closed = False
        # Runs on close(), or at interpreter exit when a lab was never closed.
        self._finalizer = weakref.finalize(self, NetnsLab._cleanup, self.namespaces, self._processes)

    def __enter__(self) -> NetnsLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def namespace(self, short: str, *, forwarding: bool = False, ipv6: bool = True) -> Namespace:
        """Create a namespace with its loopback up.

        ``short`` is a readable name used in messages; the real name is unique per process.
        ``forwarding`` turns on IPv4 and IPv6 forwarding (a router). ``ipv6=False`` disables
        IPv6 on all its interfaces.
        """
        if self._closed:
            raise NetnsError("this lab is closed")
        name = f"{self.prefix}-{os.getpid()}-{next(_counter)}{short}"
        _ip("netns", "add", name)
        ns = Namespace(self, name, short)
        self.namespaces.append(ns)
        ns.link_up("lo")
        if forwarding:
            ns.sysctl("net.ipv4.ip_forward", "1")
            ns.sysctl("net.ipv6.conf.all.forwarding", "1")
        if not ipv6:
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", "1")
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", "1")
        return ns

    def veth(self, a: Namespace, dev_a: str, b: Namespace, dev_b: str) -> None:
        """Connect two namespaces with a veth pair named ``dev_a`` (in a) and ``dev_b`` (in b).

        Both ends are brought up; deleting either namespace removes the pair.
        """
        for dev in (dev_a, dev_b):
            if not 0 < len(dev) <= _IFNAME_MAX:
                raise NetnsError(f"interface name {dev!r} must be 1 to {_IFNAME_MAX} characters")
        a.ip("link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", b.name)
        a.link_up(dev_a)
        b.link_up(dev_b)

    def close(self) -> None:
        """Stop every process started in the lab, then delete its namespaces and /etc/netns files."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()

    @staticmethod
    def _cleanup(namespaces: list[Namespace], processes: list[subprocess.Popen[Any]]) -> None:
        for proc in processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for proc in processes:
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        for ns in reversed(namespaces):
            # Anything still running inside (started by those processes) goes with the namespace.
            _kill_namespace_pids(ns.name)
            _ip("netns", "del", ns.name, check=False)
            shutil.rmtree(ETC_NETNS / ns.name, ignore_errors=True)
        namespaces.clear()
        processes.clear()


@pytest.fixture
def netns_lab() -> Iterator[NetnsLab]:
    """A fresh :class:`NetnsLab` for one test (skipped where namespaces are unavailable)."""
    require_netns()
    with NetnsLab() as lab:
        yield lab


def lab_or_skip() -> NetnsLab:
    """A new lab, or skip the calling test with the reason namespaces are unavailable."""
    require_netns()
    return NetnsLab()
