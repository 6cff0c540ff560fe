"""The k0s test node and its doubles (tests/support/k0s_node.py, tests/support/k0s_double/): what they
keep private, what the k0s double does with the node's state, and that it refuses what it does not know."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from tests.support.k0s_node import K0S_VERSION, K0sLab, K0sNode, k0s_double

pytestmark = [pytest.mark.netns, pytest.mark.sshd]

INSTALL = "k0s install controller --data-dir=/var/lib/k0s --single=true --config=/etc/k0s/k0s.yaml"


def installed(lab: K0sLab) -> K0sNode:
    """A node where the double was put in place by hand and installed + started, as k0sctl would."""
    node = lab.node()
    placed = node.run("cat > /usr/local/bin/k0s && chmod 0750 /usr/local/bin/k0s",
                      stdin=k0s_double(lab.root).read_bytes())
    assert placed.returncode == 0, placed.stderr
    node.sh("mkdir -p /etc/k0s && k0s config create --data-dir=/var/lib/k0s > /etc/k0s/k0s.yaml && "
            f"{INSTALL} && systemctl start k0scontroller")
    # Its API server writes admin.conf once it listens (what k0sctl waits for, retrying its readyz probe).
    node.sh("n=0; until [ -f /var/lib/k0s/pki/admin.conf ]; do n=$((n+1)); [ $n -lt 1000 ] || exit 1; sleep 0.05; done")
    return node


def backup(node: K0sNode) -> bytes:
    proc = node.run("d=$(mktemp -d) && k0s backup --save-path $d --data-dir /var/lib/k0s && ls $d >&2 && "
                    "cat $d/*.tar.gz && rm -r $d")
    assert proc.returncode == 0, proc.stderr
    name = proc.stderr.decode().strip()
    assert name.startswith("k0s_backup_") and name.endswith(".tar.gz"), name
    return proc.stdout


def members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}  # type: ignore[union-attr]


def test_node_state_is_private(k0s_lab: K0sLab) -> None:
    node = installed(k0s_lab)
    assert node.sh("hostname").strip() == node.hostname
    assert node.sh("stat -c %F /run/systemd/system").strip() == "directory"
    assert node.running() == ["k0scontroller"]
    unit = node.sh("cat /etc/systemd/system/k0scontroller.service")
    assert "ExecStart=/usr/local/bin/k0s controller --data-dir=/var/lib/k0s --single=true" in unit
    assert node.sh("systemctl show -p FragmentPath k0scontroller.service").strip() == \
        "FragmentPath=/etc/systemd/system/k0scontroller.service"
    status = node.sh("k0s status -o json")
    assert f'"Version":"{K0S_VERSION}"' in status and '"Role":"controller"' in status and '"Workloads":true' in status
    assert node.sh("k0s kubectl get --raw=/readyz").strip() == "ok"
    assert node.sh("k0s kubeconfig admin --data-dir=/var/lib/k0s").count("name: Default") == 1
    # The k0s tree exists on the node only (the fixture's HostGuard checks this machine too).
    for path in ("/var/lib/k0s", "/etc/k0s", "/usr/local/bin/k0s", "/etc/systemd/system/k0scontroller.service"):
        assert not Path(path).exists(), path


def test_backup_is_a_real_archive_of_the_node_state(k0s_lab: K0sLab) -> None:
    one, two = installed(k0s_lab), installed(k0s_lab)
    first = backup(one)
    files = members(first)
    assert {"k0s.yaml", "etcd-snapshot.db", "pki/ca.crt", "pki/admin.conf"} <= set(files)
    assert one.hostname.encode() in files["etcd-snapshot.db"]
    assert one.lines("backups.sha256") == [hashlib.sha256(first).hexdigest()]
    assert members(backup(two))["pki/ca.crt"] != files["pki/ca.crt"]  # per node
    one.sh("k0s token create --role=worker --expiry=10m0s --data-dir=/var/lib/k0s > /dev/null")
    assert members(backup(one))["etcd-snapshot.db"] != files["etcd-snapshot.db"]  # per change


def test_restore_reset_and_refusals(k0s_lab: K0sLab) -> None:
    node = installed(k0s_lab)
    archive = backup(node)
    before = node.state()
    for command in ("k0s reset --data-dir=/var/lib/k0s", "k0s restore --data-dir=/var/lib/k0s /dev/null"):
        refused = node.run(command)
        assert refused.returncode == 1 and b"is running" in refused.stderr, command
    node.sh("systemctl stop k0scontroller && k0s reset --data-dir=/var/lib/k0s")
    assert node.sh("ls /var/lib/k0s /etc/systemd/system/k0scontroller.service 2>&1 || true").count("No such") == 2
    node.sh("mkdir -p /tmp/r")
    assert node.run("cat > /tmp/r/k0s_backup.tar.gz", stdin=archive).returncode == 0
    node.sh("k0s restore --data-dir=/var/lib/k0s /tmp/r/k0s_backup.tar.gz")
    assert node.lines("restored.sha256") == [hashlib.sha256(archive).hexdigest()]
    assert node.state() == before


def test_unknown_command_lines_fail_and_are_recorded(k0s_lab: K0sLab) -> None:
    node = installed(k0s_lab)
    for line in ("k0s status", "k0s kubectl get pods", "k0s backup --save-path /tmp --data-dir /elsewhere --x 1",
                 "systemctl restart k0scontroller"):
        assert node.sh(line + "; echo $?", check=False).strip().endswith("64"), line
    assert node.lines("unknown") == ["k0s status", "k0s kubectl get pods",
                                     "k0s backup --save-path /tmp --data-dir /elsewhere --x 1",
                                     "systemctl restart k0scontroller"]
