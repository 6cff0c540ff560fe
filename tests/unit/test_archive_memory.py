"""Archives are streamed, never read whole: the archive and age functions and the private git
repositories keep their memory flat in the archive's size (docs/performance.md).

Each test works on an archive much bigger than the bound it asserts, so a whole-file read (a
`read_bytes()`, a `tar.extractfile(...).read()`, pyrage's bytes API, git holding a blob) fails it.
They measure memory, not time.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import textwrap
import tracemalloc
from pathlib import Path

import pytest

from k0sctl_resource.archive import inspection
from k0sctl_resource.gitstore.runner import init_repo
from tests.support.backup_support import age_key

BIG = 48 * 1024 * 1024
MIB = 1024 * 1024


class _Random(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = os.urandom(n)
        self.left -= n
        return n


def big_archive(path: Path, size: int = BIG) -> Path:
    """A k0s-shaped tar.gz with a `size`-byte random etcd snapshot, written streaming (stored blocks)."""
    with path.open("wb") as fh, tarfile.open(fileobj=fh, mode="w:gz", compresslevel=0) as tar:
        info = tarfile.TarInfo("etcd-snapshot.db")
        info.size = size
        tar.addfile(info, io.BufferedReader(_Random(size), MIB))
        config = b"apiVersion: k0s.k0sproject.io/v1beta1\nkind: ClusterConfig\n"
        info = tarfile.TarInfo("k0s.yaml")
        info.size = len(config)
        tar.addfile(info, io.BytesIO(config))
    return path


def test_inspect_and_digest_allocate_a_few_chunks_not_the_archive(tmp_path: Path) -> None:
    archive = big_archive(tmp_path / "big.tar.gz")
    expected = hashlib.sha256()
    with archive.open("rb") as fh:
        while chunk := fh.read(MIB):
            expected.update(chunk)
    tracemalloc.start()
    try:
        facts = inspection.inspect(archive)
        digest, size = inspection.file_digest(archive)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert facts.sha256 == digest == expected.hexdigest() and facts.size == size == archive.stat().st_size
    assert facts.entries == 2 and facts.parts == ("config", "etcd")
    assert peak < 8 * MIB, f"inspect/file_digest allocated {peak / MIB:.1f} MiB for a {BIG / MIB:.0f} MiB archive"


_AGE_ROUND_TRIP = textwrap.dedent("""
    import resource, sys
    from pathlib import Path
    from k0sctl_resource.archive import crypto
    from k0sctl_resource.config.models import Encryption
    plain, sealed, back, recipient, identity = sys.argv[1:6]
    enc = Encryption(recipients=(recipient,), identities=Path(identity).read_text())
    crypto.parse_identities(enc.identities or "")  # pyrage's first use, before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    crypto.encrypt_file(Path(plain), Path(sealed), enc)
    digest, size = crypto.decrypt_file(Path(sealed), Path(back), enc)
    grew = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(digest, size, grew * 1024)
""")


def test_age_recipients_stream_in_rust_and_python(tmp_path: Path) -> None:
    """ru_maxrss of a fresh process sees pyrage's (Rust) allocations too, which tracemalloc cannot."""
    archive = big_archive(tmp_path / "big.tar.gz")
    key = age_key(tmp_path)
    back = tmp_path / "back.tar.gz"
    proc = subprocess.run([sys.executable, "-c", _AGE_ROUND_TRIP, str(archive), str(tmp_path / "big.age"), str(back),
                           key.recipient, str(key.path)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    digest, size, grew = proc.stdout.split()
    assert (digest, int(size)) == inspection.file_digest(archive)
    assert int(grew) < 24 * MIB, (f"encrypting and decrypting {BIG / MIB:.0f} MiB grew the process by "
                                  f"{int(grew) / MIB:.1f} MiB")


@pytest.mark.parametrize("size", [2 * MIB])
def test_private_repositories_stream_big_blobs(tmp_path: Path, size: int) -> None:
    """git keeps a blob above core.bigFileThreshold out of memory: `hash-object -w` writes it straight
    into a pack (bulk check-in), stored uncompressed (core.compression 0), instead of a loose object
    it built in memory."""
    repo = tmp_path / "repo"
    init_repo(repo, bare=False)
    blob = tmp_path / "archive.age"
    blob.write_bytes(os.urandom(size))
    subprocess.run(["git", "-C", str(repo), "hash-object", "-w", "--", str(blob)], check=True, capture_output=True)
    objects = repo / ".git" / "objects"
    loose = [p for p in objects.glob("??/*") if p.is_file()]
    packs = list(objects.glob("pack/*.pack"))
    assert not loose and len(packs) == 1, f"loose objects {loose}, packs {packs}"
    assert size <= packs[0].stat().st_size < size + 64 * 1024  # stored, not deflated again
