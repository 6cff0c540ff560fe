"""What a get or put is told besides its source: the params of get and of each put command.

Names are the contract of README.md ("Behaviour"); `schema.from_json` enforces types and rejects unknown
keys, and a key of another command is named as such.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from k0sctl_resource.config.schema import Seconds, closest, from_json, required
from k0sctl_resource.runtime.errors import ResourceError

COMMANDS = ("apply", "reset", "backup", "init", "ping", "drill")
Command = Literal["apply", "reset", "backup", "init", "ping", "drill"]


@dataclass(frozen=True)
class GetParams:
    skip_download: bool = False
    decrypt: bool = False  # what a get writes lands in a volume and a worker cache: plain only when asked


@dataclass(frozen=True)
class ApplyParams:
    command: Literal["apply"] = "apply"
    config: str = "config/k0sctl.yaml"
    restore_from: str | None = None
    restore: Literal["auto", "required"] = "auto"
    backup_first: bool = False
    dry_run: bool = False
    no_wait: bool = False
    no_drain: bool = False

    def validate(self, path: str) -> None:
        if self.restore == "required" and self.restore_from is None:
            raise ResourceError(f"{path}.restore: 'required' needs restore_from")
        if self.dry_run and self.backup_first:
            raise ResourceError(f"{path}: dry_run and backup_first exclude each other")


@dataclass(frozen=True)
class ResetParams:
    command: Literal["reset"] = "reset"
    config: str = "config/k0sctl.yaml"
    confirm: str | None = None
    backup_first: bool | None = None  # default: true when a backup repository is configured


@dataclass(frozen=True)
class BackupParams:
    command: Literal["backup"] = "backup"
    config: str = "config/k0sctl.yaml"


@dataclass(frozen=True)
class InitParams:
    command: Literal["init"] = "init"
    config: str = "config/k0sctl.yaml"
    force: bool = False


@dataclass(frozen=True)
class PingParams:
    command: Literal["ping"] = "ping"
    config: str = "config/k0sctl.yaml"
    count: int = 3
    timeout: Seconds = 2.0  # type: ignore[assignment]  # converted by schema.convert when given
    traceroute: bool = True
    fail_on_unreachable: bool = True
    extra_ports: tuple[int, ...] = ()

    def validate(self, path: str) -> None:
        if not 1 <= self.count <= 100:
            raise ResourceError(f"{path}.count: must be between 1 and 100")
        for i, port in enumerate(self.extra_ports):
            if not 0 < port < 65536:
                raise ResourceError(f"{path}.extra_ports[{i}]: not a port number")


@dataclass(frozen=True, kw_only=True)
class DrillParams:
    """A restore drill: the newest backup restored onto scratch hosts, checked, torn down, timed.

    `config` has no default: the default path of the other commands names the production cluster."""

    command: Literal["drill"] = "drill"
    config: str = required()  # the scratch cluster's k0sctl.yaml
    restore_from: str = required()  # a get of this resource
    confirm: str | None = None  # must equal the scratch cluster's metadata.name (checked by the step)
    keep: bool = False  # leave the restored scratch cluster running after a successful drill


PutParams = ApplyParams | ResetParams | BackupParams | InitParams | PingParams | DrillParams
_PUT_PARAMS: dict[str, type[Any]] = {
    "apply": ApplyParams,
    "reset": ResetParams,
    "backup": BackupParams,
    "init": InitParams,
    "ping": PingParams,
    "drill": DrillParams,
}


def parse_put_params(raw: Any) -> PutParams:
    if not isinstance(raw, dict):
        raise ResourceError("params.command: required (one of " + ", ".join(COMMANDS) + ")")
    command = raw.get("command")
    if command is None:
        raise ResourceError("params.command: required (one of " + ", ".join(COMMANDS) + ")")
    cls = _PUT_PARAMS.get(command) if isinstance(command, str) else None
    if cls is None:
        near = closest(command, COMMANDS) if isinstance(command, str) else None
        shown = repr(command) if isinstance(command, str) and len(command) <= 40 else "that value"
        raise ResourceError(f"params.command: must be one of {', '.join(COMMANDS)}, got {shown}"
                            + (f" (did you mean {near}?)" if near else ""))
    own = {f.name for f in dataclasses.fields(cls)}
    for key in raw:
        if key in own:
            continue
        owners = [name for name, other in _PUT_PARAMS.items()
                  if key in {f.name for f in dataclasses.fields(other)}]
        if owners:
            raise ResourceError(f"params.{key}: not a parameter of command {command} "
                                f"(it belongs to {' and '.join(owners)})")
    params: PutParams = from_json(cls, raw, "params")
    return params


