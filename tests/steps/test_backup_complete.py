"""A backup is a complete k0s backup: k0s.yaml, pki/, and a datastore (etcd-snapshot.db or
kine-state-backup.db), as k0s's pkg/backup writes it; `allow_config_only` for a cluster on external etcd."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from k0sctl_resource.archive.inspection import check_complete, inspect
from k0sctl_resource.runtime.errors import ResourceError
from tests.support.backup_support import backup_source, commit_trailers, put_request, stub_k0sctl, use_stub
from tests.support.resource import Resource

CONFIG = ("k0s.yaml", b"apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n")
PKI = ("pki/ca.crt", b"-----CERT-----\n")
ETCD = ("etcd-snapshot.db", b"\0etcd" * 100)
KINE = ("kine-state-backup.db", b"SQLite format 3\0" * 10)


def tar(*members: tuple[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as archive:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@pytest.mark.parametrize(("members", "datastore", "refused"), [
    ((CONFIG, PKI, ETCD), "etcd", None),
    ((CONFIG, PKI, KINE), "kine", None),
    ((("./k0s.yaml", CONFIG[1]), ("./pki/ca.crt", PKI[1]), ("./etcd-snapshot.db", ETCD[1])), "etcd", None),
    ((CONFIG, PKI), "none", "holds no datastore (neither etcd-snapshot.db nor kine-state-backup.db"),
    ((PKI, ETCD), "etcd", "is not a complete k0s backup: it holds no k0s.yaml"),
    ((CONFIG, ETCD), "etcd", "it holds no pki/"),
    ((ETCD,), "etcd", "it holds no k0s.yaml and no pki/"),
])
def test_what_a_complete_backup_holds(tmp_path: Path, members: tuple[tuple[str, bytes], ...], datastore: str,
                                      refused: str | None) -> None:
    path = tmp_path / "k0s_backup.tar.gz"
    path.write_bytes(tar(*members))
    facts = inspect(path)
    assert facts.datastore == datastore
    if refused is None:
        check_complete(facts, path.name, allow_config_only=False)
        return
    with pytest.raises(ResourceError) as caught:
        check_complete(facts, path.name, allow_config_only=False)
    assert refused in caught.value.message and "\n" not in caught.value.message
    if datastore == "none":
        check_complete(facts, path.name, allow_config_only=True)


def test_a_backup_without_a_datastore_is_refused_unless_allowed(resource: Resource, workdir: Path, repo: Path,
                                                                tmp_path: Path) -> None:
    use_stub(resource, stub_k0sctl(tmp_path / "bin", backup_bytes=tar(CONFIG, PKI)))
    source = backup_source(f"file://{repo}", plaintext=True)
    refused = resource.put(put_request(source, "backup"), workdir)
    assert refused.returncode == 1 and "holds no datastore" in refused.error_lines[0]
    assert "allow_config_only: true" in refused.error_lines[0]
    assert not (repo / "refs" / "heads" / "k0sctl-backup").exists(), "nothing was committed"
    stored = resource.put(put_request(source, "backup", allow_config_only=True), workdir).expect_ok()
    assert stored.metadata["datastore"] == "none" and "holds no datastore" in stored.stderr
    ref = stored.answer["version"]["ref"]
    assert commit_trailers(repo, ref)["Datastore"] == "none"
    got = resource.get({"source": source, "version": {"ref": ref}, "params": {"skip_download": True}},
                       tmp_path / "get").expect_ok()
    assert got.metadata["datastore"] == "none"


def test_a_kine_backup_records_its_datastore(resource: Resource, workdir: Path, repo: Path, tmp_path: Path) -> None:
    use_stub(resource, stub_k0sctl(tmp_path / "bin", backup_bytes=tar(CONFIG, PKI, KINE)))
    run = resource.put(put_request(backup_source(f"file://{repo}", plaintext=True), "backup"), workdir).expect_ok()
    assert run.metadata["datastore"] == "kine"
    assert commit_trailers(repo, run.answer["version"]["ref"])["Datastore"] == "kine"
