"""The secret scanner over every scenario: no secret value on stdout, stderr, in metadata, in a file left
behind (home, TMPDIR, the build directory) or anywhere in the backup repository's history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import age_key, bare_repo, ssh_key
from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.resource import Resource, assert_no_secret_in_files, git_history_text

PASSWORD = "correct-horse-battery-staple-7d1f"
PROXY_PASSWORD = "pr0xy-s3cret-9a2b7c"


@pytest.fixture
def world(tmp_path: Path, resource: Resource, workdir: Path, double: Double) -> dict[str, Any]:
    keys = tmp_path / "keys"
    keys.mkdir()
    node_key = ssh_key(keys, "node")
    backup_key = ssh_key(keys, "backup")
    age = age_key(keys)
    repo = bare_repo(tmp_path / "backups.git")
    source = {
        "ssh_private_key": node_key.private,
        "backup": {"uri": f"file://{repo}", "private_key": backup_key.private, "username": "ci",
                   "password": PASSWORD},
        "encryption": {"recipients": [age.recipient], "identities": age.identity},
        "k0sctl": {"env": {"HTTPS_PROXY": f"http://proxy:{PROXY_PASSWORD}@proxy.example.test:3128"}},
    }
    resource.secrets += [node_key.private, backup_key.private, age.identity, PASSWORD, PROXY_PASSWORD]
    double.set(running=True, echo_env=["HTTPS_PROXY", "SSH_AUTH_SOCK"])
    return {"source": source, "repo": repo}


def scan_everything(resource: Resource, runs: list[Any], workdir: Path, repo: Path) -> None:
    for run in runs:
        for item in (run.answer or {}).get("metadata", []) if isinstance(run.answer, dict) else []:
            for secret in resource.secrets:
                assert secret.strip() not in item["value"]
    assert_no_secret_in_files(workdir, resource.secrets)
    history = git_history_text(repo)
    for secret in resource.secrets:
        for line in [secret.strip(), *secret.strip().splitlines()[1:-1]]:
            if len(line) >= 16:
                assert line not in history, "a secret reached the backup repository"


def test_every_command_keeps_secrets(resource: Resource, workdir: Path, double: Double,
                                     world: dict[str, Any], tmp_path: Path) -> None:
    source, repo = world["source"], world["repo"]

    def put(**params: Any) -> Any:
        return resource.put({"source": source, "params": params}, workdir)

    runs = [
        put(command="init").expect_ok(),
        put(command="backup").expect_ok(),
        put(command="apply", dry_run=True).expect_ok(),
        put(command="apply", backup_first=True).expect_ok(),
        put(command="ping", count=1, timeout=0.2, traceroute=False, fail_on_unreachable=False).expect_ok(),
    ]
    check = resource.check({"source": source}).expect_ok()
    runs.append(check)
    dest = tmp_path / "get"
    runs.append(resource.get({"source": source, "version": check.answer[-1], "params": {"decrypt": True}},
                             dest).expect_ok())
    (workdir / "cluster").mkdir()
    for name in ("backup.tar.gz", "metadata.json"):
        (workdir / "cluster" / name).write_bytes((dest / name).read_bytes())
    runs.append(put(command="reset", confirm=CLUSTER_NAME).expect_ok())
    runs.append(put(command="apply", restore_from="cluster", restore="required").expect_ok())
    assert not any("Traceback" in run.stderr for run in runs)
    assert "proxy:***@proxy.example.test" in runs[2].stderr  # k0sctl printed it, the resource masked it
    scan_everything(resource, runs, workdir, repo)


def test_failures_keep_secrets(resource: Resource, workdir: Path, double: Double, world: dict[str, Any]) -> None:
    source, repo = world["source"], world["repo"]
    runs = []
    double.set(fail={"apply": f"dial tcp: proxy said no to http://proxy:{PROXY_PASSWORD}@proxy.example.test"})
    runs.append(resource.put({"source": source, "params": {"command": "apply"}}, workdir))
    double.set(running=False, fail={})
    runs.append(resource.put({"source": source, "params": {"command": "backup"}}, workdir))
    bad = json.loads(json.dumps(source))
    bad["backup"]["uri"] = f"https://ci:{PASSWORD}@git.invalid.example/backups.git"
    runs.append(resource.check({"source": bad}))
    runs.append(resource.put({"source": {**source, "k0sctl": {"debug": True}},
                              "params": {"command": "reset", "confirm": "not-the-name"}}, workdir))
    assert all(run.returncode != 0 for run in runs)
    assert all(len(run.error_lines) == 1 for run in runs), [r.stderr for r in runs]
    assert "Traceback" in runs[-1].stderr  # k0sctl.debug shows one, and it is scanned like the rest
    scan_everything(resource, runs, workdir, repo)
