"""The Concourse protocol at the edge: malformed and hostile requests, stdout discipline, build env."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.support import PINNED, ROOT
from tests.support.fixtures import Double
from tests.support.resource import Resource

SRC: dict[str, Any] = {"source": {}}
BACKUP = {"uri": "file:///nonexistent/backup.git"}

# (name, step, request, a fragment the one error line must contain)
HOSTILE: list[tuple[str, str, Any, str]] = [
    ("not json", "out", "this is not json", "not valid JSON"),
    ("empty stdin", "out", "", "stdin is empty"),
    ("json array", "out", "[]", "expected a JSON object"),
    ("json string", "check", '"source"', "expected a JSON object"),
    ("json number", "in", "42", "expected a JSON object"),
    ("missing source", "out", {"params": {"command": "ping"}}, "request.source: required"),
    ("unknown top-level key", "out", {"source": {}, "params": {"command": "ping"}, "sauce": 1}, "request.sauce"),
    ("source not a mapping", "check", {"source": "x"}, "source: expected a mapping"),
    ("unknown source key", "check", {"source": {"bakup": {}}}, "source.bakup: unknown key (did you mean backup?)"),
    ("unknown nested key", "check", {"source": {"backup": {"uri": "x", "brnach": "b"}}},
     "source.backup.brnach: unknown key (did you mean branch?)"),
    ("keep not an integer", "check", {"source": {"backup": {"uri": "x", "keep": "3"}}},
     "source.backup.keep: expected an integer"),
    ("keep a boolean", "check", {"source": {"backup": {"uri": "x", "keep": True}}},
     "source.backup.keep: expected an integer"),
    ("negative keep", "check", {"source": {"backup": {"uri": "x", "keep": -1}}}, "source.backup.keep"),
    ("backup without uri", "check", {"source": {"backup": {"branch": "b"}}}, "source.backup.uri: required"),
    ("bad branch name", "check", {"source": {"backup": {"uri": "x", "branch": "a..b"}}}, "source.backup.branch"),
    ("path escapes repo", "check", {"source": {"backup": {"uri": "x", "path": "../up"}}}, "source.backup.path"),
    ("debug not a bool", "check", {"source": {"k0sctl": {"debug": "yes"}}}, "source.k0sctl.debug: expected a boolean"),
    ("bad duration", "out", {"source": {"k0sctl": {"timeout": "soon"}}, "params": {"command": "ping"}},
     "source.k0sctl.timeout"),
    ("env not strings", "out", {"source": {"k0sctl": {"env": {"HTTP_PROXY": 8080}}}, "params": {"command": "ping"}},
     "source.k0sctl.env.HTTP_PROXY: expected a string"),
    ("recipient not a key", "check", {"source": {"encryption": {"recipients": ["bob"]}}},
     "source.encryption.recipients[0]"),
    ("recipients not a list", "check", {"source": {"encryption": {"recipients": "age1abc"}}},
     "source.encryption.recipients: expected a list"),
    ("version not a mapping", "check", {"source": {}, "version": "abc"}, "version: expected a mapping"),
    ("version ref not a sha", "in", {"source": {}, "version": {"ref": "; rm -rf /"}}, "version.ref"),
    ("get without version", "in", {"source": {}}, "request.version: required"),
    ("unknown get param", "in", {"source": {}, "version": {"ref": "none"}, "params": {"skip": True}},
     "params.skip: unknown key"),
    ("missing command", "out", {"source": {}, "params": {}}, "params.command: required"),
    ("no params at all", "out", {"source": {}}, "params.command: required"),
    ("unknown command", "out", {"source": {}, "params": {"command": "destroy"}}, "params.command: must be one of"),
    ("param of another command", "out", {"source": {}, "params": {"command": "apply", "confirm": "x"}},
     "params.confirm: not a parameter of command apply (it belongs to reset and drill)"),
    ("misspelt param", "out", {"source": {}, "params": {"command": "apply", "dryrun": True}},
     "params.dryrun: unknown key (did you mean dry_run?)"),
    ("config escapes dir", "out", {"source": {}, "params": {"command": "ping", "config": "../../etc/passwd"}},
     "params.config: '../../etc/passwd' points outside"),
    ("config absolute", "out", {"source": {}, "params": {"command": "ping", "config": "/etc/passwd"}},
     "params.config: must be relative"),
    ("restore_from escapes dir", "out",
     {"source": {}, "params": {"command": "apply", "restore_from": "config/../../../etc/shadow"}},
     "params.restore_from"),
    ("config missing", "out", {"source": {}, "params": {"command": "ping", "config": "nope/k0sctl.yaml"}},
     "k0sctl config not found"),
    ("huge string", "check", {"source": {"ssh_known_hosts": "x" * 300_000}}, "source.ssh_known_hosts: string too long"),
    ("huge list", "out", {"source": {}, "params": {"command": "ping", "extra_ports": [1] * 5000}},
     "params.extra_ports: too many items"),
    ("port out of range", "out", {"source": {}, "params": {"command": "ping", "extra_ports": [70000]}},
     "params.extra_ports[0]"),
    ("deeply nested", "out", "[" * 100_000 + "]" * 100_000, "request"),
    ("nul in string", "out", {"source": {}, "params": {"command": "ping", "config": "a\x00b"}}, "params.config"),
    ("restore required without archive", "out", {"source": {}, "params": {"command": "apply", "restore": "required"}},
     "params.restore: 'required' needs restore_from"),
    ("restore mode typo", "out", {"source": {}, "params": {"command": "apply", "restore": "always"}},
     "params.restore: must be one of auto, required"),
    ("passphrase and recipients", "check",
     {"source": {"encryption": {"passphrase": "p", "recipients": ["age1x"]}}}, "not both"),
    ("short passphrase", "out", {"source": {"encryption": {"passphrase": "k0s"}}, "params": {"command": "ping"}},
     "source.encryption.passphrase: must be at least 8 characters"),
    ("short password", "check", {"source": {"backup": {"uri": "https://git.example.test/r.git", "password": "xyz"}}},
     "source.backup.password: must be at least 8 characters"),
    ("short password in the URL", "out",
     {"source": {"backup": {"uri": "https://ci:e@git.example.test/r.git"}}, "params": {"command": "apply"}},
     "source.backup.uri: the password in the URL: must be at least 8 characters"),
    ("short ssh key", "out", {"source": {"ssh_private_key": "k"}, "params": {"command": "apply"}},
     "source.ssh_private_key: must be at least 8 characters"),
]


@pytest.mark.parametrize(("name", "step", "request_", "fragment"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_bad_request_gives_one_clear_error(resource: Resource, workdir: Path, double: Double, name: str, step: str,
                                           request_: Any, fragment: str) -> None:
    args = [step] if step == "check" else [step, str(workdir)]
    run = resource.step(args, request_)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert run.stdout == "", "stdout must stay empty on failure"
    assert len(run.error_lines) == 1, run.stderr
    assert fragment in run.error_lines[0], run.error_lines[0]
    assert len(run.error_lines[0]) < 400
    assert double.commands() == [], "nothing may reach k0sctl on a bad request"


def test_hostile_table_is_large_enough() -> None:
    assert len(HOSTILE) >= 25


def test_traceback_only_with_debug(resource: Resource, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # An unreadable config file (a directory) is an unexpected failure path inside put.
    (workdir / "config" / "k0sctl.yaml").unlink()
    (workdir / "config" / "k0sctl.yaml").mkdir()
    for debug, shown in ((False, False), (True, True)):
        run = resource.put({"source": {"k0sctl": {"debug": debug}}, "params": {"command": "ping"}}, workdir)
        assert run.returncode != 0
        assert ("Traceback" in run.stderr) is shown
        assert len(run.error_lines) == 1


def test_child_output_never_reaches_stdout(resource: Resource, workdir: Path, double: Double) -> None:
    """k0sctl writes its whole screen log to stdout; none of it may land in the answer."""
    double.set(running=True)
    run = resource.put({"source": {}, "params": {"command": "apply"}}, workdir).expect_ok()
    assert "Running phase" in run.stderr
    assert set(run.answer) == {"version", "metadata"}
    assert run.answer["version"] == {"ref": "none"}
    assert json.loads(run.stdout) == run.answer  # exactly one JSON value, nothing else


def test_metadata_are_name_value_strings(resource: Resource, workdir: Path, double: Double) -> None:
    double.set(running=True)
    run = resource.put({"source": {}, "params": {"command": "apply"}}, workdir).expect_ok()
    for item in run.answer["metadata"]:
        assert set(item) == {"name", "value"}
        assert isinstance(item["value"], str)
        assert item["name"].isidentifier()
    meta = run.metadata
    assert meta["command"] == "apply"
    assert meta["cluster"] == "prod-eu"
    assert meta["k0sctl_version"].startswith("v0.")
    assert float(meta["duration_s"]) >= 0


def test_build_variables_used_when_present(resource: Resource, workdir: Path, double: Double) -> None:
    from tests.support.resource import BUILD_ENV

    double.set(running=True)
    with_env = resource.put({"source": {}, "params": {"command": "apply"}}, workdir, env=BUILD_ENV).expect_ok()
    assert with_env.metadata["build_url"] == BUILD_ENV["BUILD_URL"]
    assert "main/k0s/install #42" in with_env.stderr
    # Concourse before v8 has no BUILD_URL: it is derived from ATC_EXTERNAL_URL and BUILD_ID.
    old = {k: v for k, v in BUILD_ENV.items() if k != "BUILD_URL"}
    derived = resource.put({"source": {}, "params": {"command": "apply"}}, workdir, env=old).expect_ok()
    assert derived.metadata["build_url"] == "https://ci.example.test/builds/1234"
    # One-off builds and no build variables at all: still fine.
    bare = resource.put({"source": {}, "params": {"command": "apply"}}, workdir).expect_ok()
    assert "build_url" not in bare.metadata


def test_request_with_null_version_and_params(resource: Resource) -> None:
    """Concourse omits empty keys; some clients send nulls instead: both mean 'not given'."""
    run = resource.check({"source": {}, "version": None})
    assert run.returncode == 0, run.stderr
    assert run.answer == []


def test_cli_version(resource: Resource) -> None:
    import subprocess

    from tests.support.resource import executable

    out = subprocess.run([executable(), "--version"], capture_output=True, text=True, check=True,
                         env=resource.environment())
    assert out.stdout.startswith("k0sctl-resource ")
    assert f"k0sctl {PINNED}" in out.stdout


def test_assets_are_thin_wrappers() -> None:
    root = ROOT / "assets"
    for name, sub in (("check", "check"), ("in", "in"), ("out", "out")):
        path = root / name
        assert path.exists(), f"assets/{name} is missing"
        assert os.access(path, os.X_OK), f"assets/{name} is not executable"
        text = path.read_text()
        assert f"k0sctl-resource {sub}" in text
