"""The README's fleet section and docs/fleet.md, followed as written: the README's fleet-status commands,
run by sh on its clusters.yml with backup branches served over SSH (only the example's repository address
replaced by the test server's), print the table docs/fleet.md shows; docs/fleet.md's clusters.yml is
pipeline/clusters.example.yml, which fleet-vars turns into valid pipelines, and its own fleet-status
example runs on it too (host keys replaced by the test server's)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT
from tests.support.backup_support import bare_repo
from tests.support.fleet_support import ClusterSpec, build_fleet
from tests.support.sshd import SshServer
from tests.system.test_pipeline import pipeline, substitute, validate_requests

EXAMPLE = ROOT / "pipeline" / "clusters.example.yml"
EXAMPLE_URI = "git@git.example.com:platform/k0s-backups.git"
HOST_KEY_LINE = re.compile(r"^(\s+)192\.0\.2\.\d+ ssh-ed25519 \S+$", re.MULTILINE)


README = ROOT / "README.md"
DOC = ROOT / "docs" / "fleet.md"


def block(marker: str, page: Path = README) -> tuple[str, str]:
    """The fenced block of `page` after `<!-- fleet: <marker>` (docs/fleet.md), or in README.md the first `yaml`
    (marker `clusters.yml`) or `sh` block of its fleet section; and the text after it."""
    text = page.read_text(encoding="utf-8")
    if page == README:
        lang = "yaml" if marker == "clusters.yml" else "sh"
        start = r"## A fleet of clusters\n.*?"
    else:
        lang, start = r"\w*", rf"<!-- fleet: {re.escape(marker)}[^\n]*-->\n"
    match = re.search(rf"{start}```{lang}\n(.*?)```\n(.*)", text, re.DOTALL)
    assert match, f"{page.name} has no fleet block {marker!r}"
    return match.group(1), match.group(2)


def test_the_docs_clusters_yml_is_the_example_file() -> None:
    assert block("clusters.yml", DOC)[0] == EXAMPLE.read_text(encoding="utf-8")


def test_fleet_vars_makes_a_valid_pipeline_of_every_example_cluster(tmp_path: Path) -> None:
    proc = subprocess.run([str(Path(sys.executable).parent / "k0sctl-resource"), "fleet-vars", "-f", str(EXAMPLE),
                           "-o", str(tmp_path), "--pipeline", str(ROOT / "pipeline" / "pipeline.yml")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    names = json.loads((tmp_path / "clusters.json").read_text(encoding="utf-8"))
    assert names == ["prod-eu", "prod-us"]
    for name in names:
        variables = yaml.safe_load((tmp_path / "vars" / f"{name}.yml").read_text(encoding="utf-8"))
        assert validate_requests(substitute(pipeline(), variables)) >= {"apply", "backup", "drill"}
        assert variables["cluster_ssh_private_key"] == f"(({name}/cluster_ssh_private_key))"
        assert variables["config_repo_private_key"] == "((fleet/config_repo_private_key))"


def run_example(page: Path, clusters: str, server: SshServer, repo: Path, work: Path
                ) -> subprocess.CompletedProcess[str]:
    """`page`'s fleet-status example, run by sh in `work` on `clusters` (the example's address replaced by
    `server`'s), with the key where the example says."""
    (work / ".ssh").mkdir(parents=True)
    (work / "clusters.yml").write_text(clusters.replace(EXAMPLE_URI, server.url(repo)), encoding="utf-8")
    key = work / ".ssh" / "k0s-backups-read"
    key.write_text(server.client_key, encoding="utf-8")
    key.chmod(0o600)
    script, _ = block("fleet-status example", page)
    env = {"HOME": str(work), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # As typed into a shell: every line runs, and sh returns the exit code of the last one.
    return subprocess.run(["sh", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=240,
                          check=False)


@pytest.fixture
def fleet_repo(tmp_path: Path) -> Path:
    """prod-eu backed up 5 hours ago, prod-us 9 hours ago (stale with its max_age of 8h), both drilled."""
    repo = bare_repo(tmp_path / "backups.git")
    build_fleet(repo, [ClusterSpec("prod-eu", backup_age=timedelta(hours=5)),
                       ClusterSpec("prod-us", backup_age=timedelta(hours=9))])
    return repo


@pytest.mark.sshd
def test_the_readmes_fleet_status_example_runs_as_written(tmp_path: Path, fleet_repo: Path,
                                                          sshd_server: SshServer) -> None:
    clusters, _ = block("clusters.yml")
    proc = run_example(README, clusters, sshd_server, fleet_repo, tmp_path / "ops")
    assert proc.returncode == 1, proc.stderr  # prod-us is stale
    got = proc.stdout.splitlines()
    shown = block("fleet-status example", DOC)[1].split("```\n", 2)[1].splitlines()  # docs/fleet.md's table
    assert got[0] == shown[0], "docs/fleet.md shows today's header"
    assert got[1].split()[:2] == ["prod-eu", "ok"] and got[2].split()[:2] == ["prod-us", "STALE"]
    assert got[2].endswith("newest backup older than max_age (8h)") and shown[2].endswith(got[2].split("  ")[-1])
    assert got[-1] == shown[-1]


@pytest.mark.sshd
def test_the_docs_fleet_status_example_runs_on_the_complete_example(tmp_path: Path, fleet_repo: Path,
                                                                    sshd_server: SshServer) -> None:
    clusters = HOST_KEY_LINE.sub(lambda m: m.group(1) + sshd_server.known_hosts, EXAMPLE.read_text(encoding="utf-8"))
    work = tmp_path / "ops"
    proc = run_example(DOC, clusters, sshd_server, fleet_repo, work)
    assert proc.returncode == 1, proc.stderr
    report = json.loads((work / "fleet-status.json").read_text(encoding="utf-8"))
    assert [(c["name"], c["status"]) for c in report["clusters"]] == [("prod-eu", "ok"), ("prod-us", "stale")]
