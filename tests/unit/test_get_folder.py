"""The record of a get's folder: metadata.json written from the typed facts and read back into them."""

from __future__ import annotations

import json
import os
from dataclasses import fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest

from k0sctl_resource.gitstore.commit_format import BackupFacts, CommitFacts, InitFacts
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.shared.get_folder import METADATA_FILE, METADATA_LIMIT, FolderRecord


def every_fact(cls: type[CommitFacts]) -> CommitFacts:
    """Facts of `cls` with every fact metadata.json holds set (commit-only ones are not written to it)."""
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for n, f in enumerate(fields(cls)):
        if f.metadata["commit_only"]:
            continue
        tp = next(a for a in get_args(hints[f.name]) if a is not type(None))
        if get_origin(tp) is tuple:
            values[f.name] = (f"{f.name}-1", f"{f.name}-2")
        elif tp is bool:
            values[f.name] = n % 2 == 0
        elif tp is int:
            values[f.name] = 1000 + n
        elif tp is float:
            values[f.name] = n + 0.5
        else:
            values[f.name] = f"{f.name} value"
    return cls(**values)


RECORDS = [
    FolderRecord("a" * 40, "backup", every_fact(BackupFacts)),
    FolderRecord("b" * 40, "backup", BackupFacts(cluster="prod", sha256="0" * 64, hosts=(), encrypted=False)),
    FolderRecord("c" * 40, "init", every_fact(InitFacts)),
    FolderRecord("d" * 40, "unknown"),
    FolderRecord("0" * 40, "none"),
]


@pytest.mark.parametrize("record", RECORDS, ids=[r.kind or "" for r in RECORDS])
def test_what_a_get_writes_reads_back_as_it_was(tmp_path: Path, record: FolderRecord) -> None:
    record.write(tmp_path)
    assert FolderRecord.read(tmp_path) == record


def test_every_fact_of_a_backup_is_in_the_round_trip(tmp_path: Path) -> None:
    """The round trip above holds because every written fact is read (none left at None on the way)."""
    record = RECORDS[0]
    written = record.write(tmp_path)
    back = FolderRecord.read(tmp_path)
    assert back is not None and back.malformed == ()
    assert {k for k, v in vars(back.backup).items() if v is not None} == set(written) - {"ref", "kind"}


def test_keys_it_does_not_know_are_ignored(tmp_path: Path) -> None:
    """A newer release's facts, and commit-only facts, in the file: the known ones are read as before."""
    meta = {**RECORDS[1].to_json(), "future_fact": {"x": 1}, "build": "pipeline/job #1", "removed_archives": 3}
    (tmp_path / METADATA_FILE).write_text(json.dumps(meta), encoding="utf-8")
    assert FolderRecord.read(tmp_path) == RECORDS[1]


@pytest.mark.parametrize(("key", "value"), [
    ("hosts", "192.0.2.10"), ("hosts", [1, 2]), ("endpoints", {"a": 1}), ("size", "12"), ("size", True),
    ("size", 1.5), ("encrypted", "yes"), ("cluster", 5), ("sha256", ["x"]),
])
def test_a_fact_in_another_form_is_left_out_and_named(key: str, value: object) -> None:
    record = FolderRecord.of_json({"ref": "a" * 40, "kind": "backup", "cluster": "prod", key: value})
    assert record.malformed == (key,)
    assert getattr(record.backup, key) is None


def test_a_record_without_ref_or_kind() -> None:
    record = FolderRecord.of_json({"sha256": "0" * 64, "kind": 7})
    assert (record.ref, record.short_ref, record.kind, record.facts) == ("", "?", None, None)
    assert record.backup == BackupFacts()


def test_no_metadata_json_is_no_record(tmp_path: Path) -> None:
    assert FolderRecord.read(tmp_path) is None


@pytest.mark.parametrize(("content", "expected"), [
    (b"[" * 5000, "params.restore_from: metadata.json is not valid JSON; refusing it"),
    (b"\xff\xfe", "params.restore_from: metadata.json is not valid JSON; refusing it"),
    (b'["not", "an", "object"]', "params.restore_from: metadata.json does not hold a JSON object; refusing it"),
    (b" " * (METADATA_LIMIT + 1), "params.restore_from: metadata.json "),
])
def test_what_is_not_a_record_is_refused_in_one_line(tmp_path: Path, content: bytes, expected: str) -> None:
    (tmp_path / METADATA_FILE).write_bytes(content)
    with pytest.raises(ResourceError) as exc:
        FolderRecord.read(tmp_path)
    assert exc.value.message.startswith(expected) and "\n" not in exc.value.message


def test_a_metadata_json_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    RECORDS[0].write(tmp_path / "elsewhere")
    (tmp_path / METADATA_FILE).symlink_to(tmp_path / "elsewhere" / METADATA_FILE)
    with pytest.raises(ResourceError, match=r"^params\.drill_from: metadata\.json .*symbolic link"):
        FolderRecord.read(tmp_path, "drill_from")
    (tmp_path / METADATA_FILE).unlink()
    os.mkfifo(tmp_path / METADATA_FILE)
    with pytest.raises(ResourceError, match=r"^params\.restore_from: metadata\.json .*not a regular file"):
        FolderRecord.read(tmp_path)
