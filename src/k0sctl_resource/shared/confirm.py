"""`params.confirm`: a put that resets hosts runs only when it names the cluster it is about to reset."""

from __future__ import annotations

from k0sctl_resource.runtime.errors import ResourceError


def require_confirm(confirm: str | None, name: str, command: str, *, whose: str = "the cluster's",
                    why: str = "") -> None:
    """Refuse unless `confirm` equals the cluster's metadata.name `name`; nothing has run yet."""
    if confirm is None:
        raise ResourceError(f"params.confirm: required for {command}; set it to {whose} name ({name!r}) to "
                            f"confirm{why}. Nothing was changed")
    if confirm != name:
        raise ResourceError(f"params.confirm: {confirm!r} does not match {whose} metadata.name {name!r}; "
                            "nothing was changed")
