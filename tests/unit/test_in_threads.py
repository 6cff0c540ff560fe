"""tests/support/backup_support.py `in_threads`: every thread runs, and what one raises reaches the test."""

from __future__ import annotations

import threading

import pytest

from tests.support.backup_support import in_threads


def test_every_thread_runs_at_the_same_time() -> None:
    barrier = threading.Barrier(4, timeout=10)  # breaks unless all four wait at once
    seen: list[int] = []

    def one(i: int) -> None:
        barrier.wait()
        seen.append(i)

    in_threads(4, one)
    assert sorted(seen) == [0, 1, 2, 3]


def test_an_exception_in_a_thread_is_raised_after_all_ended() -> None:
    ended: list[int] = []

    def one(i: int) -> None:
        if i in (1, 2):
            raise AssertionError(f"put {i} failed")
        ended.append(i)

    with pytest.raises(AssertionError, match=r"put [12] failed") as caught:
        in_threads(4, one)
    assert sorted(ended) == [0, 3]
    (note,) = caught.value.__notes__
    assert note.startswith("raised in thread ") and " of 4; thread " in note and "raised too: AssertionError" in note
