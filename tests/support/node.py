"""A k0s node for end-to-end tests: a real sshd in its own network, UTS and mount namespaces.

Topology (built per test, removed afterwards)::

    ctl   192.0.2.1/24  ==veth==  node  192.0.2.10/24   hostname k0s-node-1, sshd on tcp/22

- ``ctl`` plays the Concourse worker: the resource and k0sctl run there (``ip netns exec``), so
  every packet of a test stays between these two namespaces; this machine's own namespace gets no
  address and no route.
- ``node`` runs Debian's ``/usr/sbin/sshd -D -e`` as a child process, inside
  ``unshare --uts --mount --propagation private``: its own hostname and its own mount table. It
  shares this machine's filesystem (so k0sctl detects this machine's OS, Debian 12), except for
  private tmpfs mounts that only the node sees:

  * ``/usr/local/bin``: k0sctl's default k0s install directory. k0sctl stages the k0s binary next
    to the install location (``k0s.tmp.<ns>``) even in a dry run and deletes stale ``k0s.tmp.*``
    files there while validating hosts; with a private, empty directory none of that can reach
    this machine, and ``k0s`` is honestly "not installed" on the node.
  * ``/run/lock`` and ``/tmp``: k0sctl's host lock file (``/run/lock/k0sctl``, or
    ``/tmp/k0sctl.lock``: v0.32 tests the directory with ``test -f`` and so always falls back to
    /tmp), taken by ``backup`` and, in v0.28, by ``apply``. Private, so parallel test runs cannot
    collide on it and this machine's /tmp never holds it. The node's own directory (under this
    machine's /tmp) is bound back into the private /tmp.
  * ``/root``: root's home, empty: no dotfiles of this machine run in the node's sessions (they made
    every one of k0sctl's ~50 commands 130 ms slower), and nothing can land in this machine's /root.

  Sessions get ``TMPDIR`` (sshd ``SetEnv``) pointing into the node's own directory, which is where
  k0sctl's ``mktemp`` files (the k0s config it validates) go, visible to the tests.
- Authentication: public keys only, for root, against an ``AuthorizedKeysFile`` the test owns
  (``PasswordAuthentication no``). The client key and a second, *unauthorized* key are generated at
  run time; the host key too.

Nothing here asks k0sctl to change the machine: only dry-run applies, and commands that stop
before they act (backup without a running controller, kubeconfig). :class:`HostGuard` records the
places a real k0s install would touch and the root mount's propagation, and the fixture checks they
are unchanged after every test.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.netns import Namespace, NetnsLab, netns_unavailable_reason
from tests.support.sshd import PRIVSEP_DIR, SSHD, keygen, sshd_config
from tests.support.tools import unavailable

CTL_ADDRESS = "192.0.2.1"
NODE_ADDRESS = "192.0.2.10"
NODE_HOSTNAME = "k0s-node-1"
K0S_VERSION = "v1.31.2+k0s.0"

# sshd's own environment; a session's PATH is the sshd's default for root, not inherited from the test.
NODE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

# Runs as the node's first process, inside its own UTS and mount namespaces: name the host, give it
# private tmpfs mounts, keep its own directory (under this machine's /tmp) visible through the new /tmp
# (bound onto a directory of the private /run/lock first, then moved into place), start sshd.
#   $1 hostname  $2 the node's directory  $3 sshd  $4 sshd_config
NODE_INIT = """set -e
hostname "$1"
mount -t tmpfs -o mode=1777,size=16m k0s-node /run/lock
mkdir /run/lock/.node
mount --bind "$2" /run/lock/.node
mount -t tmpfs -o mode=1777,size=64m k0s-node /tmp
mkdir -p "$2"
mount --move /run/lock/.node "$2"
rmdir /run/lock/.node
mount -t tmpfs -o mode=0755,size=64m k0s-node /usr/local/bin
mount -t tmpfs -o mode=0700,size=16m k0s-node /root
exec "$3" -D -e -f "$4"
"""

# Where a real k0s install (or k0sctl's bookkeeping) would write on this machine.
GUARDED_PATHS = (
    "/usr/local/bin/k0s",
    "/etc/k0s",
    "/var/lib/k0s",
    "/run/lock/k0sctl",
    "/tmp/k0sctl.lock",
    "/tmp/k0s_backup.dryrun",
    "/etc/systemd/system/k0scontroller.service",
    "/etc/systemd/system/k0sworker.service",
    "/etc/init.d/k0scontroller",
    "/etc/init.d/k0sworker",
)


def require_node_support() -> None:
    """Skip (fail when CI=true) the calling test when a node cannot be built here, with the reason."""
    reason = netns_unavailable_reason()
    if reason is None:
        if not os.path.exists(SSHD):
            reason = f"{SSHD} (Debian openssh-server) is not installed"
        elif shutil.which("unshare") is None:
            reason = "unshare (util-linux) is not installed"
        elif shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
            reason = "ssh-agent/ssh-add (openssh-client) are not installed"
    if reason is None:
        return
    unavailable(f"an SSH node cannot be built here: {reason}")


@dataclass(frozen=True)
class KeyPair:
    path: Path
    private: str
    public: str

    @property
    def fingerprint(self) -> str:
        """SHA256:… as sshd logs it."""
        out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(self.path)], capture_output=True,
                             text=True, check=True).stdout
        return out.split()[1]


def keypair(path: Path, comment: str) -> KeyPair:
    private, public = keygen(path, comment=comment)
    return KeyPair(path, private, public)


class HostGuard:
    """What a k0s install (or k0sctl's bookkeeping) would change on this machine: recorded when created,
    compared by :meth:`check`."""

    def __init__(self) -> None:
        self.before = self.snapshot()

    @staticmethod
    def snapshot() -> dict[str, str]:
        state = {path: ("present" if os.path.lexists(path) else "absent") for path in GUARDED_PATHS}
        for folder in ("/usr/local/bin", "/tmp"):
            # Not "k0sctl*": other runs of the suite on this machine keep their temporary dirs in /tmp by that name.
            names = sorted(n for n in os.listdir(folder) if n.startswith(("k0s.tmp.", "k0s_backup")))
            state[f"k0s files in {folder}"] = " ".join(names)
        proc = subprocess.run(["findmnt", "-n", "-o", "PROPAGATION", "/"], capture_output=True, text=True,
                              check=False)
        state["propagation of /"] = proc.stdout.strip()
        return state

    def check(self) -> None:
        after = self.snapshot()
        changed = {k: (self.before[k], after[k]) for k in after if after[k] != self.before.get(k)}
        assert not changed, f"this machine was changed (before, after): {changed}"


class SshNode:
    """One node: its namespaces, sshd, keys and files. Build it with :func:`start_node`."""

    def __init__(self, lab: NetnsLab, root: Path) -> None:
        self.lab = lab
        self.root = root
        self.ctl: Namespace = lab.namespace("ctl")
        self.ns: Namespace = lab.namespace("node")
        self.address = NODE_ADDRESS
        self.hostname = NODE_HOSTNAME
        self.home = root / "node"
        self.tmpdir = self.home / "tmp"
        self.tmpdir.mkdir(parents=True)
        keys = root / "keys"
        keys.mkdir(mode=0o700)
        self.client = keypair(keys / "client_ed25519", "k0s-node-client")
        self.stranger = keypair(keys / "stranger_ed25519", "not-authorized")
        host_key = self.home / "ssh_host_ed25519_key"
        _, host_pub = keygen(host_key, comment="k0s-node-1-host")
        self.host_public = host_pub
        self.authorized_keys = self.home / "authorized_keys"
        self.authorized_keys.write_text(self.client.public + "\n", encoding="utf-8")
        self.authorized_keys.chmod(0o600)
        self.log_file = self.home / "sshd.log"
        self.config = self.home / "sshd_config"
        self.config.write_text(
            sshd_config(f"{NODE_ADDRESS}:22", host_key, self.authorized_keys,
                        extra=["PrintLastLog no", f"SetEnv TMPDIR={self.tmpdir}"]),
            encoding="utf-8",
        )
        self.process: subprocess.Popen[bytes] | None = None

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self) -> SshNode:
        self.lab.veth(self.ctl, "eth0", self.ns, "eth0")
        self.ctl.add_address("eth0", f"{CTL_ADDRESS}/24")
        self.ns.add_address("eth0", f"{NODE_ADDRESS}/24")
        PRIVSEP_DIR.mkdir(mode=0o755, exist_ok=True)
        check = subprocess.run([SSHD, "-t", "-f", str(self.config)], capture_output=True, text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"sshd rejects the node's config: {check.stderr.strip()}")
        argv = ["unshare", "--uts", "--mount", "--propagation", "private", "--",
                "/bin/sh", "-c", NODE_INIT, "node-init", NODE_HOSTNAME, str(self.home), SSHD, str(self.config)]
        with self.log_file.open("ab") as log:
            self.process = self.ns.spawn(argv, stdout=log, stderr=log, env=NODE_ENV)
        try:
            self.ns.wait_listening(22, process=self.process)
        except Exception as exc:
            raise RuntimeError(f"{exc}; sshd log: {self.log()[-800:]}") from None
        return self

    # -- what the node saw ---------------------------------------------------------------------
    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace") if self.log_file.exists() else ""

    def connections(self) -> list[str]:
        """sshd's "Connection from …" lines: one per TCP connection it accepted."""
        return [line for line in self.log().splitlines() if "Connection from " in line]

    def accepted(self) -> list[str]:
        """Fingerprints of the keys sshd accepted, in order."""
        return re.findall(r"Accepted publickey for root from \S+ port \d+ ssh2: \S+ (SHA256:\S+)", self.log())

    def known_hosts_line(self) -> str:
        key_type, key_b64 = self.host_public.split()[:2]
        return f"{NODE_ADDRESS} {key_type} {key_b64}"

    def ssh(self, command: str, key: KeyPair | None = None) -> subprocess.CompletedProcess[str]:
        """Run a command on the node with the system ssh client (from the ctl namespace)."""
        known = self.root / "known_hosts.ssh"
        known.write_text(self.known_hosts_line() + "\n", encoding="utf-8")
        argv = ["ssh", "-F", "/dev/null", "-i", str((key or self.client).path), "-o", "IdentitiesOnly=yes",
                "-o", "BatchMode=yes", "-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes",
                f"root@{NODE_ADDRESS}", command]
        return self.ctl.run(argv, check=False, timeout=30)

    # -- the cluster definition ----------------------------------------------------------------
    def k0s_stand_in(self, version: str = K0S_VERSION) -> Path:
        """A small executable standing in for the k0s binary k0sctl uploads (`k0sBinaryPath`).

        k0sctl runs the uploaded file on the node during a dry run: `k0s version`, `k0s config create`
        (the default config it builds on) and `k0s config validate`. Anything else (install, start,
        reset, backup) is refused, so even a mistaken real apply could not install anything.
        """
        path = self.root / "k0s-stand-in" / version / "k0s"
        if not path.exists():
            path.parent.mkdir(parents=True)
            path.write_text(K0S_STAND_IN.replace("@VERSION@", version), encoding="utf-8")
            path.chmod(0o755)
        return path

    def k0sctl_yaml(self, name: str, k0s_binary: Path, *, role: str = "controller+worker",
                    version: str = K0S_VERSION) -> str:
        """A one-host k0sctl config for this node: no keyPath (the key comes from the agent)."""
        return (
            "apiVersion: k0sctl.k0sproject.io/v1beta1\n"
            "kind: Cluster\n"
            f"metadata:\n  name: {name}\n"
            "spec:\n"
            "  hosts:\n"
            f"    - role: {role}\n"
            "      ssh:\n"
            f"        address: {NODE_ADDRESS}\n"
            "        user: root\n"
            "        port: 22\n"
            "      uploadBinary: true\n"
            f"      k0sBinaryPath: {k0s_binary}\n"
            "  k0s:\n"
            f"    version: {version}\n"
        )


K0S_STAND_IN = """#!/bin/sh
# Stand-in for k0s @VERSION@ (k0sctl-resource tests): answers what a k0sctl dry run asks, refuses the rest.
case "$1" in
  version)
    echo "@VERSION@" ;;
  config)
    case "$2" in
      create)
        cat <<'EOF'
apiVersion: k0s.k0sproject.io/v1beta1
kind: ClusterConfig
metadata:
  name: k0s
spec:
  api:
    port: 6443
    k0sApiPort: 9443
  storage:
    type: etcd
  network:
    provider: kuberouter
    podCIDR: 10.244.0.0/16
    serviceCIDR: 10.96.0.0/12
EOF
        ;;
      validate)
        shift 2
        while [ $# -gt 0 ]; do
          case "$1" in
            --config=*) file="${1#--config=}" ;;
            --config|-c) shift; file="$1" ;;
          esac
          shift
        done
        [ -n "$file" ] && grep -q '^kind: ClusterConfig' "$file" || { echo "stand-in: invalid config" >&2; exit 1; }
        ;;
      *) echo "stand-in k0s: unsupported: $*" >&2; exit 1 ;;
    esac ;;
  *)
    echo "stand-in k0s: refusing to run: $*" >&2
    exit 1 ;;
esac
"""


def start_node(lab: NetnsLab, root: Path) -> SshNode:
    return SshNode(lab, root).start()


@pytest.fixture
def ssh_node(tmp_path: Path) -> Iterator[SshNode]:
    """A running node (see the module docstring); this machine is checked to be unchanged afterwards."""
    require_node_support()
    guard = HostGuard()
    with NetnsLab() as lab:
        yield start_node(lab, tmp_path / "k0s-node")
    guard.check()
