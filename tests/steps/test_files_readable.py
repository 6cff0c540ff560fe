"""Files the resource writes are never left readable, and never written through a symbolic link
(docs/security.md, "Files are written for their reader only").

`k0sctl-resource kubeconfig -o FILE` runs against the k0sctl double (a running cluster); the get cases
run the real `in` step on a backup made by a real `out`.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.support.backup_support import age_key, backup_source, put_request
from tests.support.fixtures import Double
from tests.support.resource import Resource, executable
from tests.support.sshd import bare_repo


def kubeconfig(resource: Resource, workdir: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([executable(), "kubeconfig", "-c", str(workdir / "config" / "k0sctl.yaml"),
                           "-o", str(output)], capture_output=True, text=True, timeout=60,
                          env=resource.environment(), check=False)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.mark.parametrize("existing_mode", [0o644, 0o666, 0o755])
def test_kubeconfig_onto_an_existing_readable_file_ends_0600(resource: Resource, workdir: Path, double: Double,
                                                             tmp_path: Path, existing_mode: int) -> None:
    double.set(running=True)
    output = tmp_path / "admin.conf"
    output.write_text("old\n", encoding="utf-8")
    output.chmod(existing_mode)
    proc = kubeconfig(resource, workdir, output)
    assert proc.returncode == 0, proc.stderr
    assert mode(output) == 0o600
    assert "clusters:" in output.read_text(encoding="utf-8")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".admin")) == []  # no temp left


def test_kubeconfig_never_follows_a_symlink(resource: Resource, workdir: Path, double: Double,
                                            tmp_path: Path) -> None:
    double.set(running=True)
    victim = tmp_path / "public.txt"
    victim.write_text("public\n", encoding="utf-8")
    victim.chmod(0o644)
    link = tmp_path / "admin.conf"
    link.symlink_to(victim)
    proc = kubeconfig(resource, workdir, link)
    assert proc.returncode == 1
    assert [line for line in proc.stderr.splitlines() if line.startswith("error: ")] == [
        f"error: {link} is a symbolic link; refusing to write through it"]
    assert victim.read_text(encoding="utf-8") == "public\n" and link.is_symlink()
    dangling = tmp_path / "dangling.conf"
    dangling.symlink_to(tmp_path / "would-be-created")
    assert kubeconfig(resource, workdir, dangling).returncode == 1
    assert not (tmp_path / "would-be-created").exists()


def test_kubeconfig_into_a_missing_folder_is_one_line(resource: Resource, workdir: Path, double: Double,
                                                      tmp_path: Path) -> None:
    double.set(running=True)
    proc = kubeconfig(resource, workdir, tmp_path / "nope" / "admin.conf")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert "cannot write" in proc.stderr


# -- get: what lands in DIR -------------------------------------------------------------------------

@pytest.fixture
def backed_up(resource: Resource, workdir: Path, double: Double, tmp_path: Path) -> tuple[dict[str, object], str]:
    key = age_key(tmp_path)
    repo = bare_repo(tmp_path / "backups.git")
    source = backup_source(f"file://{repo}", recipients=[key.recipient], identities=key.identity)
    resource.secrets.append(key.identity)
    double.set(running=True)
    run = resource.put(put_request(source, "backup"), workdir).expect_ok()
    return source, run.answer["version"]["ref"]


@pytest.mark.parametrize("decrypt", [True, False])
def test_get_resets_permissions_of_files_found_in_dir(resource: Resource, tmp_path: Path,
                                                      backed_up: tuple[dict[str, object], str],
                                                      decrypt: bool) -> None:
    source, ref = backed_up
    out = tmp_path / "get"
    out.mkdir()
    for name in ("backup.tar.gz", ".backup.tar.gz.partial", "backup.tar.gz.age", "metadata.json"):
        (out / name).write_text("planted\n", encoding="utf-8")
        (out / name).chmod(0o666)
    resource.get({"source": source, "version": {"ref": ref}, "params": {"decrypt": decrypt}}, out).expect_ok()
    written = out / ("backup.tar.gz" if decrypt else "backup.tar.gz.age")
    assert mode(written) == 0o600 and written.read_bytes() != b"planted\n"
    assert mode(out / "metadata.json") == 0o644 and '"kind": "backup"' in (out / "metadata.json").read_text()
    assert not decrypt or not (out / ".backup.tar.gz.partial").exists()


def test_get_never_writes_through_symlinks_in_dir(resource: Resource, tmp_path: Path,
                                                  backed_up: tuple[dict[str, object], str]) -> None:
    source, ref = backed_up
    out = tmp_path / "get"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("backup.tar.gz", ".backup.tar.gz.partial", "metadata.json"):
        (out / name).symlink_to(elsewhere / name)
    request = {"source": source, "version": {"ref": ref}, "params": {"decrypt": True}}
    run = resource.get(request, out)
    assert run.returncode == 1 and run.error_lines == [
        f"error: {out / 'metadata.json'} is a symbolic link; refusing to write through it"]
    assert list(elsewhere.iterdir()) == []
    (out / "metadata.json").unlink()  # links where the archive goes are replaced, never written through
    resource.get(request, out).expect_ok()
    assert not (out / "backup.tar.gz").is_symlink() and mode(out / "backup.tar.gz") == 0o600
    assert list(elsewhere.iterdir()) == []
