"""Something that happens while k0sctl runs: a `k0sctl` in front of the test double that runs a shell
script before the double runs one command (the backup repository goes away, another pipeline pushes)."""

from __future__ import annotations

import shlex
from pathlib import Path

from tests.support import DOUBLE_DIR


def k0sctl_with_hook(bin_dir: Path, command: str, script: str) -> Path:
    """Write `bin_dir/k0sctl`: for `k0sctl <command> …` it first runs `script` (sh), then the double.

    A dry run (`--dry-run`, which an apply with an archive runs first to decide the restore) changes
    nothing, so the script waits for the run that acts."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    wrapper = bin_dir / "k0sctl"
    wrapper.write_text(
        "#!/bin/sh\n"
        "dry=\n"
        "for arg in \"$@\"; do [ \"$arg\" = --dry-run ] && dry=1; done\n"
        f"if [ \"$1\" = {shlex.quote(command)} ] && [ -z \"$dry\" ]; then\n"
        f"  ( {script} ) >&2 || exit 99\n"
        "fi\n"
        f"exec {shlex.quote(str(DOUBLE_DIR / 'k0sctl'))} \"$@\"\n", encoding="utf-8")
    wrapper.chmod(0o755)
    return bin_dir
