"""Strict conversion of request JSON into the typed models of `models.py`.

Every model is a frozen dataclass. Its field types drive the check: an unknown key is named together
with the closest valid one, a wrong type is named with its full path (`source.backup.keep: expected an
integer`). Nothing here knows about Concourse; it only turns plain JSON values into dataclasses.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from k0sctl_resource.runtime.errors import ResourceError

T = TypeVar("T")

MAX_STRING = 256 * 1024  # a PEM key or a known_hosts file fits with room to spare
MAX_ITEMS = 1000


class Duration(float):
    """Seconds, written in requests the way Go writes durations: `45m`, `1h30m`, `90s`."""


class Seconds(float):
    """Seconds, written in requests as a plain number (`2`, `0.5`)."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str) -> float:
    """Parse a Go-style duration such as `45m` or `1h30m10s` (and days `7d`, weeks `2w`) into seconds."""
    rest = text.strip()
    if not rest:
        raise ValueError("empty duration")
    total = 0.0
    pos = 0
    while pos < len(rest):
        match = _DURATION_PART.match(rest, pos)
        if match is None:
            raise ValueError(text)
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    return total


def closest(name: str, choices: typing.Iterable[str]) -> str | None:
    import difflib  # only for an error message: not imported by every check

    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _fail(path: str, expected: str, value: Any) -> ResourceError:
    return ResourceError(f"{path}: expected {expected}, got {_describe(value)}")


def convert(tp: Any, value: Any, path: str) -> Any:
    """Convert `value` to the annotated type `tp`, naming `path` in any error."""
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return convert(args[0], value, path)
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            listed = ", ".join(str(c) for c in choices)
            near = closest(str(value), [str(c) for c in choices]) if isinstance(value, str) else None
            hint = f" (did you mean {near}?)" if near else ""
            shown = repr(value) if isinstance(value, str) and len(value) <= 40 else _describe(value)
            raise ResourceError(f"{path}: must be one of {listed}, got {shown}{hint}")
        return value
    if origin in (list, tuple):
        item_tp = get_args(tp)[0]
        if not isinstance(value, list):
            raise _fail(path, "a list", value)
        if len(value) > MAX_ITEMS:
            raise ResourceError(f"{path}: too many items ({len(value)}; at most {MAX_ITEMS})")
        return tuple(convert(item_tp, item, f"{path}[{i}]") for i, item in enumerate(value))
    if origin in (dict, types.MappingProxyType):
        _, val_tp = get_args(tp)
        if not isinstance(value, dict):
            raise _fail(path, "a mapping", value)
        if len(value) > MAX_ITEMS:
            raise ResourceError(f"{path}: too many entries ({len(value)}; at most {MAX_ITEMS})")
        return types.MappingProxyType({str(k): convert(val_tp, v, f"{path}.{k}") for k, v in value.items()})
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return from_json(tp, value, path)
    return _scalar(tp, value, path)


def _scalar(tp: Any, value: Any, path: str) -> Any:
    """`value` as the scalar type `tp` (bool, int, Seconds, Duration, str)."""
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(path, "a boolean (true or false)", value)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, "an integer", value)
        return value
    if tp is Seconds:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0 or value > 3600:
            raise ResourceError(f"{path}: expected a number of seconds between 0 and 3600, got {value!r}"[:200])
        return Seconds(value)
    if tp is Duration:
        if not isinstance(value, str):
            raise _fail(path, "a duration such as 45m or 1h30m", value)
        try:
            seconds = parse_duration(value)
        except ValueError:
            raise ResourceError(f"{path}: expected a duration such as 45m or 1h30m") from None
        if seconds <= 0:
            raise ResourceError(f"{path}: the duration must be positive")
        return Duration(seconds)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(path, "a string", value)
        if len(value) > MAX_STRING:
            raise ResourceError(f"{path}: string too long ({len(value)} characters; at most {MAX_STRING})")
        if "\x00" in value:
            raise ResourceError(f"{path}: contains a NUL character")
        return value
    raise TypeError(f"unsupported field type {tp!r} at {path}")  # a programming error, not user input


def from_json(cls: type[T], value: Any, path: str) -> T:
    """Build dataclass `cls` from a JSON mapping, strictly."""
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _fail(path, "a mapping", value)
    assert dataclasses.is_dataclass(cls)
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key in value:
        if key not in fields:
            near = closest(str(key), fields)
            hint = f" (did you mean {near}?)" if near else ""
            shown = str(key) if len(str(key)) <= 60 else str(key)[:60] + "…"
            raise ResourceError(f"{path}.{shown}: unknown key{hint}")
    kwargs: dict[str, Any] = {}
    for name, field in fields.items():
        where = f"{path}.{name}"
        if name in value and value[name] is not None:
            kwargs[field.name] = convert(hints[field.name], value[name], where)
        elif field.metadata.get("required"):
            raise ResourceError(f"{where}: required")
        elif name in value and field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            kwargs[field.name] = None
    instance = cls(**kwargs)
    check = getattr(instance, "validate", None)
    if callable(check):
        check(path)
    return instance


def required() -> Any:
    return dataclasses.field(metadata={"required": True})


def secret() -> Any:
    """A field that holds a credential (optional, default None): every value found at such a field of a
    request is registered for redaction before the request is validated (`secret_paths`)."""
    return dataclasses.field(default=None, metadata={"secret": True})


def _dataclass_in(tp: Any) -> type[Any] | None:
    """The dataclass that type `tp` holds (`X` or `X | None`), if any."""
    for candidate in (tp, *get_args(tp)):
        if isinstance(candidate, type) and dataclasses.is_dataclass(candidate):
            return candidate
    return None


def secret_paths(cls: type[Any]) -> tuple[tuple[str, ...], ...]:
    """The paths of the fields marked `secret()` in dataclass `cls` and in the dataclasses it holds."""
    hints = get_type_hints(cls)
    found: list[tuple[str, ...]] = []
    for field in dataclasses.fields(cls):
        if field.metadata.get("secret"):
            found.append((field.name,))
        elif (inner := _dataclass_in(hints[field.name])) is not None:
            found.extend((field.name, *path) for path in secret_paths(inner))
    return tuple(found)
