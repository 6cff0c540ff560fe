"""The test helpers that read a backup repository tell "no branch" from "git failed"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.backup_support import bare_repo, branch_tip, build_history


def test_branch_tip_is_none_only_for_a_missing_branch(tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "r.git")
    assert branch_tip(repo) is None
    chain = build_history(repo, 2, 16)
    assert branch_tip(repo) == chain[-1]
    assert build_history(repo, 1, 16)[:2] == chain  # appended on top of the tip it found


def test_a_git_failure_is_no_missing_branch(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="rev-parse"):
        branch_tip(tmp_path / "not-a-repository")
    with pytest.raises(AssertionError, match="rev-parse"):
        build_history(tmp_path / "not-a-repository", 1, 16)
