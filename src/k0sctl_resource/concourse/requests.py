"""The typed requests of the three steps: what `check`, `in` (get) and `out` (put) read on stdin, parsed
strictly (`parse_check`, `parse_get`, `parse_put`); an error names the key at fault in one line.

A put's params are parsed by the parser its caller hands in (the command registry, which lives above
this layer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from k0sctl_resource.config.models import Source, Version, parse_source
from k0sctl_resource.config.schema import from_json
from k0sctl_resource.runtime.errors import ResourceError

if TYPE_CHECKING:  # imported where a get or put is parsed: a check never builds the params' classes
    from k0sctl_resource.concourse.params import GetParams

P = TypeVar("P")


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
class PutRequest(Generic[P]):
    source: Source
    params: P


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
    from k0sctl_resource.concourse.params import GetParams

    params = from_json(GetParams, data.get("params"), "params")
    return GetRequest(source=source, version=version, params=params)


def parse_put(raw: Any, parse_params: Callable[[Any], P]) -> PutRequest[P]:
    data = _top(raw, ("source", "params"))
    source = parse_source(data["source"])
    return PutRequest(source=source, params=parse_params(data.get("params")))


