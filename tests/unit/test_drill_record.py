"""The drill record: its message format, and appending/reading it on a real bare repository."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from k0sctl_resource.config.models import parse_source
from k0sctl_resource.gitstore.drill_record import (
    READ_DEPTH,
    DrillRecord,
    append_drill_record,
    format_drill_record,
    newest_passed,
    parse_drill_record,
    read_drill_records,
)
from k0sctl_resource.gitstore.store import EMPTY_TREE, BackupStore
from k0sctl_resource.runtime.workspace import Workspace
from tests.support.backup_support import BRANCH, build_history, first_parents, git, in_threads
from tests.support.stores import store_of

SHA = "a" * 40
PASSED = DrillRecord(result="passed", drilled_ref=SHA, drilled_archive="prod-20260101T000000Z.tar.gz.age",
                     drilled_at="2026-01-01T00:10:00Z", restore_s=312.4, total_s=420.0, k0s_version="v1.31.2+k0s.0",
                     k0sctl_version="v0.31.0", build_url="https://ci.example.test/builds/7", source_cluster="prod",
                     scratch_cluster="scratch")


def test_the_message_has_the_agreed_subject_and_trailers() -> None:
    message = format_drill_record(PASSED)
    lines = message.splitlines()
    assert lines[0] == "drill passed: prod-20260101T000000Z.tar.gz.age of prod onto scratch"
    assert lines[1] == ""
    assert lines[2:] == [
        "Drill-Result: passed", f"Drilled-Ref: {SHA}", "Drilled-Archive: prod-20260101T000000Z.tar.gz.age",
        "Drilled-At: 2026-01-01T00:10:00Z", "Restore-S: 312.4", "Total-S: 420.0", "K0s-Version: v1.31.2+k0s.0",
        "K0sctl-Version: v0.31.0", "Build-Url: https://ci.example.test/builds/7", "Source-Cluster: prod",
        "Scratch-Cluster: scratch"]
    assert parse_drill_record(message) == PASSED


def test_a_failed_record_carries_one_sanitised_reason_and_a_passed_one_none() -> None:
    failed = dataclasses.replace(PASSED, result="failed", reason="k0sctl apply failed:\n\x1b[31mboom\x1b[0m\tnow" * 40)
    message = format_drill_record(failed)
    assert message.startswith("drill failed: ")
    (reason,) = [line for line in message.splitlines() if line.startswith("Reason: ")]
    assert "\x1b" not in reason and len(reason) <= len("Reason: ") + 300
    parsed = parse_drill_record(message)
    assert parsed is not None and parsed.result == "failed" and not parsed.passed
    assert "Reason:" not in format_drill_record(dataclasses.replace(PASSED, reason="ignored"))


def test_other_messages_are_no_record() -> None:
    assert parse_drill_record("backup prod x\n\nK0sctl-Resource-Kind: backup\nArchive: x\n") is None
    assert parse_drill_record("drill passed\n\nDrill-Result: maybe\n") is None
    assert parse_drill_record("Drill-Result: passed\n") is None  # a subject is no trailer
    odd = parse_drill_record("drill passed: x\n\nDrill-Result: passed\nRestore-S: fast\nDrilled-At: soon\n")
    assert odd is not None and odd.restore_s is None and odd.ended() is None


def _store(ws: Workspace, repo: Path) -> BackupStore:
    return store_of(parse_source({"backup": {"uri": f"file://{repo}"}}), ws)


def test_records_go_to_their_own_branch_as_empty_commits_and_read_back_newest_first(repo: Path) -> None:
    build_history(repo, 2, 64)
    versions = first_parents(repo)
    with Workspace() as ws:
        store = _store(ws, repo)
        assert read_drill_records(store) == [] and newest_passed(store) is None
        first = append_drill_record(store, PASSED)
        failed = dataclasses.replace(PASSED, result="failed", reason="apply failed", drilled_at="2026-01-02T00:00:00Z")
        second = append_drill_record(store, failed)
    assert first_parents(repo) == versions  # the versions branch never moves
    assert first_parents(repo, f"k0sctl-drills/{BRANCH}") == [first, second]
    assert git(repo, "rev-parse", f"{second}^{{tree}}") == EMPTY_TREE
    with Workspace() as ws:
        store = _store(ws, repo)
        newest = read_drill_records(store, 5)
        assert [r.commit for r in newest] == [second, first] and newest[0].reason == "apply failed"
        passed = newest_passed(store)
    assert passed is not None and passed.commit == first and passed.restore_s == 312.4


def test_the_newest_passed_record_is_found_beyond_the_first_read(repo: Path) -> None:
    with Workspace() as ws:
        store = _store(ws, repo)
        append_drill_record(store, PASSED)
        failed = dataclasses.replace(PASSED, result="failed", reason="no")
        for _ in range(READ_DEPTH + 2):
            append_drill_record(store, failed)
    with Workspace() as ws:
        found = newest_passed(_store(ws, repo))
    assert found is not None and found.passed


def test_drills_recording_at_the_same_time_lose_no_record(repo: Path) -> None:
    def one(i: int) -> None:
        with Workspace() as ws:
            append_drill_record(_store(ws, repo), dataclasses.replace(PASSED, scratch_cluster=f"scratch-{i}"))

    in_threads(4, one)
    with Workspace() as ws:
        records = read_drill_records(_store(ws, repo), 10)
    assert sorted(r.scratch_cluster or "" for r in records) == [f"scratch-{i}" for i in range(4)]
