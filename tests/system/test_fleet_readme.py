"""The README's fleet section, followed as written: its clusters.yml is pipeline/clusters.example.yml, which
fleet-vars turns into valid pipelines; its fleet-status commands, run by sh on backup branches served
over SSH (only the example's repository address and host keys replaced by the test server's), print the
table it shows."""

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


def readme_block(marker: str) -> tuple[str, str]:
    """The fenced block after the `<!-- fleet: <marker>` comment, and the text after it."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- fleet: {re.escape(marker)}[^\n]*-->\n```\w*\n(.*?)```\n(.*)", text, re.DOTALL)
    assert match, f"README.md has no fleet block {marker!r}"
    return match.group(1), match.group(2)


def test_the_readmes_clusters_yml_is_the_example_file() -> None:
    block, _ = readme_block("clusters.yml")
    assert block == EXAMPLE.read_text(encoding="utf-8")


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


@pytest.mark.sshd
def test_the_readmes_fleet_status_example_runs_as_written(tmp_path: Path, sshd_server: SshServer) -> None:
    repo = bare_repo(tmp_path / "backups.git")
    build_fleet(repo, [ClusterSpec("prod-eu", backup_age=timedelta(hours=5)),
                       ClusterSpec("prod-us", backup_age=timedelta(hours=9))])
    work = tmp_path / "ops"
    (work / ".ssh").mkdir(parents=True)
    clusters = EXAMPLE.read_text(encoding="utf-8").replace(EXAMPLE_URI, sshd_server.url(repo))
    clusters = HOST_KEY_LINE.sub(lambda m: m.group(1) + sshd_server.known_hosts, clusters)
    (work / "clusters.yml").write_text(clusters, encoding="utf-8")
    key = work / ".ssh" / "k0s-backups-read"
    key.write_text(sshd_server.client_key, encoding="utf-8")
    key.chmod(0o600)

    script, after = readme_block("fleet-status example")
    env = {"HOME": str(work), "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # As typed into a shell: every line runs (the first fleet-status exits 1, prod-us being stale as in the
    # README's table), and so does the last, whose exit code sh returns.
    table = subprocess.run(["sh", "-c", script], cwd=work, env=env, capture_output=True, text=True, timeout=240,
                           check=False)
    assert table.returncode == 1, table.stderr
    shown = after.split("```\n", 2)[1].splitlines()  # the README's sample output
    got = table.stdout.splitlines()
    assert got[0] == shown[0], "the README shows today's header"
    assert got[1].split()[:2] == ["prod-eu", "ok"] and got[2].split()[:2] == ["prod-us", "STALE"]
    assert got[2].endswith("newest backup older than max_age (8h)") and shown[2].endswith(got[2].split("  ")[-1])
    assert got[-1] == shown[-1]
    report = json.loads((work / "fleet-status.json").read_text(encoding="utf-8"))
    assert [(c["name"], c["status"]) for c in report["clusters"]] == [("prod-eu", "ok"), ("prod-us", "stale")]
