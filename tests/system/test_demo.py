"""The README's first command: the demo (scripts/demo.py) runs to "DEMO done" with the real k0sctl against a
k0s test node. It broke once without a test noticing, when get stopped decrypting by default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = [pytest.mark.k0sctl, pytest.mark.netns, pytest.mark.sshd]


def test_the_demo_runs_to_the_end(k0sctl_binary: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo.py")], capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "DEMO done" in done.stdout
    assert "the node's k0s state is IDENTICAL" in done.stdout
    assert "(the same bytes)" in done.stdout
