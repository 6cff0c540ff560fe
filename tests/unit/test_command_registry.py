"""The put commands are listed in one place, `k0sctl_resource.commands.COMMANDS`; everything else that
names them (the params parser, the dispatch, `out --help`, README.md, the import contract that keeps
commands apart) is held equal to it here."""

from __future__ import annotations

import dataclasses
import inspect
import re
import tomllib

import pytest
from click.testing import CliRunner

from k0sctl_resource.cli.group import group
from k0sctl_resource.commands import COMMANDS, parse_params
from k0sctl_resource.runtime.errors import ResourceError
from tests.support import ROOT


def test_every_command_module_holds_its_params_and_run() -> None:
    for name, info in COMMANDS.items():
        assert info.module == f"k0sctl_resource.commands.{name}"
        fields = {f.name: f for f in dataclasses.fields(info.params())}
        assert fields["command"].default == name
        assert "config" in fields
        ctx, params, _cluster, directory = inspect.signature(info.run()).parameters  # as steps.put calls it
        assert (ctx, params, directory) == ("ctx", "params", "directory")


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_parser_builds_each_commands_params(name: str) -> None:
    raw = {"command": name, "config": "c/k0sctl.yaml"}
    if name == "drill":
        raw["restore_from"] = "cluster"
    if name == "verify":
        raw["max_age"] = "26h"
    params = parse_params(raw)
    assert isinstance(params, COMMANDS[name].params())
    assert params.command == name


def test_the_parser_names_the_registry_in_its_errors() -> None:
    with pytest.raises(ResourceError) as refused:
        parse_params({})
    assert refused.value.message == f"params.command: required (one of {', '.join(COMMANDS)})"


def test_readme_documents_exactly_the_registered_commands_in_order() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#### `command: (\w+)`$", readme, flags=re.MULTILINE)
    assert headings == list(COMMANDS)
    listed = re.search(r"`params.command` is required: (.+?)\. ", readme)
    assert listed is not None
    assert re.findall(r"`(\w+)`", listed.group(1)) == list(COMMANDS)


def test_out_help_lists_every_command_with_its_summary() -> None:
    shown = CliRunner().invoke(group, ["out", "--help"])
    assert shown.exit_code == 0, shown.output
    listed = [line.split(None, 1) for line in shown.output.splitlines() if line.startswith("    ")]
    assert [(name, summary.strip()) for name, summary in listed] == [
        (name, info.summary) for name, info in COMMANDS.items()]


def test_the_import_contract_keeps_exactly_the_registered_commands_apart() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    modules = [c["modules"] for c in contracts if c["type"] == "independence" and "commands" in c["name"].lower()]
    assert modules == [[info.module for info in COMMANDS.values()]]
