"""`backup_first` for apply and reset through the real `out` step: a backup before k0sctl touches the
cluster, a fresh cluster goes on, any other backup failure stops everything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import age_key, bare_repo, first_parents, tree_files
from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.in_process import InProcess
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
    # The branch did not exist: the put created it (init's empty commit) before k0sctl ran, then backed up.
    init, commit = first_parents(repo_of(source))
    assert tree_files(repo_of(source), init) == []
    assert run.answer["version"] == {"ref": commit}
    assert run.metadata["backup_ref"] == commit
    assert [name for name in tree_files(repo_of(source), commit) if name.endswith(".tar.gz.age")]


def test_backup_first_without_repository_is_named_before_encryption(resource: Resource, workdir: Path,
                                                                     double: Double) -> None:
    """No source.backup and nothing to encrypt to: the missing repository is the error, and k0sctl never runs."""
    double.set(running=True)
    run = resource.put({"source": {}, "params": {"command": "apply", "backup_first": True}}, workdir)
    assert run.returncode != 0
    assert run.error_lines == ["error: params.backup_first needs source.backup: the git repository that keeps the "
                               "archives"]
    assert k0sctl_commands(double) == []


def test_apply_on_a_fresh_cluster_goes_on_without_backup(resource: Resource, workdir: Path, double: Double,
                                                         source: dict[str, Any]) -> None:
    run = resource.put({"source": source, "params": {"command": "apply", "backup_first": True}}, workdir)
    run.expect_ok()
    assert k0sctl_commands(double) == ["backup", "apply"]
    assert "backup_ref" not in run.metadata
    assert double.state()["running"] is True
    # The normal first install (and every restore): one calm line, not k0sctl's fatal line and log tail.
    calm = [line for line in run.stderr.splitlines() if "nothing to back up" in line]
    assert calm == ["backup_first: k0s is not running on any controller (a new cluster, or one to restore), so "
                    "there is nothing to back up; going on with the apply"]
    assert "failed to find a running controller" not in run.stderr
    assert "level=fatal" not in run.stderr and "k0sctl.log" not in run.stderr
    # The branch did not exist: the apply created it with init's empty commit and printed that commit.
    (commit,) = first_parents(repo_of(source))
    assert run.answer["version"] == {"ref": commit}
    assert tree_files(repo_of(source), commit) == []


def test_a_real_backup_failure_is_shown_in_full(resource: Resource, workdir: Path, double: Double,
                                                source: dict[str, Any]) -> None:
    """Only "no running controller" is quiet: any other k0sctl failure keeps its fatal line and log tail."""
    double.set(running=True, fail={"backup": "failed to download the backup: connection reset"})
    run = resource.put({"source": source, "params": {"command": "apply", "backup_first": True}}, workdir)
    assert run.returncode != 0
    assert run.error_lines == ["error: k0sctl backup failed: failed to download the backup: connection reset"]
    screen, tail = run.stderr.split(" lines of k0sctl.log ---", 1)  # k0sctl's screen output, then its log
    fatal = [line for line in screen.splitlines() if "level=fatal" in line]
    assert len(fatal) == 1 and "connection reset" in fatal[0]
    assert "connection reset" in tail
    assert k0sctl_commands(double) == ["backup"]


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
    _init, commit = first_parents(repo_of(source))
    assert run.answer["version"] == {"ref": commit}  # the backup it took
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
    # A reset with backup_first shows k0sctl's failure in full: it is a failure there, not the quiet path.
    assert "failed to find a running controller" in stopped.stderr and "k0sctl.log" in stopped.stderr
    # The first of these puts created the branch with init's empty commit; the second printed it.
    (commit,) = first_parents(repo_of(source))
    assert forced.answer["version"] == {"ref": commit}
    assert "did not exist: created it with the empty commit init makes" in stopped.stderr


@pytest.mark.parametrize("command", ["apply", "reset"])
def test_one_backup_store_per_step(in_process: InProcess, workdir: Path, double: Double, source: dict[str, Any],
                                   command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the store parses the URI and writes the credential files: an apply or reset that reads the
    branch, backs up first and reads the branch again builds it once."""
    from k0sctl_resource.gitstore import store

    built: list[object] = []
    real_init = store.BackupStore.__init__

    def counted(self: store.BackupStore, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(store.BackupStore, "__init__", counted)
    double.set(running=True)
    params = {"command": command, "backup_first": True, "confirm": CLUSTER_NAME} if command == "reset" else {
        "command": command, "backup_first": True}
    run = in_process.put({"source": source, "params": params}, workdir)
    run.expect_ok()
    assert run.metadata["backup_ref"] and len(built) == 1
