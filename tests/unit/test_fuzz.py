"""Fuzzing with a fixed budget (docs/security.md: every failure a user can cause has its own
message): the request parser, the k0sctl.yaml loader and the backup URL parser. Every input ends in a
valid answer or in one clean `ResourceError` line; any other exception (a traceback, "internal error")
fails the test and hypothesis prints the smallest input that does it.

The budget is fixed and the run reproducible: `derandomize=True` (examples derived from the test
itself, no random seed), no example database, a bounded number of examples per test (a few seconds in
all; `K0SCTL_FUZZ_EXAMPLES` raises it for a longer local run).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from k0sctl_resource.runtime.errors import ResourceError

EXAMPLES = int(os.environ.get("K0SCTL_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def clean(call: Callable[[], Any]) -> Any:
    """Run `call`; a ResourceError must be one non-empty line, anything else is a bug."""
    try:
        return call()
    except ResourceError as exc:
        message = exc.message
        assert message and "\n" not in message and "\r" not in message, repr(message)
        assert "internal error" not in message
        assert message.encode("utf-8")  # printable as UTF-8 (no lone surrogate of the input in it)
        return None


# -- strategies ------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=40)  # surrogates too
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT | st.sampled_from(
    ["apply", "reset", "backup", "init", "ping", "45m", "-1s", "1h30m", "config/k0sctl.yaml", "../../etc",
     "/abs", "required", "auto", "age1qqq", "ssh-ed25519 AAAA", "file:///r.git", "k0sctl-backup"])
KEYS = ["source", "params", "version", "ref", "command", "config", "k0sctl", "timeout", "debug", "env", "backup",
        "uri", "branch", "path", "keep", "encryption", "recipients", "identities", "passphrase", "plaintext",
        "restore_from", "restore", "count", "extra_ports", "confirm", "force", "decrypt", "skip_download",
        "ssh_private_key", "ssh_known_hosts", "concurrency", "private_key", "git_user"]
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(TEXT | st.sampled_from(KEYS), inner, max_size=5), max_leaves=20)


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """Shaped like Concourse's requests, with hostile values in the leaves."""
    source = draw(st.dictionaries(st.sampled_from(["k0sctl", "backup", "encryption", "ssh_known_hosts", "x"]),
                                  JSON_VALUES, max_size=3))
    params = draw(st.dictionaries(st.sampled_from(KEYS), JSON_VALUES, max_size=4))
    if draw(st.booleans()):
        params["command"] = draw(st.sampled_from(["apply", "reset", "backup", "init", "ping", "nope"]))
    request: dict[str, Any] = {"source": source, "params": params}
    if draw(st.booleans()):
        request["version"] = draw(st.dictionaries(st.sampled_from(["ref", "x"]), JSON_VALUES, max_size=2))
    return request


# -- the request parser ----------------------------------------------------------------------------

def _parse_all(text: str) -> None:
    from k0sctl_resource.concourse.protocol import parse_json
    from k0sctl_resource.concourse.requests import parse_check, parse_get
    from k0sctl_resource.steps.put import parse as parse_put

    value = clean(lambda: parse_json(text))
    if value is None:
        return
    for parse in (parse_check, parse_get, parse_put):
        clean(lambda parse=parse: parse(value))  # type: ignore[misc]


@FUZZ
@given(requests())
def test_request_parser_on_shaped_requests(request: dict[str, Any]) -> None:
    _parse_all(json.dumps(request))  # ensure_ascii: lone surrogates arrive as \ud800 escapes


@FUZZ
@given(st.text(alphabet=st.sampled_from(list('{}[]",:0123456789.eE-+ \\u/trufalsn')), max_size=60) | TEXT)
def test_request_parser_on_raw_text(text: str) -> None:
    _parse_all(text)


# -- the k0sctl.yaml loader ------------------------------------------------------------------------

YAML_FRAGMENTS = ["apiVersion: k0sctl.k0sproject.io/v1beta1\n", "kind: Cluster\n", "metadata:\n", "  name: ",
                  "spec:\n", "  hosts:\n", "  - role: controller\n", "    ssh:\n", "      address: ",
                  "      port: ", "    openSSH: {address: h}\n", "    localhost: {enabled: true}\n",
                  "    winRM: {address: w, useHTTPS: true}\n", "  k0s: {version: ", "}\n", "&a ", "*a", "&b ",
                  "*b", "<<: *a\n", "[", "]", "{", "}", ", ", ": ", "- ", "\n", "  ", "\t", "---\n", "...\n",
                  "!!python/object:os.system ", "!!binary ", "!!timestamp ", "!!set ", "? ", "|\n", ">-\n",
                  '"\\ud800"', '"\\x00"', "'quoted'", "1" * 5000, "0x1F", "1e999", ".nan", "~", "null",
                  "true", "192.0.2.1", "65536", "-1", "#", "%YAML 1.1\n", "%TAG ! x\n", "!x "]


@FUZZ
@given(st.lists(st.sampled_from(YAML_FRAGMENTS) | TEXT, max_size=25).map("".join))
@example("\x1f")  # found by this test: the YAML reader refuses control characters in its constructor
@example("!!timestamp ")  # found by this test: PyYAML's constructor fails with AttributeError
def test_k0sctl_yaml_loader(text: str) -> None:
    from k0sctl_resource.config.cluster import parse_cluster

    config = clean(lambda: parse_cluster(text, Path("config/k0sctl.yaml")))
    if config is not None:
        assert isinstance(config.name, str) and config.name.encode("utf-8")
        for host in config.hosts:
            assert host.endpoint is None or 0 < host.endpoint.port < 65536


# -- the backup URL parser -------------------------------------------------------------------------

URL_FRAGMENTS = ["ssh://", "https://", "http://", "file://", "git://", "ext::", "fd::", "name::", "git+ssh://",
                 "--upload-pack=touch pwned", "-", "git@", "user:pa%40ss@", "@", "host", "[::1]", ":", ":22",
                 "/", "//", "path/repo.git", "..", "\n", " ", "\x00", "%00", "?q=1", "#frag", "é", "\\"]


@FUZZ
@given(st.lists(st.sampled_from(URL_FRAGMENTS) | TEXT, max_size=8).map("".join))
@example("ssh://[")  # found by this test: urlsplit's ValueError escaped
def test_backup_url_parser(uri: str) -> None:
    from k0sctl_resource.gitstore.auth import RemoteUrl

    parsed = clean(lambda: RemoteUrl.parse(uri))
    if parsed is not None:
        assert isinstance(parsed, RemoteUrl) and isinstance(parsed.url, str)
