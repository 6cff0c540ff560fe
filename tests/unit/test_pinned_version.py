"""One pinned k0sctl version: src/k0sctl_resource/k0sctl/k0sctl.version, which the image build, the install
script, the code's default, the tests and Renovate read. A bump of that file (by hand or by Renovate) must be
all it takes, so no other tracked file may spell the pinned version: such a spelling would stay behind, and
an image or a test would go on with the old release.

Exempt: what was recorded from a real release (tests/contract/data/, named by the release it came from) and
lines that state a fact of one release that stays true after a bump (marked `release fact`)."""

from __future__ import annotations

import re
import subprocess

from k0sctl_resource.k0sctl.versions import PINNED, PINNED_FILE, PINNED_TEXT
from tests.support import ROOT

EXEMPT_DIRS = ("tests/contract/data/",)
MARKER = "release fact"


def tracked() -> list[str]:
    out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         capture_output=True, check=True).stdout
    return [name for name in out.decode().split("\0") if name]


def spellings(text: str, version: str) -> list[str]:
    pattern = re.compile(re.escape(version) + r"(?![\w.])")
    return [line.strip() for line in text.splitlines() if pattern.search(line) and MARKER not in line]


def test_the_version_file_holds_one_release() -> None:
    assert PINNED_FILE.read_text(encoding="utf-8") == PINNED_TEXT + "\n"
    assert re.fullmatch(r"v\d+\.\d+\.\d+", PINNED_TEXT) and PINNED.known


def test_no_other_file_spells_the_pinned_version() -> None:
    found: dict[str, list[str]] = {}
    own = PINNED_FILE.relative_to(ROOT).as_posix()
    for name in tracked():
        path = ROOT / name
        if name == own or name.startswith(EXEMPT_DIRS) or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        hits = spellings(data.decode("utf-8", errors="replace"), PINNED_TEXT)
        if hits:
            found[name] = hits[:3]
    assert found == {}, f"spelled outside {own} (read it from there): {found}"


def test_the_check_finds_a_spelling() -> None:
    assert spellings(f"ARG K0SCTL_VERSION={PINNED_TEXT}\n", PINNED_TEXT)
    assert spellings(f"{PINNED_TEXT}.1 {PINNED_TEXT}0", PINNED_TEXT) == []  # another release
    assert spellings(f"x {PINNED_TEXT} # {MARKER}: rig is refused", PINNED_TEXT) == []
