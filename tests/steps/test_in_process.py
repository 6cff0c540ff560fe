"""The steps in-process (`tests.support.in_process`): the same answers, messages and exit codes as the
console script, which the subprocess tests (`resource`) hold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.backup_support import backup_source, bare_repo, put_request
from tests.support.in_process import InProcess
from tests.support.resource import Resource


def test_a_step_answers_the_same_in_process_and_as_a_process(in_process: InProcess, resource: Resource,
                                                             tmp_path: Path) -> None:
    requests: list[Any] = [{"source": {}}, {"source": {"backup": {"uri": ""}}}, {"source": {}, "params": {}},
                            "not json", {"source": {"bakup": {}}}]
    for request in requests:
        inside, outside = in_process.check(request), resource.check(request)
        assert (inside.returncode, inside.stdout, inside.error_lines) == \
            (outside.returncode, outside.stdout, outside.error_lines), request
    get_request = {"source": {}, "version": {"ref": "none"}}
    inside = in_process.get(get_request, tmp_path / "in")
    outside = resource.get(get_request, tmp_path / "out")
    assert inside.expect_ok().answer == outside.expect_ok().answer == {
        "version": {"ref": "none"}, "metadata": [{"name": "kind", "value": "none"}]}
    assert (tmp_path / "in" / "metadata.json").read_bytes() == (tmp_path / "out" / "metadata.json").read_bytes()


def test_init_check_get_in_process(in_process: InProcess, workdir: Path, tmp_path: Path) -> None:
    repo = bare_repo(tmp_path / "backups.git")
    source = backup_source(f"file://{repo}")
    assert in_process.check({"source": source}).expect_ok().answer == []
    put = in_process.put(put_request(source, "init"), workdir).expect_ok()
    version = put.answer["version"]
    assert put.metadata["command"] == "init" and put.metadata["created"] == "true"
    assert in_process.check({"source": source, "version": None}).expect_ok().answer == [version]
    got = in_process.get({"source": source, "version": version}, tmp_path / "get").expect_ok()
    assert got.metadata["kind"] == "init" and "file" not in got.metadata


def test_a_failure_in_process_is_one_error_line_and_the_exit_code(in_process: InProcess, workdir: Path) -> None:
    run = in_process.put({"source": {}, "params": {"command": "rest"}}, workdir)
    assert run.returncode == 1 and run.stdout == ""
    assert run.error_lines == ["error: params.command: must be one of apply, reset, backup, init, ping, drill, "
                               "verify, prune, got 'rest' (did you mean reset?)"]
