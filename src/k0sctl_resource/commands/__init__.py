"""The put commands, one module each, and the one registry of them.

A command's module holds its params (a frozen dataclass, named in `CommandInfo.params_class`) and its
`run(ctx, params, cluster, directory)`. Everything that lists the commands derives from `COMMANDS`:
the parsing of a put's params (below), the dispatch of a put (`steps.put`), the help of `out` (`cli`)
and the command list of README.md (a test holds them equal). A module is imported only when its
command runs, or when an unknown key is looked up among the other commands' params.

Commands never import each other; what two of them share lives below them, in `k0sctl_resource.shared`.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from k0sctl_resource.config.schema import closest, from_json
from k0sctl_resource.runtime.errors import ResourceError

if TYPE_CHECKING:
    from k0sctl_resource.concourse.responses import StepResponse
    from k0sctl_resource.shared.context import StepContext


class PutParams(Protocol):
    """What every command's params have: the command's name and the path of its k0sctl config."""

    @property
    def command(self) -> str: ...

    @property
    def config(self) -> str: ...


Run = Callable[["StepContext", Any, Any, Path], "StepResponse"]


@dataclass(frozen=True)
class CommandInfo:
    """A put command: where it lives, its params' class, one line for help, and whether it loads the
    cluster's k0sctl config before it runs (`init` touches only the backup repository)."""

    module: str
    params_class: str
    summary: str
    needs_cluster: bool = True

    def params(self) -> type[Any]:
        cls: type[Any] = getattr(importlib.import_module(self.module), self.params_class)
        return cls

    def run(self) -> Run:
        run: Run = importlib.import_module(self.module).run
        return run


COMMANDS: dict[str, CommandInfo] = {
    "apply": CommandInfo("k0sctl_resource.commands.apply", "ApplyParams",
                         "install or upgrade the cluster with k0sctl apply (optionally restoring a backup)"),
    "reset": CommandInfo("k0sctl_resource.commands.reset", "ResetParams",
                         "remove k0s from every host (confirmed by the cluster's name; a backup first)"),
    "backup": CommandInfo("k0sctl_resource.commands.backup", "BackupParams",
                          "back up the cluster: encrypted, committed to the backup branch"),
    "init": CommandInfo("k0sctl_resource.commands.init", "InitParams",
                        "create the backup branch", needs_cluster=False),
    "ping": CommandInfo("k0sctl_resource.commands.ping", "PingParams",
                        "check that every host answers: ICMP, route and SSH/WinRM port"),
    "drill": CommandInfo("k0sctl_resource.commands.drill", "DrillParams",
                         "restore a backup onto scratch hosts, check it, reset them, time it"),
    "verify": CommandInfo("k0sctl_resource.commands.verify", "VerifyParams",
                          "fail when the newest backup (or the last passed drill) is too old", needs_cluster=False),
    "prune": CommandInfo("k0sctl_resource.commands.prune", "PruneParams",
                         "apply backup.retention to the branch without a backup (dry_run: report only)"),
}
NAMES = tuple(COMMANDS)


def parse_params(raw: Any) -> PutParams:
    """A put's params, typed by their command; an unknown key, or a key of another command, is named."""
    if not isinstance(raw, dict):
        raise ResourceError("params.command: required (one of " + ", ".join(NAMES) + ")")
    command = raw.get("command")
    if command is None:
        raise ResourceError("params.command: required (one of " + ", ".join(NAMES) + ")")
    info = COMMANDS.get(command) if isinstance(command, str) else None
    if info is None:
        near = closest(command, NAMES) if isinstance(command, str) else None
        shown = repr(command) if isinstance(command, str) and len(command) <= 40 else "that value"
        raise ResourceError(f"params.command: must be one of {', '.join(NAMES)}, got {shown}"
                            + (f" (did you mean {near}?)" if near else ""))
    cls = info.params()
    own = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key in own:
            continue
        owners = [name for name, other in COMMANDS.items()
                  if key in {f.name for f in dataclasses.fields(other.params())}]
        if owners:
            raise ResourceError(f"params.{key}: not a parameter of command {command} "
                                f"(it belongs to {' and '.join(owners)})")
    params: PutParams = from_json(cls, raw, "params")
    return params
