"""`k0sctl-resource fleet-status`, run as a task runs it: 20 clusters in one backup repository (file:// and
over SSH through a real sshd), one branch missing, one repository that hangs; one fetch per repository."""

from __future__ import annotations

import json
import os
import shutil
import stat
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import bare_repo, git
from tests.support.fleet_support import (
    ClusterSpec,
    build_fleet,
    clusters_yml,
    hanging_server,
    run_fleet_status,
)
from tests.support.sshd import SshServer

pytestmark = pytest.mark.sshd

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
FAILED_THEN = (("passed", 2 * DAY, 30.0), ("failed", HOUR, 12.0))


def fleet_specs() -> list[ClusterSpec]:
    """20 clusters: most fine, c03 stale, c07 without a branch, c11 never drilled, c12 drilled too long ago,
    c15 whose last drill failed after one passed, c18 whose last passed drill lies behind 70 failed ones."""
    specs = [ClusterSpec(f"c{i:02d}") for i in range(20)]
    specs[3] = ClusterSpec("c03", backup_age=30 * HOUR)
    specs[7] = ClusterSpec("c07", backup_age=None)
    specs[11] = ClusterSpec("c11", drills=())
    specs[12] = ClusterSpec("c12", drills=(("passed", 9 * DAY, 50.0),))
    specs[15] = ClusterSpec("c15", drills=FAILED_THEN)
    specs[18] = ClusterSpec("c18", drills=(("passed", 3 * DAY, 77.0), *(("failed", HOUR, 1.0),) * 70))
    return specs


EXPECTED = {"c03": "stale", "c07": "stale", "c11": "undrilled", "c12": "undrilled", "hung": "unreachable"}


def git_counter(directory: Path) -> tuple[Path, Path]:
    """A `git` first on PATH that logs each command's argv (one line) and runs the real git."""
    real = shutil.which("git")
    assert real
    log = directory / "git-calls.log"
    wrapper = directory / "bin" / "git"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\nexec {real} "$@"\n', encoding="utf-8")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    return wrapper.parent, log


def check_report(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    by_name = {c["name"]: c for c in report["clusters"]}
    assert list(by_name) == [*(f"c{i:02d}" for i in range(20)), "hung"], "the order of clusters.yml"
    for name, cluster in by_name.items():
        assert cluster["status"] == EXPECTED.get(name, "ok"), (name, cluster)
    assert report["status"] == "unreachable"
    assert report["counts"] == {"ok": 16, "undrilled": 2, "stale": 2, "unreachable": 1}
    ok = by_name["c00"]
    assert ok["backup_age_s"] is not None and 3000 < ok["backup_age_s"] < 4200
    assert ok["last_drill_result"] == "passed" and ok["restore_s"] == 42.5 and ok["problems"] == []
    assert "does not exist" in by_name["c07"]["problems"][0]
    assert by_name["c03"]["problems"] == ["newest backup older than max_age (26h)"]
    assert by_name["c11"]["problems"] == ["no drill ever passed"]
    c15 = by_name["c15"]
    assert (c15["last_drill_result"], c15["restore_s"], c15["status"]) == ("failed", 12.0, "ok")
    assert c15["problems"] == ["last drill failed: API not ready"]
    c18 = by_name["c18"]
    assert c18["last_drill_result"] == "failed" and c18["last_passed_drill_at"] is not None
    assert 2.9 * 86400 < c18["drill_age_s"] < 3.1 * 86400, "found behind 70 newer records"
    assert "no answer in time" in by_name["hung"]["problems"][0]
    return by_name


@pytest.fixture
def fleet_repo(tmp_path: Path) -> Path:
    repo = bare_repo(tmp_path / "backups.git")
    build_fleet(repo, fleet_specs())
    return repo


def hung_cluster(port: int) -> dict[str, Any]:
    return {"name": "hung", "config": "clusters/hung/k0sctl.yaml",
            "vars": {"backup_repo_uri": f"ssh://git@127.0.0.1:{port}/backups.git"}}


def test_twenty_clusters_over_file_url_one_missing_one_hanging(tmp_path: Path, fleet_repo: Path) -> None:
    bin_dir, calls = git_counter(tmp_path)
    with hanging_server() as port:
        clusters = clusters_yml(tmp_path / "clusters.yml", fleet_specs(), f"file://{fleet_repo}", timeout="4s",
                                extra=[hung_cluster(port)])
        proc = run_fleet_status(clusters, env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 1, proc.stderr
    check_report(json.loads(proc.stdout))
    lines = calls.read_text(encoding="utf-8").splitlines()
    repo_calls = [ln for ln in lines if str(fleet_repo) in ln]
    # One listing and one fetch of the tips of every branch there is; then the drill branches of c15 and c18
    # alone, 64 deep; then c18's alone, whole.
    assert [ln.split()[0] for ln in repo_calls] == ["ls-remote", "fetch", "fetch", "fetch"], repo_calls
    second, third = (ln.split("--depth=")[1].split()[0] for ln in repo_calls[2:])
    assert (second, third) == ("64", "1000000")
    assert len([ln for ln in lines if ln.startswith("cat-file")]) == 3


def test_twenty_clusters_over_ssh_with_the_key_from_a_file(tmp_path: Path, fleet_repo: Path,
                                                          sshd_server: SshServer) -> None:
    key_file = tmp_path / "backup-key"
    key_file.write_text(sshd_server.client_key, encoding="utf-8")
    key_file.chmod(0o600)
    with hanging_server() as port:
        clusters = clusters_yml(tmp_path / "clusters.yml", fleet_specs(), sshd_server.url(fleet_repo),
                                known_hosts=sshd_server.known_hosts, timeout="4s", extra=[hung_cluster(port)])
        proc = run_fleet_status(clusters, env={"K0SCTL_FLEET_BACKUP_PRIVATE_KEY_FILE": str(key_file)})
    assert proc.returncode == 1, proc.stderr
    check_report(json.loads(proc.stdout))

    # The table, and the key given in the environment itself: never printed.
    clusters = clusters_yml(tmp_path / "clusters.yml", fleet_specs()[:3], sshd_server.url(fleet_repo),
                            known_hosts=sshd_server.known_hosts)
    bin_dir, calls = git_counter(tmp_path)
    proc = run_fleet_status(clusters, json_out=False,
                            env={"K0SCTL_FLEET_BACKUP_PRIVATE_KEY": sshd_server.client_key,
                                 "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0].split()[:2] == ["CLUSTER", "STATUS"]
    assert "3 cluster(s): 3 ok" in proc.stdout
    key_line = sshd_server.client_key.splitlines()[1]
    assert key_line not in proc.stdout + proc.stderr + calls.read_text(encoding="utf-8"), "never in argv"


def test_without_the_key_the_repository_is_unreachable_with_a_reason(tmp_path: Path, fleet_repo: Path,
                                                                     sshd_server: SshServer) -> None:
    clusters = clusters_yml(tmp_path / "clusters.yml", fleet_specs()[:2], sshd_server.url(fleet_repo),
                            known_hosts=sshd_server.known_hosts)
    proc = run_fleet_status(clusters)
    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    assert [c["status"] for c in report["clusters"]] == ["unreachable", "unreachable"]
    assert "authentication failed (check K0SCTL_FLEET_BACKUP_PRIVATE_KEY or" in report["clusters"][0]["problems"][0]


def test_a_newest_backup_behind_many_other_commits_is_found(tmp_path: Path) -> None:
    """Backups deeper than the first fetch's depth: the branch alone is fetched deeper."""
    repo = bare_repo(tmp_path / "backups.git")
    spec = ClusterSpec("deep", backups=1)
    build_fleet(repo, [spec])
    # 30 commits that are no backup on top of the newest backup (another tool's commits, say)
    tip = git(repo, "rev-parse", f"refs/heads/{spec.branch}")
    tree = git(repo, "rev-parse", f"{tip}^{{tree}}")
    for i in range(30):
        tip = git(repo, "commit-tree", tree, "-p", tip, "-m", f"note {i}")
    git(repo, "update-ref", f"refs/heads/{spec.branch}", tip)
    clusters = clusters_yml(tmp_path / "clusters.yml", [spec], f"file://{repo}")
    proc = run_fleet_status(clusters)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (cluster,) = json.loads(proc.stdout)["clusters"]
    assert cluster["status"] == "ok" and cluster["newest_backup"] is not None


def test_a_cluster_whose_repository_is_refused_does_not_hide_the_others(tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "backups.git")
    specs = fleet_specs()[:2]
    build_fleet(repo, specs)
    evil = {"name": "evil", "vars": {"backup_repo_uri": "ext::sh -c touch% /tmp/pwned"}}
    clusters = clusters_yml(tmp_path / "clusters.yml", specs, f"file://{repo}", extra=[evil])
    proc = run_fleet_status(clusters)
    assert proc.returncode == 1, proc.stderr
    by_name = {c["name"]: c for c in json.loads(proc.stdout)["clusters"]}
    assert [by_name[n]["status"] for n in ("c00", "c01", "evil")] == ["ok", "ok", "unreachable"]
    assert "backup_repo_uri: a `<transport>::address` URL makes git run a program" in by_name["evil"]["problems"][0]
