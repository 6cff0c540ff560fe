"""The typed request models: everything a check, get or put can be told, in one place.

Names are the contract of SPEC.md; `schema.from_json` enforces types and rejects unknown keys.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from k0sctl_resource.config.schema import Duration, Seconds, closest, from_json, required
from k0sctl_resource.runtime.errors import ResourceError

NO_VERSION = "none"
BACKUP_TIMEOUT = Duration(60.0)  # source.backup.timeout's default (seconds)
COMMANDS = ("apply", "reset", "backup", "init", "ping", "drill")
Command = Literal["apply", "reset", "backup", "init", "ping", "drill"]


def _empty_env() -> MappingProxyType[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class K0sctlOptions:
    debug: bool = False
    trace: bool = False
    concurrency: int | None = None
    timeout: Duration | None = None
    env: MappingProxyType[str, str] = field(default_factory=_empty_env)

    def validate(self, path: str) -> None:
        if self.concurrency is not None and self.concurrency < 1:
            raise ResourceError(f"{path}.concurrency: must be at least 1")
        for name in self.env:
            if not name or "=" in name or "\x00" in name:
                raise ResourceError(f"{path}.env: invalid variable name {name[:40]!r}")


@dataclass(frozen=True)
class GitUser:
    name: str = "k0sctl-resource"
    email: str = "k0sctl-resource@localhost"


@dataclass(frozen=True)
class BackupRepo:
    uri: str = required()
    branch: str = "k0sctl-backup"
    path: str = "backups"
    private_key: str | None = None
    username: str | None = None
    password: str | None = None
    keep: int = 0
    git_user: GitUser = field(default_factory=GitUser)
    timeout: Duration = BACKUP_TIMEOUT  # a git network call without progress for this long stops

    def validate(self, path: str) -> None:
        if not self.uri.strip():
            raise ResourceError(f"{path}.uri: must not be empty")
        if self.keep < 0:
            raise ResourceError(f"{path}.keep: must be 0 (keep all) or more")
        if not 1 <= self.timeout <= 3600:
            raise ResourceError(f"{path}.timeout: must be between 1s and 1h")
        bad_branch = (
            not self.branch
            or self.branch.startswith(("-", "/", "."))
            or self.branch.endswith(("/", ".lock"))
            or any(c in self.branch for c in " ~^:?*[\\\x7f") or any(ord(c) < 0x20 for c in self.branch)
            or "@{" in self.branch or self.branch == "@" or "/." in self.branch or "//" in self.branch
            or ".." in self.branch
        )
        if bad_branch:
            raise ResourceError(f"{path}.branch: not a valid branch name")
        parts = [p for p in self.path.split("/") if p not in ("", ".")]
        if not parts or ".." in parts or self.path.startswith("/") or parts[0] == ".git":
            raise ResourceError(f"{path}.path: must be a relative folder inside the repository")
        if any(p.startswith("-") for p in parts) or any(ord(c) < 0x20 or c in "\\\x7f" for c in self.path):
            raise ResourceError(f"{path}.path: a folder name must not begin with '-' nor hold control characters")

    @property
    def folder(self) -> str:
        return "/".join(p for p in self.path.split("/") if p not in ("", "."))


@dataclass(frozen=True)
class Encryption:
    recipients: tuple[str, ...] = ()
    identities: str | None = None
    passphrase: str | None = None
    plaintext: bool = False

    def validate(self, path: str) -> None:
        if self.passphrase is not None and self.recipients:
            raise ResourceError(f"{path}: set either recipients or passphrase, not both")
        if self.passphrase == "":
            raise ResourceError(f"{path}.passphrase: must not be empty")
        for i, recipient in enumerate(self.recipients):
            if not recipient.startswith(("age1", "ssh-ed25519 ", "ssh-rsa ")):
                raise ResourceError(
                    f"{path}.recipients[{i}]: expected an age (age1…) or SSH (ssh-ed25519, ssh-rsa) public key"
                )

    @property
    def can_encrypt(self) -> bool:
        return bool(self.recipients) or self.passphrase is not None

    @property
    def can_decrypt(self) -> bool:
        return bool(self.identities) or self.passphrase is not None


@dataclass(frozen=True)
class Source:
    ssh_private_key: str | None = None
    ssh_known_hosts: str | None = None
    k0sctl: K0sctlOptions = field(default_factory=K0sctlOptions)
    backup: BackupRepo | None = None
    encryption: Encryption = field(default_factory=Encryption)

    def secrets(self) -> list[str]:
        """Every secret value this source carries, for the redactor."""
        return [v for path in SECRET_PATHS if isinstance(v := _walk(self, path, getattr), str) and v]


# Where a source carries secrets. `secrets_in_raw` reads the same places from the request JSON before it
# is validated, so that even a validation error cannot print one.
SECRET_PATHS = (
    ("ssh_private_key",),
    ("backup", "private_key"),
    ("backup", "password"),
    ("encryption", "identities"),
    ("encryption", "passphrase"),
)


def _walk(node: Any, path: tuple[str, ...], get: Any) -> Any:
    for name in path:
        node = get(node, name, None) if node is not None else None
    return node


def secrets_in_raw(raw_source: Any) -> list[str]:
    """The secret values of a source not yet validated (any shape): strings found at SECRET_PATHS."""
    def get(node: Any, name: str, default: None) -> Any:
        return node.get(name, default) if isinstance(node, dict) else default

    return [v for path in SECRET_PATHS if isinstance(v := _walk(raw_source, path, get), str) and v]


@dataclass(frozen=True)
class Version:
    ref: str = required()

    def validate(self, path: str) -> None:
        if self.ref != NO_VERSION and not (
            7 <= len(self.ref) <= 64 and all(c in "0123456789abcdef" for c in self.ref)
        ):
            raise ResourceError(f"{path}.ref: expected a commit sha or {NO_VERSION!r}")

    @property
    def is_none(self) -> bool:
        return self.ref == NO_VERSION

    def to_json(self) -> dict[str, str]:
        return {"ref": self.ref}


NONE_VERSION = Version(ref=NO_VERSION)


@dataclass(frozen=True)
class GetParams:
    skip_download: bool = False
    decrypt: bool = True


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


@dataclass(frozen=True)
class CheckRequest:
    source: Source
    version: Version | None


@dataclass(frozen=True)
class GetRequest:
    source: Source
    version: Version
    params: GetParams


@dataclass(frozen=True)
class PutRequest:
    source: Source
    params: PutParams


def _top(raw: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(raw, dict):
        kind = "a list" if isinstance(raw, list) else type(raw).__name__
        raise ResourceError(f"request: expected a JSON object with source{', version' * ('version' in allowed)}"
                            f"{', params' * ('params' in allowed)}, got {kind}")
    for key in raw:
        if key not in allowed:
            raise ResourceError(f"request.{str(key)[:60]}: unknown key (expected {', '.join(allowed)})")
    if "source" not in raw:
        raise ResourceError("request.source: required")
    return raw


def parse_source(raw: Any) -> Source:
    return from_json(Source, raw, "source")


def parse_check(raw: Any) -> CheckRequest:
    data = _top(raw, ("source", "version"))
    source = parse_source(data["source"])
    version = from_json(Version, data["version"], "version") if data.get("version") is not None else None
    return CheckRequest(source=source, version=version)


def parse_get(raw: Any) -> GetRequest:
    data = _top(raw, ("source", "version", "params"))
    source = parse_source(data["source"])
    if data.get("version") is None:
        raise ResourceError("request.version: required for get")
    version = from_json(Version, data["version"], "version")
    params = from_json(GetParams, data.get("params"), "params")
    return GetRequest(source=source, version=version, params=params)


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


def parse_put(raw: Any) -> PutRequest:
    data = _top(raw, ("source", "params"))
    source = parse_source(data["source"])
    return PutRequest(source=source, params=parse_put_params(data.get("params")))


def parse_json(text: str) -> Any:
    if not text.strip():
        raise ResourceError("request: stdin is empty; expected a JSON object")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResourceError(f"request: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise ResourceError("request: JSON nested too deeply") from None
