"""The redactor (runtime/redact.py) and where k0sctl's long lines are cut (k0sctl/process.py): every secret
masked wherever a line is cut, control characters escaped, and a cost that grows linearly with the text."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from k0sctl_resource.k0sctl import process
from k0sctl_resource.runtime.redact import MASK, Redactor, escape_controls

FUZZ = settings(max_examples=120, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SECRETS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x2FF), min_size=8, max_size=40)
FILLER = st.text(st.sampled_from("ab:/@ \t\x1bé€\U0001F600"), max_size=400)


def through_pieces(redactor: Redactor, data: bytes, reads: list[int]) -> list[str]:
    """`data` (one line, no newline) as the supervisor reads it in chunks of `reads` sizes: the pieces it
    passes on, then the rest at the end of the output."""
    pieces: list[str] = []
    partial, at, i = b"", 0, 0
    while at < len(data):
        size = reads[i % len(reads)]
        partial += data[at:at + size]
        at, i = at + size, i + 1
        partial = process.split_long_line(partial, pieces.append)
    pieces.append(partial.decode("utf-8", errors="replace"))
    return pieces


@FUZZ
@given(secrets=st.lists(SECRETS, min_size=1, max_size=4), parts=st.lists(FILLER, min_size=2, max_size=12),
       reads=st.lists(st.integers(1, 5000), min_size=1, max_size=5), repeat=st.integers(1, 40))
def test_a_secret_is_masked_wherever_a_long_line_is_cut(secrets: list[str], parts: list[str], reads: list[int],
                                                        repeat: int) -> None:
    redactor = Redactor()
    redactor.add(*secrets)
    line = "".join(part + secrets[i % len(secrets)] for i, part in enumerate(parts * repeat))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(process, "REDACT", redactor)
        patch.setattr(process, "MAX_LINE", 64)
        pieces = through_pieces(redactor, line.encode("utf-8"), reads)
    assert "".join(pieces) == line  # nothing lost, nothing repeated
    shown = [redactor(piece) for piece in pieces]
    assert "".join(shown) == redactor(line)  # as if the line had been masked whole
    for secret in secrets:
        assert all(secret not in piece for piece in shown)


def test_the_pieces_are_bounded_and_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    redactor = Redactor()
    redactor.add("s3cr3t-value-" + "x" * 3000)
    monkeypatch.setattr(process, "REDACT", redactor)
    line = ("y" * 70_000 + "s3cr3t-value-" + "x" * 3000) * 20
    pieces = through_pieces(redactor, line.encode(), [65536])
    assert len(pieces) > 20 and max(map(len, pieces)) < 2 * 65536 + 2 * redactor.max_match
    assert "s3cr3t" not in "".join(redactor(piece) for piece in pieces)


@FUZZ
@given(text=st.text(max_size=200))
def test_control_characters_are_escaped_visibly(text: str) -> None:
    shown = escape_controls(text)
    assert not any((ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F for c in shown)
    one = escape_controls(text, one_line=True)
    assert "\n" not in one and "\t" not in one and "\r" not in one


def test_a_secret_spelled_by_an_escape_is_masked() -> None:
    redactor = Redactor()
    redactor.add("pass\\x1bword")
    assert redactor.safe("pass\x1bword and trailer \x1b]0;pwned\x07") == "*** and trailer \\x1b]0;pwned\\x07"


def test_url_credentials_are_masked_whatever_their_length_and_scheme() -> None:
    redactor = Redactor()
    assert redactor("https://ci:e@host/x") == f"https://ci:{MASK}@host/x"
    long_scheme = "a" * 40 + "://user:pw@host"
    assert "pw" not in redactor(long_scheme)
    redactor.add("ci-user-secret")
    assert redactor("git+https://ci-user-secret:x@host") == f"git+https://{MASK}:{MASK}@host"


def _cpu_seconds(call: Callable[[], object]) -> float:
    """The least CPU time of this process over five calls: other processes' load does not count."""
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        call()
        best = min(best, time.process_time() - started)
    return best


HOSTILE: dict[str, Callable[[int], str]] = {
    "a run of letters": lambda n: "a" * n,
    "schemes without credentials": lambda n: "a://" * (n // 4),
    "credentials without an end": lambda n: "https://user:" + "p" * n,
    "near misses of a secret": lambda n: "correct-horse-battery-stapl" * (n // 27),
    "a run of colons": lambda n: "x://" + ":" * n,
}


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_redaction_is_linear(shape: str) -> None:
    """Eight times the text costs about eight times as much (a quadratic redactor: 64 times); the ratio of
    two runs on the same machine, not a wall-clock bound."""
    redactor = Redactor()
    redactor.add("correct-horse-battery-staple", "another secret value")
    make = HOSTILE[shape]
    small, large = make(40_000), make(320_000)
    ratio = _cpu_seconds(lambda: redactor.safe(large)) / max(_cpu_seconds(lambda: redactor.safe(small)), 1e-6)
    assert ratio < 24, f"{shape}: 8x the text took {ratio:.1f}x the time"


def test_log_lines_and_metadata_carry_no_control_character(capsys: pytest.CaptureFixture[str]) -> None:
    from k0sctl_resource.concourse.protocol import metadata
    from k0sctl_resource.runtime import log

    hostile = "acme\x1b]0;pwned\x07\x1b[2J\r\nforged: line\x9b"
    for write in (log.info, log.step, log.ok, log.warn, log.error):
        write(hostile)
    err = capsys.readouterr().err
    own_styles = err.replace("\x1b[1m", "").replace("\x1b[32m", "").replace("\x1b[33m", "").replace(
        "\x1b[31m", "").replace("\x1b[0m", "")
    assert not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in own_styles), repr(own_styles)
    assert "acme\\x1b]0;pwned\\x07\\x1b[2J\\x0d" in err
    (entry,) = metadata({"cluster": hostile})
    assert entry["value"] == "acme\\x1b]0;pwned\\x07\\x1b[2J\\x0d\\x0aforged: line\\x9b"
