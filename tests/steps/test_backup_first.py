"""`backup_first` for apply and reset through the real `out` step: a backup before k0sctl touches the
cluster, a fresh cluster goes on, any other backup failure stops everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import age_key, bare_repo, first_parents, tree_files
from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.resource import Resource


@pytest.fixture
def source(tmp_path: Path) -> dict[str, Any]:
    keys = tmp_path / "keys"
    keys.mkdir()
    repo = bare_repo(tmp_path / "backups.git")
    return {"backup": {"uri": f"file://{repo}"},
            "encryption": {"recipients": [age_key(keys).recipient]}}


def repo_of(source: dict[str, Any]) -> Path:
    return Path(source["backup"]["uri"].removeprefix("file://"))


def k0sctl_commands(double: Double) -> list[str]:
    return [argv[0] for argv in double.commands()]


def test_apply_backs_up_a_running_cluster_first(resource: Resource, workdir: Path, double: Double,
                                                source: dict[str, Any]) -> None:
    double.set(running=True)
    run = resource.put({"source": source, "params": {"command": "apply", "backup_first": True}}, workdir)
    run.expect_ok()
    assert k0sctl_commands(double) == ["backup", "apply"]
    (commit,) = first_parents(repo_of(source))
    assert run.answer["version"] == {"ref": commit}
    assert run.metadata["backup_ref"] == commit
    assert [name for name in tree_files(repo_of(source), commit) if name.endswith(".tar.gz.age")]


def test_apply_on_a_fresh_cluster_goes_on_without_backup(resource: Resource, workdir: Path, double: Double,
                                                         source: dict[str, Any]) -> None:
    run = resource.put({"source": source, "params": {"command": "apply", "backup_first": True}}, workdir)
    run.expect_ok()
    assert k0sctl_commands(double) == ["backup", "apply"]
    assert "nothing to back up (fresh cluster)" in run.stderr
    assert "backup_ref" not in run.metadata
    assert double.state()["running"] is True


@pytest.mark.parametrize("breakage", ["corrupt archive", "k0sctl fails", "repository gone"])
def test_failed_backup_stops_the_apply(resource: Resource, workdir: Path, double: Double, source: dict[str, Any],
                                       breakage: str) -> None:
    double.set(running=True, changes=True)
    if breakage == "corrupt archive":
        double.set(backup_corrupt=True)
    elif breakage == "k0sctl fails":
        double.set(fail={"backup": "failed to download the backup: connection reset"})
    else:
        source["backup"]["uri"] = f"file://{repo_of(source)}-missing"
    run = resource.put({"source": source, "params": {"command": "apply", "backup_first": True}}, workdir)
    assert run.returncode != 0
    assert len(run.error_lines) == 1
    assert "apply" not in k0sctl_commands(double), "k0sctl apply must not run after a failed backup"


def test_reset_backs_up_by_default(resource: Resource, workdir: Path, double: Double,
                                   source: dict[str, Any]) -> None:
    double.set(running=True)
    run = resource.put({"source": source, "params": {"command": "reset", "confirm": CLUSTER_NAME}}, workdir)
    run.expect_ok()
    assert k0sctl_commands(double) == ["backup", "reset"]
    (commit,) = first_parents(repo_of(source))
    assert run.answer["version"] == {"ref": commit}
    assert run.metadata["backup_first"] == "true"


def test_reset_of_a_stopped_cluster_needs_backup_first_false(resource: Resource, workdir: Path, double: Double,
                                                            source: dict[str, Any]) -> None:
    stopped = resource.put({"source": source, "params": {"command": "reset", "confirm": CLUSTER_NAME}}, workdir)
    assert stopped.returncode != 0 and "backup_first: false" in stopped.error_lines[0]
    assert k0sctl_commands(double) == ["backup"]
    forced = resource.put({"source": source, "params": {"command": "reset", "confirm": CLUSTER_NAME,
                                                        "backup_first": False}}, workdir)
    forced.expect_ok()
    assert k0sctl_commands(double) == ["backup", "reset"]
    assert forced.answer["version"] == {"ref": "none"}  # the branch does not exist yet
