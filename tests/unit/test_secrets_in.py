"""Secrets are marked where the source is modelled (`schema.secret()` on the field), and the list the
redactor is fed from (`secrets_in`, before the request is validated) is derived from those marks.

The checks here do not read the marks to decide what is secret: one holds every field named like a
credential to be marked, the other holds `secrets_in` to find every value this file writes as a secret
(by hand, with the prefix SECRET-). The last test removes each mark in turn and shows both checks fail."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any, get_args, get_type_hints

import pytest

from k0sctl_resource.commands import COMMANDS
from k0sctl_resource.concourse.params import GetParams
from k0sctl_resource.config.models import Source, Version, parse_source, secrets_in, source_secret_paths

CREDENTIAL = re.compile(r"key|password|passphrase|identit|token|secret", re.IGNORECASE)

RAW: dict[str, Any] = {
    # not a key; the header is split so that no tracked file looks like it holds one
    "ssh_private_key": "SECRET-ssh -----BEGIN OPENSSH " "PRIVATE KEY-----\nnode\n-----END OPENSSH PRIVATE KEY-----\n",
    "ssh_known_hosts": "git.example.test ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE",
    "k0sctl": {"debug": True, "env": {"HTTP_PROXY": "http://proxy.example.test:3128"}},
    "backup": {"uri": "https://ci@git.example.test/r.git", "branch": "k0sctl-backup", "username": "ci",
               "private_key": "SECRET-backup-key-material", "password": "SECRET-pw-123456"},
    "encryption": {"identities": "SECRET-AGE-SECRET-KEY-1XYZ", "passphrase": "SECRET-passphrase-long"},
}


def _leaves(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _leaves(value)
    elif isinstance(node, str):
        yield node


def _nested(tp: Any) -> list[type[Any]]:
    return [t for t in (tp, *get_args(tp)) if isinstance(t, type) and dataclasses.is_dataclass(t)]


def unmarked_credentials(cls: type[Any], prefix: str = "") -> list[str]:
    """Fields of `cls` (and of the dataclasses it holds) named like a credential but not marked secret."""
    hints = get_type_hints(cls)
    found = []
    for field in dataclasses.fields(cls):
        path = prefix + field.name
        if CREDENTIAL.search(field.name) and not field.metadata.get("secret"):
            found.append(path)
        for inner in _nested(hints[field.name]):
            found += unmarked_credentials(inner, path + ".")
    return found


def missed_secrets() -> set[str]:
    """The values written as secrets above that `secrets_in` does not find."""
    return {v for v in _leaves(RAW) if v.startswith("SECRET-")} - set(secrets_in(RAW))


def test_every_field_named_like_a_credential_is_marked() -> None:
    models = [Source, Version, GetParams, *(info.params() for info in COMMANDS.values())]
    assert {cls.__name__: unmarked_credentials(cls) for cls in models if unmarked_credentials(cls)} == {}


def test_secrets_in_finds_every_secret_of_a_request_and_nothing_else() -> None:
    parse_source(RAW)  # a source the resource accepts
    assert missed_secrets() == set()
    assert all(value.startswith("SECRET-") for value in secrets_in(RAW))


def test_any_shape_is_read_without_failing() -> None:
    assert secrets_in(None) == []
    assert secrets_in(["x"]) == []
    assert secrets_in({"backup": "not a mapping", "ssh_private_key": 3}) == []
    assert secrets_in({"backup": {"uri": "https://ci:p%40ss-word@git.example.test/r.git"}}) == ["p@ss-word"]
    assert secrets_in({"backup": {"uri": "https://ci:e@git.example.test/r.git", "password": "x"}}) == []  # refused


@pytest.fixture
def fresh_paths() -> Iterator[None]:
    source_secret_paths.cache_clear()
    yield
    source_secret_paths.cache_clear()


@pytest.mark.parametrize("path", source_secret_paths(), ids=".".join)
def test_removing_a_mark_fails_both_checks(path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch,
                                           fresh_paths: None) -> None:
    cls: type[Any] = Source
    for name in path[:-1]:
        cls = _nested(get_type_hints(cls)[name])[0]
    field = {f.name: f for f in dataclasses.fields(cls)}[path[-1]]
    monkeypatch.setattr(field, "metadata", MappingProxyType({}))
    assert unmarked_credentials(Source) == [".".join(path)]
    value: Any = RAW
    for name in path:
        value = value[name]
    assert missed_secrets() == {value}
