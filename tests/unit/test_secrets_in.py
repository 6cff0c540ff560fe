"""The one list the redactor is fed from: `secrets_in` reads the request JSON before validation, and
must find every secret field the typed source holds (so that nothing registers them a second time)."""

from __future__ import annotations

from typing import Any

from k0sctl_resource.config.models import SECRET_PATHS, parse_source, secrets_in

RAW: dict[str, Any] = {
    # not a key; the header is split so that no tracked file looks like it holds one
    "ssh_private_key": "-----BEGIN OPENSSH " "PRIVATE KEY-----\nnode-key-material\n-----END OPENSSH PRIVATE KEY-----\n",
    "backup": {"uri": "https://ci:p%40ss-in-url@git.example.test/r.git", "private_key": "backup-key-material",
               "password": "pw-123456"},
    "encryption": {"identities": "AGE-SECRET-KEY-1XYZ", "passphrase": None},
}


def test_every_secret_of_the_typed_source_is_found_in_the_raw_request() -> None:
    source = parse_source(RAW)
    found = secrets_in(RAW)
    for path in SECRET_PATHS:
        value: Any = source
        for name in path:
            value = getattr(value, name, None) if value is not None else None
        if value:
            assert value in found, path


def test_any_shape_is_read_without_failing() -> None:
    assert secrets_in(None) == []
    assert secrets_in(["x"]) == []
    assert secrets_in({"backup": "not a mapping", "ssh_private_key": 3}) == []
    assert secrets_in({"backup": {"uri": "https://ci:p%40ss-word@git.example.test/r.git"}}) == ["p@ss-word"]
