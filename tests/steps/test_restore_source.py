"""restore_from hands k0sctl only bytes a record vouches for (docs/security.md, "Exit 0
means it is true (restores)").

Each case builds the put's inputs the way a get (or a hostile artifact) would, runs the real `out`
step against the k0sctl double, and checks what k0sctl received (the double records every restore's
sha256) or that it never ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import AgeKey, age_key, k0s_backup_tar
from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.resource import Resource


def apply(source: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
    return {"source": source or {}, "params": {"command": "apply", **params}}


def record(folder: Path, archive: bytes, kind: str = "backup", **extra: Any) -> None:
    facts = {"ref": "1" * 40, "kind": kind, "sha256": hashlib.sha256(archive).hexdigest(), "size": len(archive),
             **extra}
    (folder / "metadata.json").write_text(json.dumps(facts), encoding="utf-8")


def encrypt(key: AgeKey, plain: bytes, dst: Path) -> Path:
    subprocess.run(["age", "-r", key.recipient, "-o", str(dst)], input=plain, check=True)
    return dst


@pytest.fixture
def key(tmp_path: Path) -> AgeKey:
    return age_key(tmp_path)


def refused(resource: Resource, workdir: Path, double: Double, request: dict[str, Any], *words: str) -> str:
    run = resource.put(request, workdir, timeout=30)
    assert run.returncode == 1, run.stderr
    assert len(run.error_lines) == 1 and "Traceback" not in run.stderr, run.stderr
    line = run.error_lines[0]
    for word in words:
        assert word in line, line
    assert "internal error" not in line
    assert double.commands() == [], "k0sctl must not run"
    return line


def restored_sha256(double: Double) -> str:
    (restore,) = double.state()["restores"]
    return str(restore["sha256"])


# -- the record must match the bytes, whichever file the get wrote --------------------------------

def test_v1_metadata_with_v2_encrypted_archive_is_refused(resource: Resource, workdir: Path, double: Double,
                                                          key: AgeKey) -> None:
    v1, v2 = k0s_backup_tar(seed=b"v1"), k0s_backup_tar(seed=b"v2")
    folder = workdir / "cluster"
    folder.mkdir()
    record(folder, v1)
    encrypt(key, v2, folder / "backup.tar.gz.age")
    refused(resource, workdir, double, apply({"encryption": {"identities": key.identity}}, restore_from="cluster"),
            "cluster/backup.tar.gz.age", "does not match the sha256 recorded")


def test_v1_metadata_with_v2_plain_archive_is_refused(resource: Resource, workdir: Path, double: Double) -> None:
    folder = workdir / "cluster"
    folder.mkdir()
    record(folder, k0s_backup_tar(seed=b"v1"))
    (folder / "backup.tar.gz").write_bytes(k0s_backup_tar(seed=b"v2"))
    refused(resource, workdir, double, apply(restore_from="cluster"), "does not match the sha256")


def test_matching_encrypted_archive_is_restored_from_its_verified_bytes(resource: Resource, workdir: Path,
                                                                        double: Double, key: AgeKey) -> None:
    v2 = k0s_backup_tar(seed=b"v2")
    folder = workdir / "cluster"
    folder.mkdir()
    record(folder, v2)
    encrypt(key, v2, folder / "backup.tar.gz.age")
    run = resource.put(apply({"encryption": {"identities": key.identity}}, restore_from="cluster"), workdir)
    assert run.expect_ok().metadata["restored"] == "true"
    assert restored_sha256(double) == hashlib.sha256(v2).hexdigest()
    assert sorted(os.listdir(folder)) == ["backup.tar.gz.age", "metadata.json"]  # nothing written there


def test_size_mismatch_is_refused(resource: Resource, workdir: Path, double: Double) -> None:
    data = k0s_backup_tar(seed=b"v1")
    folder = workdir / "cluster"
    folder.mkdir()
    (folder / "backup.tar.gz").write_bytes(data)
    facts = {"kind": "backup", "sha256": hashlib.sha256(data).hexdigest(), "size": len(data) + 1}
    (folder / "metadata.json").write_text(json.dumps(facts), encoding="utf-8")
    refused(resource, workdir, double, apply(restore_from="cluster"), "does not match")


# -- an archive no record vouches for --------------------------------------------------------------

@pytest.mark.parametrize("facts", [None, {"kind": "init"}, {"kind": "backup"}, {"kind": "backup", "sha256": "abc"},
                                   ["not", "an", "object"]])
def test_archive_file_without_a_record_is_refused(resource: Resource, workdir: Path, double: Double,
                                                  facts: Any) -> None:
    (workdir / "snap.tar.gz").write_bytes(k0s_backup_tar(seed=b"loose"))
    if facts is not None:
        (workdir / "metadata.json").write_text(json.dumps(facts), encoding="utf-8")
    refused(resource, workdir, double, apply(restore_from="snap.tar.gz"), "params.restore_from")


def test_archive_file_with_its_record_beside_it_is_restored(resource: Resource, workdir: Path,
                                                            double: Double, key: AgeKey) -> None:
    data = k0s_backup_tar(seed=b"file")
    (workdir / "saved").mkdir()
    record(workdir / "saved", data)
    encrypt(key, data, workdir / "saved" / "prod-eu-20260801T020012Z.tar.gz.age")
    run = resource.put(apply({"encryption": {"identities": key.identity}},
                             restore_from="saved/prod-eu-20260801T020012Z.tar.gz.age"), workdir)
    assert run.expect_ok().metadata["restored"] == "true"
    assert restored_sha256(double) == hashlib.sha256(data).hexdigest()


def test_facts_apply_does_not_read_may_be_in_any_form(resource: Resource, workdir: Path, double: Double) -> None:
    """apply reads the sha256, size and cluster of the record: keys it does not know, and the hosts in a form a
    drill would refuse, do not stop it."""
    data = k0s_backup_tar(seed=b"lenient")
    (workdir / "cluster").mkdir()
    (workdir / "cluster" / "backup.tar.gz").write_bytes(data)
    record(workdir / "cluster", data, cluster=CLUSTER_NAME, hosts="192.0.2.10", future={"x": 1})
    run = resource.put(apply(restore_from="cluster"), workdir)
    assert run.expect_ok().metadata["restored"] == "true"
    assert restored_sha256(double) == hashlib.sha256(data).hexdigest()


def test_metadata_json_that_is_not_json_is_one_line(resource: Resource, workdir: Path, double: Double) -> None:
    folder = workdir / "cluster"
    folder.mkdir()
    (folder / "backup.tar.gz").write_bytes(k0s_backup_tar())
    (folder / "metadata.json").write_bytes(b"[" * 5000)
    refused(resource, workdir, double, apply(restore_from="cluster"), "metadata.json is not valid JSON")


# -- symbolic links anywhere on the path, files that are not regular -------------------------------

def test_archive_that_is_a_symlink_inside_the_put_dir_is_refused(resource: Resource, workdir: Path,
                                                                 double: Double) -> None:
    data = k0s_backup_tar()
    folder = workdir / "cluster"
    folder.mkdir()
    (workdir / "elsewhere.tar.gz").write_bytes(data)
    (folder / "backup.tar.gz").symlink_to("../elsewhere.tar.gz")
    record(folder, data)
    refused(resource, workdir, double, apply(restore_from="cluster"), "cluster/backup.tar.gz is a symbolic link")


def test_encrypted_archive_that_is_a_symlink_is_refused(resource: Resource, workdir: Path, double: Double,
                                                        key: AgeKey) -> None:
    data = k0s_backup_tar()
    folder = workdir / "cluster"
    folder.mkdir()
    encrypt(key, data, workdir / "real.age")
    (folder / "backup.tar.gz.age").symlink_to(workdir / "real.age")
    record(folder, data)
    refused(resource, workdir, double, apply({"encryption": {"identities": key.identity}}, restore_from="cluster"),
            "symbolic link")


@pytest.mark.parametrize("restore_from", ["linked", "linked/backup.tar.gz", "cluster/../linked"])
def test_symlink_on_the_way_is_refused(resource: Resource, workdir: Path, double: Double, restore_from: str) -> None:
    data = k0s_backup_tar()
    folder = workdir / "cluster"
    folder.mkdir()
    (folder / "backup.tar.gz").write_bytes(data)
    record(folder, data)
    (workdir / "linked").symlink_to("cluster")
    refused(resource, workdir, double, apply(restore_from=restore_from), "linked is a symbolic link")


def test_metadata_json_that_is_a_symlink_is_refused(resource: Resource, workdir: Path, double: Double) -> None:
    data = k0s_backup_tar()
    folder = workdir / "cluster"
    folder.mkdir()
    (folder / "backup.tar.gz").write_bytes(data)
    record(workdir, data)
    (folder / "metadata.json").symlink_to("../metadata.json")
    refused(resource, workdir, double, apply(restore_from="cluster"), "symbolic link")


def test_fifo_as_archive_is_refused_without_blocking(resource: Resource, workdir: Path, double: Double) -> None:
    folder = workdir / "cluster"
    folder.mkdir()
    os.mkfifo(folder / "backup.tar.gz")
    record(folder, b"anything")
    refused(resource, workdir, double, apply(restore_from="cluster"), "is a FIFO, not a regular file")
    os.mkfifo(workdir / "snap.tar.gz")
    refused(resource, workdir, double, apply(restore_from="snap.tar.gz"), "is a FIFO")
