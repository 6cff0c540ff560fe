"""put `command: drill` records every drill, passed or failed, on `k0sctl-drills/<backup.branch>`; `rto_target_s`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.steps.test_drill import SCRATCH, Backup, drill, scratch_config, take_backup
from tests.support.backup_support import BRANCH, backup_source, bare_repo, commit_trailers, first_parents, git
from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.resource import Resource
from tests.support.scratch_api import ScratchApiServer

DRILLS = f"k0sctl-drills/{BRANCH}"


@pytest.fixture
def backup(resource: Resource, workdir: Path, double: Double, tmp_path: Path, scratch_api: ScratchApiServer) -> Backup:
    """A plaintext backup of prod-eu in a fresh repository, handed over by a get in workdir/cluster; the scratch
    controller is the loopback address where `scratch_api` answers."""
    repo = bare_repo(tmp_path / "backups.git")
    scratch_config(workdir, controller=scratch_api.address)
    taken = take_backup(resource, workdir, double, backup_source(f"file://{repo}", plaintext=True), repo)
    double.set(kubeconfig_text=scratch_api.admin_kubeconfig())
    return taken


def drill_commits(repo: Path) -> list[str]:
    try:
        return first_parents(repo, DRILLS)
    except AssertionError:
        return []


def test_a_passed_drill_is_recorded_beside_the_versions(resource: Resource, workdir: Path, double: Double,
                                                        backup: Backup) -> None:
    versions = first_parents(backup.repo)
    run = drill(resource, workdir, backup.source).expect_ok()
    assert first_parents(backup.repo) == versions, "a drill never becomes a version"
    (record,) = drill_commits(backup.repo)
    assert run.metadata["drill_record"] == record and run.metadata["drill_result"] == "passed"
    subject = git(backup.repo, "log", "-1", "--format=%s", record)
    assert subject == f"drill passed: {backup.record['archive']} of {CLUSTER_NAME} onto {SCRATCH}"
    trailers = commit_trailers(backup.repo, record)
    assert trailers["Drill-Result"] == "passed" and trailers["Drilled-Ref"] == backup.ref
    assert trailers["Drilled-Archive"] == backup.record["archive"]
    # The same numbers; written differently when whole (the trailer "2.0", the metadata "2").
    for trailer, key in (("Restore-S", "restore_s"), ("Total-S", "total_s")):
        assert float(trailers[trailer]) == float(run.metadata[key]), (trailer, trailers[trailer], run.metadata[key])
    assert trailers["K0s-Version"] == "v1.31.2+k0s.0" and trailers["K0sctl-Version"] == run.metadata["k0sctl_version"]
    assert trailers["Source-Cluster"] == CLUSTER_NAME and trailers["Scratch-Cluster"] == SCRATCH
    assert trailers["Drilled-At"] == run.metadata["drilled_at"] and trailers["Drilled-At"].endswith("Z")
    assert "Reason" not in trailers


def test_a_failed_drill_is_recorded_with_its_reason(resource: Resource, workdir: Path, double: Double,
                                                   backup: Backup) -> None:
    double.set(fail={"apply": "restore failed: command failed: exit status 1"})
    run = drill(resource, workdir, backup.source)
    assert run.returncode == 1
    (record,) = drill_commits(backup.repo)
    trailers = commit_trailers(backup.repo, record)
    assert trailers["Drill-Result"] == "failed" and trailers["Drilled-Ref"] == backup.ref
    assert trailers["Reason"].startswith("k0sctl apply --restore-from failed: restore failed")
    assert git(backup.repo, "log", "-1", "--format=%s", record).startswith("drill failed: ")


def test_a_refused_drill_is_no_drill_and_records_nothing(resource: Resource, workdir: Path, double: Double,
                                                         backup: Backup) -> None:
    run = drill(resource, workdir, backup.source, confirm="prod-eu")
    assert run.returncode == 1
    assert drill_commits(backup.repo) == []


def test_a_restore_slower_than_rto_target_s_fails_the_drill_and_is_recorded_so(
        resource: Resource, workdir: Path, double: Double, backup: Backup) -> None:
    double.set(sleep=1.2)  # every k0sctl cluster command hangs this long: restore_s is at least 1.2
    run = drill(resource, workdir, backup.source, rto_target_s=1)
    assert run.returncode == 1
    assert "above rto_target_s 1 s" in run.error_lines[0], run.error_lines
    (record,) = drill_commits(backup.repo)
    trailers = commit_trailers(backup.repo, record)
    assert trailers["Drill-Result"] == "failed" and "rto_target_s" in trailers["Reason"]
    assert float(trailers["Restore-S"]) >= 1.2


def test_a_restore_within_rto_target_s_passes(resource: Resource, workdir: Path, double: Double,
                                              backup: Backup) -> None:
    run = drill(resource, workdir, backup.source, rto_target_s=3600).expect_ok()
    assert run.metadata["rto_target_s"] == "3600" and run.metadata["drill_result"] == "passed"


def test_rto_target_s_must_be_positive(resource: Resource, workdir: Path, double: Double, backup: Backup) -> None:
    run = drill(resource, workdir, backup.source, rto_target_s=0)
    assert run.returncode == 1 and "rto_target_s: must be at least 1" in run.error_lines[0]
    assert drill_commits(backup.repo) == []
