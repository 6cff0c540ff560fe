"""Release machinery checked offline: GitHub workflows, the Renovate config, the Dockerfile, the assets.

Workflows are validated with check-jsonschema's bundled GitHub workflow schema, renovate.json with its
bundled Renovate schema, the Dockerfile with hadolint; each validator is also shown to reject a broken
input, so a pass means something.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from k0sctl_resource.k0sctl.versions import PINNED_FILE, PINNED_TEXT
from tests.support import ROOT
from tests.support.tools import require_tool

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
DOCKERFILE = ROOT / "Dockerfile"
K0SCTL_RELEASES = "https://github.com/k0sproject/k0sctl/releases/download"


def tool(name: str) -> str:
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    assert found, f"{name} is not installed (pip install -e '.[dev]')"
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, check=False)


def load_workflow(path: Path) -> dict[str, Any]:
    doc: dict[Any, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in doc:  # YAML 1.1 reads the key `on` as true
        doc["on"] = doc.pop(True)
    return doc


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def uses(workflow: dict[str, Any]) -> list[str]:
    return [str(step["uses"]).split("@")[0] for step in steps(workflow) if "uses" in step]


def dockerfile_args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S*)$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE))


# -- workflows -----------------------------------------------------------------------------------------

def test_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"test.yml", "image.yml"}


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(workflow))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("name: broken\non: push\njobs:\n  a:\n    steps:\n      - run: true\n", encoding="utf-8")
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(broken))
    assert result.returncode != 0  # a job without runs-on


def test_test_workflow_runs_the_readme_command() -> None:
    wf = load_workflow(ROOT / ".github" / "workflows" / "test.yml")
    assert {"push", "pull_request"} <= set(wf["on"])
    assert "actions/setup-python" in uses(wf)
    commands = [str(step.get("run", "")) for step in steps(wf)]
    assert any(re.search(r"(^|\s)bash scripts/test\.sh(\s|$)", c) for c in commands), commands
    assert (ROOT / "README.md").read_text(encoding="utf-8").count("bash scripts/test.sh") >= 1


def test_image_workflow_builds_both_platforms_and_pushes_only_tags() -> None:
    wf = load_workflow(ROOT / ".github" / "workflows" / "image.yml")
    assert "v*" in wf["on"]["push"]["tags"]
    assert "pull_request" in wf["on"]
    used = uses(wf)
    for action in ("docker/setup-qemu-action", "docker/setup-buildx-action", "docker/metadata-action",
                   "docker/build-push-action", "docker/login-action"):
        assert action in used, action
    builds = [s for s in steps(wf) if str(s.get("uses", "")).startswith("docker/build-push-action@")]
    platforms = [set(str(s["with"]["platforms"]).split(",")) for s in builds]
    assert {"linux/amd64", "linux/arm64"} in platforms
    pushing = [s for s in builds if s["with"].get("push") not in (None, False, "false")]
    assert pushing, "no build step pushes"
    for step in pushing:
        assert str(step["with"]["push"]) == "${{ startsWith(github.ref, 'refs/tags/v') }}"
        assert "steps.meta.outputs.tags" in str(step["with"]["tags"])
    login = next(s for s in steps(wf) if str(s.get("uses", "")).startswith("docker/login-action@"))
    assert login["with"]["registry"] == "ghcr.io"
    assert "refs/tags/v" in str(login["if"])
    # the amd64 image is loaded and smoke-tested before anything is pushed
    names = [str(s.get("name", "")) for s in steps(wf)]
    smoke = next(i for i, s in enumerate(steps(wf)) if "/opt/resource/check" in str(s.get("run", "")))
    assert "k0sctl version" in str(steps(wf)[smoke]["run"])
    assert smoke < steps(wf).index(pushing[0]), names
    assert wf["jobs"]["image"]["permissions"]["packages"] == "write"


def test_every_action_is_pinned_to_a_version() -> None:
    for path in WORKFLOWS:
        for step in steps(load_workflow(path)):
            if "uses" in step:
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", step["uses"]), step["uses"]


# -- Renovate --------------------------------------------------------------------------------------------

def renovate() -> dict[str, Any]:
    config: dict[str, Any] = json.loads((ROOT / "renovate.json").read_text(encoding="utf-8"))
    return config


def test_renovate_config_matches_its_schema() -> None:
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.renovate", str(ROOT / "renovate.json"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_rejects_a_broken_renovate_config(tmp_path: Path) -> None:
    broken = tmp_path / "renovate.json"
    broken.write_text(json.dumps({"customManagers": [{"customType": "regex", "matchStrings": "ARG"}]}),
                      encoding="utf-8")
    result = run(tool("check-jsonschema"), "--builtin-schema", "vendor.renovate", str(broken))
    assert result.returncode != 0


def js_regex(pattern: str) -> re.Pattern[str]:
    """A Renovate (JavaScript) regex in Python: named groups are spelled (?P<name>...)."""
    return re.compile(pattern.replace("(?<", "(?P<"))


def test_renovate_tracks_the_pinned_k0sctl() -> None:
    config = renovate()
    managers = [m for m in config["customManagers"] if m.get("depNameTemplate") == "k0sproject/k0sctl"]
    assert len(managers) == 1
    manager = managers[0]
    assert manager["customType"] == "regex"
    assert manager["datasourceTemplate"] == "github-releases"
    assert "custom.regex" in config["enabledManagers"]
    file_patterns = [js_regex(p.strip("/")) for p in manager["managerFilePatterns"]]
    assert any(p.search("src/k0sctl_resource/k0sctl/k0sctl.version") for p in file_patterns)
    assert not any(p.search("Dockerfile") for p in file_patterns)  # the Dockerfile reads the file
    found = [m.group("currentValue") for pattern in manager["matchStrings"]
             for m in js_regex(pattern.replace("^", "(?m)^", 1)).finditer(PINNED_FILE.read_text(encoding="utf-8"))]
    assert found == [PINNED_TEXT]


def test_renovate_covers_base_image_python_and_actions() -> None:
    enabled = set(renovate()["enabledManagers"])
    assert {"dockerfile", "pep621", "github-actions"} <= enabled


# -- Dockerfile -------------------------------------------------------------------------------------------

def test_hadolint_is_clean() -> None:
    result = run(tool("hadolint"), str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_rejects_a_sloppy_dockerfile(tmp_path: Path) -> None:
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM debian\nRUN apt-get update\nRUN apt-get install -y curl\nRUN cd /tmp\n",
                      encoding="utf-8")
    result = run(tool("hadolint"), str(sloppy))
    assert result.returncode != 0
    assert "DL3006" in result.stdout  # untagged base image


def test_dockerfile_pins_base_and_k0sctl() -> None:
    args = dockerfile_args()
    assert args["BASE_IMAGE"] == "debian:trixie-slim"
    assert args["K0SCTL_VERSION"] == ""  # the pinned release comes from the version file
    assert "COPY src/k0sctl_resource/k0sctl/k0sctl.version ./" in DOCKERFILE.read_text(encoding="utf-8")
    assert re.fullmatch(r"v\d+\.\d+\.\d+", PINNED_TEXT)
    assert args["K0SCTL_MIRROR"] == K0SCTL_RELEASES
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "${K0SCTL_MIRROR%/}/${K0SCTL_VERSION}" in text and "checksums.txt" in text
    assert "k0sctl-linux-${TARGETARCH" in text
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms and all(f == "${BASE_IMAGE}" for f in froms), froms
    assert len(froms) >= 2, "a multi-stage build"
    final = text[text.rindex("\nFROM "):]
    assert "COPY --from=k0sctl /usr/local/bin/k0sctl /usr/local/bin/k0sctl" in final
    assert "/opt/resource/" in final
    assert "curl" not in final.split("LABEL")[0]  # the downloader stays in its stage


def test_dockerignore_keeps_the_context_small() -> None:
    lines = [x.strip() for x in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()]
    assert lines[lines.index("*"):].count("!src/") == 1
    for needed in ("!pyproject.toml", "!README.md", "!assets/"):
        assert needed in lines


# -- /opt/resource scripts and helper scripts -------------------------------------------------------------

@pytest.mark.parametrize("script", ["check", "in", "out"])
def test_asset_is_an_executable_thin_exec(script: str) -> None:
    staged = run("git", "-C", str(ROOT), "ls-files", "-s", f"assets/{script}").stdout.split()
    assert staged and staged[0] == "100755", f"assets/{script} is not executable in git: {staged}"
    text = (ROOT / "assets" / script).read_text(encoding="utf-8")
    assert text.startswith("#!/bin/sh\n")
    commands = [x for x in text.splitlines()[1:] if x.strip() and not x.lstrip().startswith("#")]
    # A base resource type runs it with Concourse's default PATH and none of the image's ENV: the CLI is
    # named by its full path and the image's directories are put on PATH by the script itself.
    assert commands[-1] == f'exec /opt/venv/bin/k0sctl-resource {script} "$@"'
    assert commands[0].startswith('PATH="/opt/venv/bin:${PATH:-/usr/local/sbin:/usr/local/bin:')
    assert "export PATH PYTHONUNBUFFERED" in commands
    assert len(commands) == 4, commands


def test_image_script_is_valid_bash() -> None:
    script = ROOT / "scripts" / "image.sh"
    assert run("bash", "-n", str(script)).returncode == 0
    result = run(require_tool("shellcheck", "Debian shellcheck"), str(script))
    assert result.returncode == 0, result.stdout
