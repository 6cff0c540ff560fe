"""Paths given in params must stay inside the step's directory."""

from __future__ import annotations

import os
from pathlib import Path

from k0sctl_resource.runtime.errors import ResourceError


def inside(base: Path, relative: str, name: str) -> Path:
    """Resolve `relative` (a param called `name`) against `base`; refuse anything that escapes it.

    `..` and symbolic links are resolved first, so `config/../../etc/passwd` and a link pointing out of
    the directory are both refused.
    """
    if not relative or "\x00" in relative:
        raise ResourceError(f"params.{name}: must be a path relative to the put's directory")
    if os.path.isabs(relative) or relative.startswith("~"):
        raise ResourceError(f"params.{name}: must be relative to the put's directory, not absolute")
    root = base.resolve()
    target = (root / relative).resolve()
    if target != root and root not in target.parents:
        raise ResourceError(f"params.{name}: {relative!r} points outside the put's directory")
    return target
