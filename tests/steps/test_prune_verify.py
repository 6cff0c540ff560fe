"""put `prune` and put `verify` through the real `out` step, against real bare repositories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from k0sctl_resource.config.models import parse_source
from k0sctl_resource.gitstore.commit_format import rfc3339
from k0sctl_resource.gitstore.drill_record import DrillRecord, append_drill_record
from k0sctl_resource.runtime.workspace import Workspace
from tests.support.backup_support import (
    age_key,
    backup_source,
    build_history,
    commit_trailers,
    first_parents,
    put_request,
    tree_files,
)
from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.resource import Resource
from tests.support.stores import store_of

DAY = timedelta(days=1)


def daily(repo: Path, count: int, *, end: datetime | None = None, cluster: str = CLUSTER_NAME) -> list[str]:
    """`count` daily backups of `cluster`, the newest at `end` (default: an hour ago); the archive names."""
    end = end or datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    shas = build_history(repo, count, 64, cluster=cluster, start=end - DAY * (count - 1), every=DAY)
    return [commit_trailers(repo, sha)["Archive"] for sha in shas[-count:]]


def files(repo: Path, rev: str = "refs/heads/k0sctl-backup") -> list[str]:
    return sorted(f.removeprefix("backups/") for f in tree_files(repo, rev))


def record_drill(repo: Path, archive: str, ended: datetime, result: str = "passed") -> None:
    with Workspace() as ws:
        store = store_of(parse_source({"backup": {"uri": f"file://{repo}"}}), ws)
        append_drill_record(store, DrillRecord(result=result, drilled_ref="b" * 40, drilled_archive=archive,  # type: ignore[arg-type]
                                               drilled_at=rfc3339(ended), restore_s=42.5, source_cluster=CLUSTER_NAME,
                                               scratch_cluster="scratch"))


def source(repo: Path, **backup: Any) -> dict[str, Any]:
    return backup_source(f"file://{repo}", plaintext=True, **backup)


# -- prune -----------------------------------------------------------------------------------------

def test_prune_dry_run_reports_and_changes_nothing(resource: Resource, workdir: Path, repo: Path,
                                                   double: Double) -> None:
    names = daily(repo, 10)
    before = first_parents(repo)
    run = resource.put(put_request(source(repo, retention={"keep_daily": 3}), "prune", dry_run=True),
                       workdir).expect_ok()
    assert first_parents(repo) == before and run.answer["version"] == {"ref": before[-1]}
    assert run.metadata["removed_archives"] == "7" and run.metadata["kept_archives"] == "3"
    assert run.metadata["dry_run"] == "true" and run.metadata["kept_by_rule"] == "daily 3, newest 1"
    assert run.metadata["removed"] == ", ".join(reversed(names[:7]))
    assert f"would remove {names[0]}" in run.stderr


def test_prune_removes_what_the_policy_drops_and_its_version_holds_the_newest_archive(
        resource: Resource, workdir: Path, repo: Path, double: Double, tmp_path: Path) -> None:
    names = daily(repo, 10)
    others = daily(repo, 3, cluster="other-cluster")
    record_drill(repo, names[1], datetime.now(UTC))
    src = source(repo, retention={"keep_daily": 3})
    run = resource.put(put_request(src, "prune"), workdir).expect_ok()
    sha = run.answer["version"]["ref"]
    assert first_parents(repo)[-1] == sha, "the prune commit is a version on the branch"
    assert files(repo) == sorted([*names[-3:], names[1], *others]), "the drilled archive and other clusters stay"
    assert run.metadata["removed_archives"] == "6" and "last drill 1" in run.metadata["kept_by_rule"]
    trailers = commit_trailers(repo, sha)
    newest_record = commit_trailers(repo, first_parents(repo)[-2])
    assert trailers["Archive"] == newest_record["Archive"] == others[-1], "the tip's record is carried forward"
    assert trailers["Removed-Archives"] == "6" and trailers["Sha256"] == newest_record["Sha256"]
    got = resource.get({"source": src, "version": {"ref": sha}}, tmp_path / "get").expect_ok()
    assert got.metadata["archive"] == others[-1] and (tmp_path / "get" / "backup.tar.gz.age").is_file()
    again = resource.put(put_request(src, "prune"), workdir).expect_ok()
    assert again.answer["version"] == {"ref": sha} and again.metadata["removed_archives"] == "0", "idempotent"
    fresh = resource.put(put_request(src, "verify", max_age="26h"), workdir).expect_ok()
    assert fresh.metadata["newest_backup_at"] == newest_record["Created-At"], "a prune is no new backup"


def test_prune_needs_a_policy_and_a_branch(resource: Resource, workdir: Path, repo: Path, double: Double) -> None:
    missing = resource.put(put_request(source(repo, keep=1), "prune"), workdir)
    assert missing.returncode == 1 and "does not exist: there is nothing to prune" in missing.error_lines[0]
    daily(repo, 2)
    none = resource.put(put_request(source(repo), "prune"), workdir)
    assert none.returncode == 1 and "prune needs a policy" in none.error_lines[0]
    zero = resource.put(put_request(source(repo, retention={"keep_last": 0}), "prune"), workdir)
    assert zero.returncode == 1 and "every keep_* is 0" in zero.error_lines[0]


def test_a_backup_applies_the_policy_and_says_so(resource: Resource, workdir: Path, repo: Path,
                                                 running: Double) -> None:
    names = daily(repo, 6, end=datetime.now(UTC) - DAY * 2)  # whole days apart from now, in any zone
    src = source(repo, retention={"keep_last": 1, "keep_daily": 3, "timezone": "Europe/Berlin"})
    run = resource.put(put_request(src, "backup"), workdir).expect_ok()
    new = run.metadata["archive"]
    kept = set(files(repo, run.answer["version"]["ref"]))
    assert kept == {new, names[-1], names[-2]}, "today's, and the newest of the two days before"
    body = commit_trailers(repo, run.answer["version"]["ref"])
    assert body["Removed-Archives"] == run.metadata["removed_archives"]
    assert f"({new} (" in f"({run.metadata['kept']}" and "just written" in run.metadata["kept"]
    message = git_message(repo, run.answer["version"]["ref"])
    assert "retention: kept" in message and f"removed {names[0]}" in message


def git_message(repo: Path, rev: str) -> str:
    from tests.support.backup_support import git

    return git(repo, "log", "-1", "--format=%B", rev)


# -- verify ----------------------------------------------------------------------------------------

def verify(resource: Resource, workdir: Path, src: dict[str, Any], **params: Any) -> Any:
    return resource.put(put_request(src, "verify", **params), workdir)


def test_verify_passes_on_a_fresh_backup_and_reports_it(resource: Resource, workdir: Path, repo: Path,
                                                        double: Double) -> None:
    names = daily(repo, 3)
    run = verify(resource, workdir, source(repo), max_age="26h").expect_ok()
    meta = run.metadata
    assert meta["status"] == "ok" and meta["newest_archive"] == names[-1]
    assert 3500 <= int(meta["age_s"]) <= 3600 + 600
    assert meta["newest_backup_at"] == commit_trailers(repo, first_parents(repo)[-1])["Created-At"]
    assert run.answer["version"] == {"ref": first_parents(repo)[-1]} and "cluster" not in meta, "no config is read"


def test_verify_fails_on_a_stale_backup_and_warns_past_warn_age(resource: Resource, workdir: Path, repo: Path,
                                                                double: Double) -> None:
    daily(repo, 2, end=datetime.now(UTC) - timedelta(hours=30))
    stale = verify(resource, workdir, source(repo), max_age="26h")
    assert stale.returncode == 1 and len(stale.error_lines) == 1
    assert "is 30.0 h old, older than max_age 26.0 h" in stale.error_lines[0], stale.error_lines
    warned = verify(resource, workdir, source(repo), max_age="2d", warn_age="26h").expect_ok()
    assert warned.metadata["status"] == "warn" and "past warn_age 26.0 h" in warned.stderr


def test_verify_checks_the_last_passed_drill(resource: Resource, workdir: Path, repo: Path, double: Double) -> None:
    names = daily(repo, 2)
    undrilled = verify(resource, workdir, source(repo), max_age="1d", max_drill_age="7d")
    assert undrilled.returncode == 1 and "no drill has passed yet" in undrilled.error_lines[0]
    record_drill(repo, names[-1], datetime.now(UTC) - DAY * 9)
    record_drill(repo, names[-1], datetime.now(UTC) - DAY, result="failed")
    old = verify(resource, workdir, source(repo), max_age="1d", max_drill_age="7d")
    assert old.returncode == 1 and "the last passed drill is 9.0 days old" in old.error_lines[0]
    record_drill(repo, names[-1], datetime.now(UTC) - DAY * 2)
    ok = verify(resource, workdir, source(repo), max_age="1d", max_drill_age="7d").expect_ok()
    assert ok.metadata["last_drill_restore_s"] == "42.5" and ok.metadata["last_drill_at"].endswith("Z")


def test_verify_deep_decrypts_privately_and_reads_the_archive_through(
        resource: Resource, workdir: Path, repo: Path, running: Double, tmp_path: Path) -> None:
    key = age_key(tmp_path)
    src = backup_source(f"file://{repo}", recipients=[key.recipient], identities=key.identity)
    resource.secrets.append(key.identity)
    resource.put(put_request(src, "backup"), workdir).expect_ok()
    run = verify(resource, workdir, src, max_age="1h", deep=True).expect_ok()
    assert run.metadata["deep"] == "true" and int(run.metadata["entries"]) > 0
    assert run.metadata["sha256_verified"] == "true"
    no_key = verify(resource, workdir, backup_source(f"file://{repo}", recipients=[key.recipient]), max_age="1h",
                    deep=True)
    assert no_key.returncode == 1 and "has no identities or passphrase" in no_key.error_lines[0]


def test_verify_deep_refuses_an_archive_that_does_not_decrypt(resource: Resource, workdir: Path, repo: Path,
                                                              double: Double, tmp_path: Path) -> None:
    daily(repo, 1)  # random bytes recorded as encrypted
    key = age_key(tmp_path)
    resource.secrets.append(key.identity)
    run = verify(resource, workdir, backup_source(f"file://{repo}", recipients=[key.recipient],
                                                  identities=key.identity), max_age="1d", deep=True)
    assert run.returncode == 1 and len(run.error_lines) == 1


@pytest.mark.parametrize(("params", "message"), [
    ({}, "params.max_age: required"),
    ({"max_age": "1h", "warn_age": "2h"}, "warn_age: must be shorter than max_age"),
    ({"max_age": "1h", "dry_run": True}, "params.dry_run: not a parameter of command verify"),
])
def test_verify_params(resource: Resource, workdir: Path, repo: Path, double: Double, params: dict[str, Any],
                       message: str) -> None:
    run = verify(resource, workdir, source(repo), **params)
    assert run.returncode == 1 and message in run.error_lines[0], run.error_lines


def test_verify_without_any_backup_fails_and_check_never_fails_for_staleness(
        resource: Resource, workdir: Path, repo: Path, double: Double) -> None:
    missing = verify(resource, workdir, source(repo), max_age="1h")
    assert missing.returncode == 1 and "there is no backup at all" in missing.error_lines[0]
    daily(repo, 2, end=datetime.now(UTC) - DAY * 400)
    assert resource.check({"source": source(repo)}).expect_ok().answer == [{"ref": first_parents(repo)[-1]}]


def test_prune_and_verify_keep_what_a_drill_restored(resource: Resource, workdir: Path, repo: Path,
                                                     double: Double) -> None:
    names = daily(repo, 5)
    record_drill(repo, names[0], datetime.now(UTC))
    record_drill(repo, names[1], datetime.now(UTC), result="failed")
    src = source(repo, keep=1)
    run = resource.put(put_request(src, "prune"), workdir).expect_ok()
    assert files(repo) == sorted([names[0], names[-1]]), "the failed drill's archive protects nothing"
    assert run.metadata["kept_by_rule"] == "last 1, newest 1, last drill 1"
