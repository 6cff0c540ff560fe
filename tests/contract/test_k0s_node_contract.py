"""The contract between the real k0sctl and the k0s node doubles (tests/support/k0s_double/): every command line
that k0sctl v0.32 / v0.28.0 sends to `k0s` and `systemctl` in apply, re-apply, backup, reset, restore,
upgrade and a controller + worker cluster, recorded from real runs and kept in tests/contract/data/.

- `test_recorded_lines` runs the flows with the real k0sctl through the resource:
  the doubles must refuse nothing, and the lines (temporary names and token ids normalised) must equal
  the stored ones; a new k0sctl line fails here until it is reviewed (set K0S_CONTRACT_UPDATE=1 to
  rewrite the stored file, then read the diff).
- `test_double_knows_every_stored_line` replays each stored line on a node: none may be unknown to the
  doubles (exit 64), whatever state the node is in.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.support.k0s_cluster import CLUSTER, VERSIONS, Cluster, make_cluster
from tests.support.k0s_node import K0S_VERSION, K0sLab, k0s_double

DATA = Path(__file__).resolve().parent / "data"
NEWER = "v1.32.3+k0s.0"
_TMP = re.compile(r"/tmp/(tmp\.)?[A-Za-z0-9]{6,10}\b")
_INVALIDATE = re.compile(r"(k0s token invalidate --data-dir=/var/lib/k0s) [0-9a-f]+$")


def normalised(line: str) -> str:
    return _INVALIDATE.sub(r"\1 <id>", _TMP.sub("/tmp/<tmp>", line))


def stored(version: str) -> Path:
    return DATA / f"k0s-node-commands-{version}.txt"


def recorded(cluster: Cluster) -> set[str]:
    return {normalised(line) for node in cluster.nodes for line in node.lines("calls")}


def single_node_flows(cluster: Cluster) -> None:
    for command in ("init", "apply", "apply", "backup"):
        cluster.put(command).expect_ok()
    ref = cluster.check().answer[-1]
    cluster.get(ref, "backup")
    cluster.put("reset", confirm=CLUSTER, backup_first=False).expect_ok()
    cluster.put("apply", restore_from="backup").expect_ok()
    cluster.write_config(NEWER)
    cluster.put("apply").expect_ok()


@pytest.mark.k0sctl
@pytest.mark.netns
@pytest.mark.sshd
@pytest.mark.parametrize("version", VERSIONS)
def test_recorded_lines(k0s_lab: K0sLab, tmp_path: Path, version: str) -> None:
    single = make_cluster(k0s_lab, tmp_path / "s", version)
    single_node_flows(single)
    single.close()
    lines = recorded(single)
    pair_lab = K0sLab(k0s_lab.lab, tmp_path / "pl")  # a second ctl network in the same lab
    pair = make_cluster(pair_lab, tmp_path / "p", version, roles=("controller", "worker"))
    for step in ("init", "apply", "backup"):
        pair.put(step).expect_ok()
    pair.put("reset", confirm=CLUSTER, backup_first=False).expect_ok()
    pair.close()
    lines = {re.sub(r"k0s-node-\d", "k0s-node-N", line) for line in lines | recorded(pair)}
    if os.environ.get("K0S_CONTRACT_UPDATE") == "1":
        DATA.mkdir(exist_ok=True)
        stored(version).write_text("".join(f"{line}\n" for line in sorted(lines)), encoding="utf-8")
    known = set(stored(version).read_text(encoding="utf-8").splitlines())
    assert sorted(lines - known) == [], "k0sctl sent new command lines (review, then K0S_CONTRACT_UPDATE=1)"
    assert sorted(known - lines) == [], "stored command lines k0sctl no longer sends"


@pytest.mark.netns
@pytest.mark.sshd
@pytest.mark.parametrize("version", VERSIONS)
def test_double_knows_every_stored_line(k0s_lab: K0sLab, version: str) -> None:
    node = k0s_lab.node()
    setup = node.run("cat > /usr/local/bin/k0s && chmod 0750 /usr/local/bin/k0s && mkdir -p /etc/k0s /tmp/work && "
                     "k0s config create --data-dir=/var/lib/k0s | tee /etc/k0s/k0s.yaml /tmp/work/config > /dev/null "
                     "&& echo token > /etc/k0s/k0stoken && cp /etc/k0s/k0s.yaml /tmp/work/k0s_backup.tar.gz",
                     stdin=k0s_double(k0s_lab.root, K0S_VERSION).read_bytes())
    assert setup.returncode == 0, setup.stderr
    lines = stored(version).read_text(encoding="utf-8").splitlines()
    assert len(lines) > 20
    for line in lines:
        script = (line.replace("/tmp/<tmp>/k0s_backup.tar.gz", "/tmp/work/k0s_backup.tar.gz")
                  .replace("/tmp/<tmp>", "/tmp/work/config").replace("<id>", "abc123")
                  .replace("k0s-node-N", node.hostname))
        if "--save-path" in script:
            script = script.replace("/tmp/work/config", "/tmp/work")
        proc = node.run(f"{script} < /dev/null > /dev/null 2>&1; echo $?")
        assert proc.stdout.decode().strip() != "64", line
    assert node.lines("unknown") == []
