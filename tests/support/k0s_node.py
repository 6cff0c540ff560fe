"""k0s test nodes: sshd in its own network, UTS and mount namespaces, where the REAL k0sctl installs,
backs up, restores and resets k0s, with the k0s double (tests/support/k0s_double/k0s) that k0sctl uploads itself.

Topology (built per test, removed afterwards)::

    ctl  br0 192.0.2.1/24 ==veth== node i  192.0.2.(10+i)/24, hostname k0s-node-<i>, sshd on tcp/22

``ctl`` plays the Concourse worker (the resource and k0sctl run there). Each node is a holder process
(``sleep infinity``) that owns the node's UTS and mount namespaces, and an sshd entered into them with
``nsenter``, so the node's state outlives its sshd (a test can kill sshd and still look at the node).
The node shares this machine's filesystem (k0sctl detects Debian), except for what only the node sees:

* private tmpfs on ``/run`` (with ``/run/systemd/system``: k0sctl then drives systemd; ``/run/sshd``;
  ``/run/lock``; ``/run/k0s-double``: "running" markers, call record, faults), ``/tmp`` (the node's own
  directory under this machine's /tmp bound back in), ``/usr/local/bin`` and ``/root``;
* overlays over ``/etc`` and ``/var/lib`` with upper directories on the private /run: ``/etc/k0s``,
  ``/etc/systemd/system`` and ``/var/lib/k0s`` are the node's own;
* ``lo`` up, and the double's API server (tests/support/k0s_double/apiserver, copied to ``/run/k0s-double``)
  listening on the node's :6443 while k0scontroller runs;
* the fake ``systemctl`` and ``date`` (tests/support/k0s_double/) bind-mounted over ``/usr/bin/systemctl`` and
  ``/usr/bin/date`` in the node's mount namespace only. This machine's systemd is never asked anything.

:class:`tests.node.HostGuard` checks that this machine is unchanged after every test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import Namespace, NetnsLab
from tests.support.node import HostGuard, KeyPair, keypair, require_node_support
from tests.support.sshd import SSHD, keygen, sshd_config

CTL_ADDRESS = "192.0.2.1"
K0S_VERSION = "v1.31.2+k0s.0"
FAKES = Path(__file__).resolve().parent / "k0s_double"
STATE = "/run/k0s-double"
API_WRITES = "/var/lib/k0s/pki/(admin.conf|admin-tokens|server.(crt|key|csr)|ca.srl)"

# $1 hostname  $2 the node's directory  $3 the fakes' directory  $4 the fake systemctl  $5 the size of /usr/local/bin
# $6 a directory bound over /usr/local/sbin, or "-" (real k0s: etcd and kube-apiserver, see tests/support/real_k0s.py)
NODE_INIT = """set -e
hostname "$1"
mount -t tmpfs -o mode=0755,size=3g k0s-node /run
mkdir -p /run/systemd/system /run/sshd /run/lock /run/k0s-double /run/.node /run/.ovl/etc /run/.ovl/etc.w \
  /run/.ovl/lib /run/.ovl/lib.w
cp /usr/bin/date /run/k0s-double/date.real
cp "$3/apiserver" /run/k0s-double/apiserver
ip link set lo up
# The fakes are bound before the node's private /tmp hides this machine's: the checkout may live under /tmp.
mount --bind "$4" /usr/bin/systemctl
[ "$6" = - ] || mount --bind "$6" /usr/local/sbin
mount --bind "$3/date" /usr/bin/date
mount --bind "$2" /run/.node
mount -t tmpfs -o mode=1777,size=3g k0s-node /tmp
mkdir -p "$2"
mount --move /run/.node "$2"
rmdir /run/.node
mount -t overlay k0s-node -o lowerdir=/etc,upperdir=/run/.ovl/etc,workdir=/run/.ovl/etc.w /etc
mount -t overlay k0s-node -o lowerdir=/var/lib,upperdir=/run/.ovl/lib,workdir=/run/.ovl/lib.w /var/lib
mount -t tmpfs -o mode=0755,size="$5" k0s-node /usr/local/bin
mount -t tmpfs -o mode=0700,size=16m k0s-node /root
touch "$2/ready"
exec sleep infinity
"""
NODE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
SESSION_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}  # as sshd's


def k0s_double(root: Path, version: str = K0S_VERSION) -> Path:
    """The k0s double for `version` (the file k0sctl uploads, `k0sBinaryPath`)."""
    path = root / "k0s-double" / version / "k0s"
    if not path.exists():
        path.parent.mkdir(parents=True)
        path.write_text((FAKES / "k0s").read_text(encoding="utf-8").replace("@VERSION@", version), encoding="utf-8")
        path.chmod(0o755)
    return path


class K0sNode:
    """One node; built by :meth:`K0sLab.node`."""

    def __init__(self, lab: K0sLab, index: int, role: str) -> None:
        self.lab, self.role = lab, role
        self.hostname = f"k0s-node-{index}"
        self.address = f"192.0.2.{10 + index}"
        self.ns: Namespace = lab.lab.namespace(f"n{index}")
        self.home = lab.root / self.hostname
        self.home.mkdir(parents=True)
        host_key = self.home / "ssh_host_ed25519_key"
        self.host_public = keygen(host_key, comment=f"{self.hostname}-host")[1]
        self.authorized_keys = self.home / "authorized_keys"  # the node sees only its own directory of /tmp
        self.authorized_keys.write_text(lab.client.public + "\n", encoding="utf-8")
        self.config = self.home / "sshd_config"
        self.config.write_text(sshd_config(f"{self.address}:22", host_key, self.authorized_keys,
                                           extra=["PrintLastLog no"]), encoding="utf-8")
        self.log_file = self.home / "sshd.log"
        self.holder: subprocess.Popen[bytes] | None = None
        self.sshd: subprocess.Popen[bytes] | None = None

    def start(self) -> K0sNode:
        ctl = self.lab.ctl
        self.lab.lab.veth(ctl, f"v{self.hostname[-1]}", self.ns, "eth0")
        ctl.attach(f"v{self.hostname[-1]}", "br0")
        self.ns.add_address("eth0", f"{self.address}/24")
        argv = ["unshare", "--uts", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", NODE_INIT,
                "node-init", self.hostname, str(self.home), str(FAKES), *self.lab.node_args()]
        with self.log_file.open("ab") as log:
            self.holder = self.ns.spawn(argv, stdout=log, stderr=log, env=NODE_ENV)
        deadline = time.monotonic() + 10
        while not (self.home / "ready").exists():
            if self.holder.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the node did not start: {self.log()[-800:]}")
            time.sleep(0.02)
        self.start_sshd()
        return self

    def start_sshd(self) -> None:
        assert self.holder is not None
        with self.log_file.open("ab") as log:
            self.sshd = self.ns.spawn(["nsenter", "-t", str(self.holder.pid), "-m", "-u", "--", SSHD, "-D", "-e",
                                       "-f", str(self.config)], stdout=log, stderr=log, env=NODE_ENV)
        self.ns.wait_listening(22, process=self.sshd)

    def kill_sshd(self) -> None:
        """SIGKILL the node's sshd and every session under it (the commands they run included). The listener
        is stopped first: else it could fork a session for a client reconnecting meanwhile (k0sctl does),
        which no list of its children made before would hold."""
        assert self.sshd is not None
        os.kill(self.sshd.pid, signal.SIGSTOP)
        for pid in [*_descendants(self.sshd.pid), self.sshd.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.sshd.wait(timeout=10)

    # -- looking at the node (through its namespaces, not through ssh) ----------------------------
    def run(self, script: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        """Run a shell script in the node's namespaces (through nsenter, not ssh)."""
        assert self.holder is not None
        return subprocess.run(["nsenter", "-t", str(self.holder.pid), "-m", "-u", "-n", "--", "/bin/sh", "-c", script],
                              input=stdin, capture_output=True, timeout=60, check=False, env=SESSION_ENV)

    def sh(self, script: str, check: bool = True) -> str:
        proc = self.run(script)
        if check and proc.returncode != 0:
            raise AssertionError(f"on {self.hostname}: {script!r} exited {proc.returncode}: {proc.stderr!r}")
        return proc.stdout.decode(errors="replace")

    def lines(self, name: str) -> list[str]:
        """The lines of a file of the double's record in /run/k0s-double (calls, unknown, restored.sha256…)."""
        return self.sh(f"cat {STATE}/{name} 2>/dev/null || true").splitlines()

    def fault(self, name: str, content: str = "") -> None:
        """Arm a fault of the doubles: backup-fail, backup-hang, clock-offset, start-<svc>, backup-pad, api-delay
        (fault-api-delay: seconds before the API server listens and writes admin.conf; fault-api-never)."""
        self.sh(f"printf %s '{content}' > {STATE}/{name}")

    def state(self) -> dict[str, str]:
        """sha256 of every file of the node's k0s state (/var/lib/k0s, /etc/k0s), by path. Comment lines of
        /etc/k0s/k0s.yaml are left out: k0sctl writes the time it generated the file into the first one; so are
        the files the double's API server writes each time it starts (admin.conf, its token, its certificate)."""
        out = self.sh("find /var/lib/k0s /etc/k0s -type f 2>/dev/null | grep -v -E "
                      f"'^{API_WRITES}$' | sort | while read -r f; do "
                      "if [ $f = /etc/k0s/k0s.yaml ]; then grep -v '^#' $f | sha256sum | sed \"s,-,$f,\"; "
                      "else sha256sum $f; fi; done")
        return {path: digest for digest, path in (line.split(None, 1) for line in out.splitlines())}

    def running(self) -> list[str]:
        return sorted(p.removesuffix(".running") for p in self.sh(f"ls {STATE}").split() if p.endswith(".running"))

    def stray(self) -> list[str]:
        """What k0sctl must not leave on the node: archives (in /tmp), its lock, staged k0s binaries. k0sctl's
        other temporary files are not listed: v0.32 leaves the empty directories of backup and restore in
        /tmp, v0.28.0 (rig v0.21) the small files it wrote through `mktemp` (configs, tokens)."""
        return self.sh(f"find /tmp /run/lock /usr/local/bin -path {self.home} -prune -o \\( -name '*.tar.gz' -o "
                       "-name 'k0s.tmp.*' -o -name k0sctl -o -name k0sctl.lock \\) -print").split()

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace") if self.log_file.exists() else ""

    def known_hosts_line(self) -> str:
        return f"{self.address} {' '.join(self.host_public.split()[:2])}"

    def host(self, k0s_binary: Path) -> str:
        return (f"    - role: {self.role}\n      ssh:\n        address: {self.address}\n        user: root\n"
                f"        port: 22\n      privateAddress: {self.address}\n      os: debian\n"
                f"      uploadBinary: true\n      k0sBinaryPath: {k0s_binary}\n" + self.lab.host_extra)


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class K0sLab:
    """The ctl namespace (bridge br0), a client key authorized on every node, and the nodes."""

    def __init__(self, lab: NetnsLab, root: Path) -> None:
        self.lab, self.root = lab, root
        self.host_extra = ""  # more lines of every spec.hosts entry (real k0s: installFlags)
        self.k0s_binary: Path | None = None  # the k0s k0sctl uploads; None: the double
        self.ctl: Namespace = lab.namespace("ctl")
        self.ctl.add_bridge("br0")
        self.ctl.add_address("br0", f"{CTL_ADDRESS}/24")
        keys = root / "keys"
        keys.mkdir(parents=True, mode=0o700)
        self.client: KeyPair = keypair(keys / "client_ed25519", "k0s-node-client")
        self.nodes: list[K0sNode] = []

    def node_args(self) -> list[str]:
        """NODE_INIT's $4 to $6: the double's fake systemctl, a small /usr/local/bin, /usr/local/sbin as it is."""
        return [str(FAKES / "systemctl"), "64m", "-"]

    def node(self, role: str = "single") -> K0sNode:
        node = K0sNode(self, len(self.nodes) + 1, role).start()
        self.nodes.append(node)
        return node

    def known_hosts(self) -> str:
        return "".join(node.known_hosts_line() + "\n" for node in self.nodes)

    def k0sctl_yaml(self, name: str, version: str = K0S_VERSION) -> str:
        binary = self.k0s_binary or k0s_double(self.root, version)
        return ("apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\n"
                f"metadata:\n  name: {name}\nspec:\n  hosts:\n"
                + "".join(node.host(binary) for node in self.nodes)
                + f"  k0s:\n    version: {version}\n")


@pytest.fixture
def k0s_lab(tmp_path: Path) -> Iterator[K0sLab]:
    """Namespaces for k0s nodes (add them with `.node(role)`); this machine is checked unchanged afterwards."""
    require_node_support()
    guard = HostGuard()
    with NetnsLab() as lab:
        yield K0sLab(lab, tmp_path / "k0s-lab")
    guard.check()
