"""pipeline/fleet.yml, the fleet's parent pipeline: its shape, and its fleet-vars task run for real on a
config repository, whose vars files make every cluster's instance of pipeline/pipeline.yml pass the
checks of the sample pipeline (every var defined, every get and put accepted by the resource); the guard
against removing a cluster by accident. (fly validation and the generic structure checks of fleet.yml
are in test_pipeline.py.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from k0sctl_resource.commands import COMMANDS
from k0sctl_resource.config.fleet import SECRET_VARS
from k0sctl_resource.fleet.status import ENV_PREFIX
from tests.support import ROOT
from tests.system.test_pipeline import (
    FLEET,
    PIPELINE,
    check_structure,
    example_vars,
    job_steps,
    pipeline,
    substitute,
    task_scripts,
    validate_requests,
)

DERIVED = {"cluster_name", "config_path", "scratch_config_path", "scratch_cluster_name", "backup_branch",
           "freshness_max_age", "freshness_warn_age", "freshness_max_drill_age"}
NAMES = ["prod-eu", "prod-us", "edge-1"]


def fleet() -> dict[str, Any]:
    return pipeline(FLEET)


def steps_of(job: str) -> list[dict[str, Any]]:
    (found,) = [j for j in fleet()["jobs"] if j["name"] == job]
    return [s for _, s in job_steps(found)]


def test_the_jobs_and_the_set_pipeline_step() -> None:
    jobs = check_structure(fleet())
    assert set(jobs) == {"set-cluster-pipelines", "fleet-status"}
    steps = steps_of("set-cluster-pipelines")
    (load,) = [s for s in steps if "load_var" in s]
    (setp,) = [s for s in steps if "set_pipeline" in s]
    assert load["load_var"] == "clusters" and load["file"] == "fleet/clusters.json"
    assert setp["across"] == [{"var": "cluster", "values": "((.:clusters))", "max_in_flight": 4}]
    assert setp["file"] == "k0sctl-resource/pipeline/pipeline.yml"
    assert setp["instance_vars"] == {"cluster": "((.:cluster))"}
    assert setp["var_files"] == ["fleet/vars/((.:cluster)).yml"] and "vars" not in setp
    assert jobs["set-cluster-pipelines"]["serial"] is True
    triggers = {s["get"] for s in steps if s.get("trigger")}
    assert triggers == {"fleet-config", "k0sctl-resource"}

    status = steps_of("fleet-status")
    assert {s["get"] for s in status if s.get("trigger")} == {"hourly"}
    resources = {r["name"]: r for r in fleet()["resources"]}
    assert resources["hourly"]["source"] == {"interval": "1h"}
    assert "depth" not in resources["fleet-config"]["source"], "the guard reads the history of clusters.yml"
    (task,) = [s for s in status if s.get("task") == "fleet-status"]
    assert set(task["config"]["params"]) == {f"{ENV_PREFIX}BACKUP_PRIVATE_KEY"}


def test_the_task_scripts_parse() -> None:
    scripts = task_scripts(substitute(fleet(), example_vars(ROOT / "pipeline" / "fleet-vars.example.yml")))
    assert set(scripts) == {"notify", "fleet-vars", "fleet-status"}
    for name, (_, script) in scripts.items():
        proc = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{name}: {proc.stderr}"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True, text=True).stdout


def clusters_doc(names: list[str], removed: list[str] | None = None) -> dict[str, Any]:
    """clusters.yml whose defaults are the sample's vars, less what is derived per cluster or secret."""
    shared = {k: v for k, v in example_vars().items() if k not in DERIVED and k not in SECRET_VARS}
    doc: dict[str, Any] = {"defaults": {"vars": shared},
                           "clusters": [{"name": n, "config": f"clusters/{n}/k0sctl.yaml"} for n in names]}
    if removed:
        doc["removed"] = removed
    return doc


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """A build's directory: `fleet-config` (a git checkout with clusters.yml) and `k0sctl-resource`."""
    config = tmp_path / "fleet-config"
    config.mkdir()
    git(config, "init", "-q")
    commit(config, clusters_doc(NAMES))
    (tmp_path / "k0sctl-resource" / "pipeline").mkdir(parents=True)
    shutil.copy(PIPELINE, tmp_path / "k0sctl-resource" / "pipeline" / "pipeline.yml")
    return tmp_path


def commit(config: Path, doc: dict[str, Any]) -> None:
    (config / "clusters.yml").write_text(yaml.safe_dump(doc), encoding="utf-8")
    git(config, "add", "clusters.yml")
    git(config, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "clusters")


def run_task(build: Path) -> subprocess.CompletedProcess[str]:
    (_, script) = task_scripts(fleet())["fleet-vars"]
    shutil.rmtree(build / "fleet", ignore_errors=True)
    (build / "fleet").mkdir()
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "HOME": str(build)}
    return subprocess.run(["sh", "-ec", script], cwd=build, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def test_every_clusters_pipeline_gets_every_var_and_passes_the_resources_validation(build: Path) -> None:
    proc = run_task(build)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((build / "fleet" / "clusters.json").read_text(encoding="utf-8")) == NAMES
    template = pipeline()
    refs: dict[str, set[str]] = {}
    for name in NAMES:
        variables = yaml.safe_load((build / "fleet" / "vars" / f"{name}.yml").read_text(encoding="utf-8"))
        assert "cluster" not in variables, "no vars file may shadow the instance var"
        doc = substitute(template, variables)  # an undefined var raises
        assert validate_requests(doc) == set(COMMANDS)
        resources = {r["name"]: r for r in doc["resources"]}
        assert resources["cluster"]["source"]["backup"]["branch"] == f"k0sctl-backup-{name}"
        assert resources["config"]["source"]["paths"] == [f"clusters/{name}/k0sctl.yaml"]
        assert resources["scratch-config"]["source"]["paths"] == [f"clusters/{name}/scratch/k0sctl.yaml"]
        # The secrets stay references, resolved per cluster when its pipeline runs.
        refs[name] = {variables[v] for v in SECRET_VARS}
        assert refs[name] == {f"(({name}/{v}))" for v in SECRET_VARS}
    assert not refs["prod-eu"] & refs["prod-us"], "no two clusters share a secret's name"


def test_a_cluster_removed_by_accident_stops_the_build_and_removed_on_purpose_does_not(build: Path) -> None:
    assert run_task(build).returncode == 0
    commit(build / "fleet-config", clusters_doc(["prod-eu", "edge-1"]))
    proc = run_task(build)
    assert proc.returncode == 1
    assert "prod-us disappeared from clusters: without being listed under removed:" in proc.stderr
    assert not (build / "fleet" / "clusters.json").exists(), "nothing to set: the build fails before set_pipeline"

    commit(build / "fleet-config", clusters_doc(["prod-eu", "edge-1"], removed=["prod-us"]))
    proc = run_task(build)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((build / "fleet" / "clusters.json").read_text(encoding="utf-8")) == ["prod-eu", "edge-1"]
    assert "removed on purpose: prod-us" in proc.stderr


def test_a_var_the_template_needs_and_nobody_sets_is_refused(build: Path) -> None:
    doc = clusters_doc(NAMES)
    del doc["defaults"]["vars"]["backup_keep_daily"]
    commit(build / "fleet-config", doc)
    proc = run_task(build)
    assert proc.returncode == 1
    assert "cluster prod-eu does not set backup_keep_daily (needed by pipeline.yml" in proc.stderr


def test_a_shallow_checkout_is_refused_for_the_guard_cannot_read_it(build: Path) -> None:
    shallow = build / "shallow"
    subprocess.run(["git", "clone", "-q", "--depth=1", f"file://{build / 'fleet-config'}", str(shallow)], check=True)
    shutil.rmtree(build / "fleet-config")
    shallow.rename(build / "fleet-config")
    proc = run_task(build)
    assert proc.returncode == 1
    assert "is a shallow clone: the guard against removing a cluster by accident" in proc.stderr


def test_a_checkout_owned_by_another_user_is_read_all_the_same(build: Path) -> None:
    """git refuses a repository of another owner unless told it is safe: the guard must still read it."""
    if os.geteuid() != 0:
        pytest.skip("needs root to give the checkout to another user")
    commit(build / "fleet-config", clusters_doc(["prod-eu"]))  # prod-us and edge-1 gone, by accident
    for path in [build / "fleet-config", *(build / "fleet-config").rglob("*")]:
        os.lchown(path, 54321, 54321)
    proc = run_task(build)
    assert proc.returncode == 1
    assert "edge-1, prod-us disappeared from clusters:" in proc.stderr
