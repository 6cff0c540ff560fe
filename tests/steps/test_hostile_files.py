"""Hostile files are refused with one line (docs/security.md).

Every case runs the real step (or CLI tool) as Concourse would and checks: exit 1, exactly one
`error:` line that names the problem, no traceback, never "internal error", no k0sctl run, nothing
written (the put's directory and TMPDIR are as before), and no wait (a FIFO must not block).
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixtures import Double
from tests.support.resource import Resource, executable
from tests.support.tools import unavailable

BOMB = "a: &a [" + ",".join(['"' + "lol" * 12 + '"'] * 9) + "]\n" + "".join(
    f"{b}: &{b} [" + ",".join([f"*{a}"] * 9) + "]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True))
BOMB += "spec: {hosts: *i}\n"
# Under the bound in each document, over it in the file: the bound is the whole file's.
LAUGHS = "a: &a [" + ",".join(["1"] * 9) + "]\n" + "".join(
    f"{b}: &{b} [" + ",".join([f"*{a}"] * 9) + "]\n" for a, b in zip("abcd", "bcde", strict=True))
SPREAD_BOMB = ("apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: Cluster\nspec: {hosts: [{localhost: {}}]}\n"
               + ("---\napiVersion: v1\nkind: ConfigMap\n" + LAUGHS) * 2)


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def one_line_refusal(run: Any, *words: str) -> str:
    assert run.returncode == 1, run.stderr
    assert len(run.error_lines) == 1, run.stderr
    assert "Traceback" not in run.stderr and "internal error" not in run.stderr, run.stderr
    for word in words:
        assert word in run.error_lines[0], run.error_lines[0]
    return str(run.error_lines[0])


def put_config(resource: Resource, workdir: Path, double: Double, *words: str) -> str:
    before = listing(workdir)
    run = resource.put({"source": {}, "params": {"command": "apply"}}, workdir, timeout=30)
    line = one_line_refusal(run, *words)
    assert double.commands() == []
    assert listing(workdir) == before
    assert list(resource.tmpdir.iterdir()) == []
    return line


@pytest.fixture
def config(workdir: Path) -> Path:
    path = workdir / "config" / "k0sctl.yaml"
    path.unlink()
    return path


def test_fifo_config_does_not_block(resource: Resource, workdir: Path, double: Double, config: Path) -> None:
    os.mkfifo(config)
    put_config(resource, workdir, double, "is a FIFO, not a regular file")


def test_device_config(resource: Resource, workdir: Path, double: Double, config: Path) -> None:
    try:
        os.mknod(config, 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero: never ends
    except PermissionError:
        unavailable("mknod is not permitted here (no CAP_MKNOD)")
    put_config(resource, workdir, double, "is a device")


def test_directory_config(resource: Resource, workdir: Path, double: Double, config: Path) -> None:
    config.mkdir()
    put_config(resource, workdir, double, "is a directory")


def test_symlink_loop_config(resource: Resource, workdir: Path, double: Double, config: Path) -> None:
    config.symlink_to("other.yaml")
    (config.parent / "other.yaml").symlink_to("k0sctl.yaml")
    put_config(resource, workdir, double, "symbolic link loop")


@pytest.mark.parametrize(("text", "words"), [
    (BOMB, ("alias bomb",)),
    ("a: " + "[" * 5000 + "]" * 5000 + "\n", ("nested deeper than",)),
    ("a: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n", ("nested deeper than",)),
    ("".join(" " * i + "- \n" for i in range(0, 1000, 2)), ("nested deeper than",)),
    ("metadata: {name: x}\nspec: {k0s: {version: " + "7" * 5000 + "}}\n", ("more digits than Python converts",)),
    ('metadata: {name: "\\ud800"}\n', ("lone surrogate",)),
    ("a: &x [*x]\n", ("contains it",)),
    ("apiVersion: k0sctl.k0sproject.io/v1beta1\nkind: [" + ",".join(["1"] * 9) + "]\n",
     ("kind must be a string, got a list",)),
    (SPREAD_BOMB, ("alias bomb",)),
    ("apiVersion: v1\nkind: Namespace\n---\nkind: Cluster\n", ("document 2: apiVersion is missing",)),
])
def test_hostile_yaml(resource: Resource, workdir: Path, double: Double, config: Path, text: str,
                      words: tuple[str, ...]) -> None:
    if text is BOMB:
        assert 500 <= len(BOMB.encode()) <= 800  # the 700-byte bomb: 9^9 strings once expanded
    config.write_text(text, encoding="utf-8")
    put_config(resource, workdir, double, str(config), *words)


def test_config_that_is_not_utf8(resource: Resource, workdir: Path, double: Double, config: Path) -> None:
    config.write_bytes(b"metadata:\n  name: \xed\xa0\x80\n")  # a UTF-8-encoded surrogate is not UTF-8
    put_config(resource, workdir, double, "not UTF-8 text")


def test_aliases_that_stay_small_are_fine(tmp_path: Path) -> None:
    from k0sctl_resource.config.cluster import load_cluster

    path = tmp_path / "k0sctl.yaml"
    path.write_text("""apiVersion: k0sctl.k0sproject.io/v1beta1
kind: Cluster
metadata: {name: anchors}
spec:
  hosts:
  - role: controller
    ssh: &ssh {address: 192.0.2.10, user: root, port: 2222}
  - role: worker
    ssh: {<<: *ssh, address: 192.0.2.11}
""", encoding="utf-8")
    cluster = load_cluster(path)
    assert [(h.endpoint.address, h.endpoint.port) for h in cluster.hosts if h.endpoint] == [
        ("192.0.2.10", 2222), ("192.0.2.11", 2222)]


# -- the JSON request ------------------------------------------------------------------------------

REQUESTS = [
    ("[" * 5000 + "]" * 5000, "nested too deeply"),
    ('{"source": {}, "params": {"command": "ping", "count": ' + "9" * 5000 + "}}", "more digits than Python"),
    ('{"source": {"k0sctl": {"env": {"A": "\\ud800"}}}, "params": {"command": "apply"}}', "lone surrogate"),
    ('{"source": {}, "params": {"command": "\\udfff"}}', "lone surrogate"),
    (b'{"source": {}, "params": {"command": "\xff"}}', "not UTF-8"),
]


@pytest.mark.parametrize(("request_text", "words"), REQUESTS)
@pytest.mark.parametrize("step", ["check", "in", "out"])
def test_hostile_request(resource: Resource, workdir: Path, double: Double, tmp_path: Path,
                         request_text: str | bytes, words: str, step: str) -> None:
    args = {"check": ["check"], "in": ["in", str(tmp_path / "get")], "out": ["out", str(workdir)]}[step]
    before = listing(workdir)
    run = resource.step(args, request_text, timeout=30)
    one_line_refusal(run, "request", words)
    assert double.commands() == [] and listing(workdir) == before
    assert not (tmp_path / "get").exists() or list((tmp_path / "get").iterdir()) == []


# -- the CLI tools: no put directory around the path -----------------------------------------------

@pytest.mark.parametrize("tool", ["ping", "kubeconfig"])
def test_cli_tools_refuse_devices_and_fifos(resource: Resource, tmp_path: Path, tool: str) -> None:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    for path, words in ((fifo, "is a FIFO"), (Path("/dev/zero"), "is a device")):
        proc = subprocess.run([executable(), tool, "-c", str(path)], capture_output=True, text=True, timeout=30,
                              env=resource.environment(), check=False)
        assert proc.returncode == 1, proc.stderr
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1 and words in errors[0], proc.stderr
        assert "Traceback" not in proc.stderr
