"""The container image, built with scripts/image.sh and exercised inside running containers.

The image is built once per session (layer cache and base image are reused between runs). Every step
runs the image's own /opt/resource scripts against a bare backup repository on the host, mounted into
the container and reached over file://. Only the backup put swaps k0sctl for the test double, by a
bind mount over /usr/local/bin/k0sctl in that one container; every other run uses the image's k0sctl.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import subprocess
import tarfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from k0sctl_resource.k0sctl.versions import PINNED_TEXT
from tests.support import DOUBLE, ROOT
from tests.support.backup_support import git
from tests.support.resource import StepRun

pytestmark = [pytest.mark.image, pytest.mark.xdist_group("image")]

IMAGE_SH = ROOT / "scripts" / "image.sh"
TAG = "localhost/k0sctl-resource:test"
BRANCH = "k0sctl-backup"
CLUSTER = "image-smoke"
IN_BOX = Path("/w")  # where the host's work directory is mounted in every container
BUILD_TIMEOUT = 1800


K0SCTL_VERSION = PINNED_TEXT  # the Dockerfile reads it from the version file


def image_sh(*args: str, log: Path, timeout: float = BUILD_TIMEOUT) -> subprocess.CompletedProcess[str]:
    with log.open("w", encoding="utf-8") as out:
        proc = subprocess.run(["bash", str(IMAGE_SH), *args], stdout=out, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout, check=False)
    return subprocess.CompletedProcess(proc.args, proc.returncode, log.read_text(encoding="utf-8"), "")


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])


def podman(*args: str, input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], input=input, capture_output=True, text=True, timeout=timeout,
                          check=False)


def image_exists(tag: str) -> bool:
    return podman("image", "exists", tag).returncode == 0


# -- the image -----------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> str:
    log = tmp_path_factory.mktemp("image-build") / "build.log"
    built = image_sh("build", "--tag", TAG, log=log)
    assert built.returncode == 0, f"scripts/image.sh build failed:\n{tail(built.stdout)}"
    assert image_exists(TAG)
    return TAG


def step_run(argv: Sequence[str], proc: subprocess.CompletedProcess[str], *, answer: bool) -> StepRun:
    """A command run in a container as a `StepRun`; `answer`: it is a resource step whose stdout is JSON."""
    run = StepRun(list(argv), proc.returncode, proc.stdout, proc.stderr)
    if answer and proc.stdout.strip():
        run.answer = json.loads(proc.stdout)
    return run


@dataclass
class Box:
    """A running container of the image with the host directory `work` mounted at /w."""

    name: str
    image: str
    work: Path

    def exec(self, argv: Sequence[str], stdin: str | None = None, env: dict[str, str] | None = None,
             *, answer: bool = False) -> StepRun:
        flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
        proc = podman("exec", "-i", *flags, self.name, *argv, input=stdin or "")
        return step_run(argv, proc, answer=answer)

    def step(self, script: str, request: dict[str, Any], *args: str) -> StepRun:
        return self.exec([f"/opt/resource/{script}", *args], stdin=json.dumps(request), answer=True)

    def run_once(self, argv: Sequence[str], stdin: str, *, mounts: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> StepRun:
        """A fresh container for one command (with extra mounts), removed afterwards."""
        flags = [f"--volume={m}" for m in mounts] + [f"--env={k}={v}" for k, v in (env or {}).items()]
        proc = subprocess.run(
            ["bash", str(IMAGE_SH), "run", "--rm", "-i", "--network=none", f"--volume={self.work}:{IN_BOX}",
             *flags, self.image, *argv],
            input=stdin, capture_output=True, text=True, timeout=300, check=False)
        return step_run(argv, proc, answer=argv[0].startswith("/opt/resource/"))


@pytest.fixture(scope="module")
def box(image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    work = tmp_path_factory.mktemp("image-work")
    name = f"k0sctl-resource-test-{uuid.uuid4().hex[:12]}"
    started = subprocess.run(
        ["bash", str(IMAGE_SH), "run", "-d", "--rm", "--name", name, "--network=none",
         f"--volume={work}:{IN_BOX}", image, "sleep", "infinity"],
        capture_output=True, text=True, timeout=120, check=False)
    assert started.returncode == 0, f"podman run failed: {started.stderr}"
    try:
        yield Box(name, image, work)
    finally:
        podman("rm", "--force", "--time", "0", name)


# -- what the image holds ------------------------------------------------------------------------------

def test_k0sctl_is_the_pinned_release(box: Box) -> None:
    found = box.exec(["sh", "-c", "command -v k0sctl"]).expect_ok()
    assert found.stdout.strip() == "/usr/local/bin/k0sctl"
    version = box.exec(["k0sctl", "version"]).expect_ok()
    assert version.stdout.splitlines()[0] == f"version: {K0SCTL_VERSION}"


def test_task_image_tools(box: Box) -> None:
    assert box.exec(["git", "--version"]).expect_ok().stdout.startswith("git version ")
    ssh = box.exec(["ssh", "-V"]).expect_ok()
    assert "OpenSSH" in ssh.stdout + ssh.stderr
    cli = box.exec(["k0sctl-resource", "--version"]).expect_ok()
    assert K0SCTL_VERSION in cli.stdout + cli.stderr


def test_resource_scripts_exec_the_cli(box: Box) -> None:
    for script in ("check", "in", "out"):
        mode = box.exec(["stat", "-c", "%a %U", f"/opt/resource/{script}"]).expect_ok().stdout.split()
        assert mode == ["755", "root"], script
        text = box.exec(["cat", f"/opt/resource/{script}"]).expect_ok().stdout
        assert text == (ROOT / "assets" / script).read_text(encoding="utf-8")
        assert f"exec /opt/venv/bin/k0sctl-resource {script} " in text


# What Concourse gives a worker's base resource type (a `--resource-types` folder holding the image as
# rootfs.tgz): its default PATH and none of the image's ENV.
CONCOURSE_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def as_base_resource_type(box: Box, script: str, request: dict[str, Any], *args: str) -> StepRun:
    argv = ["env", "-i", f"PATH={CONCOURSE_DEFAULT_PATH}", f"/opt/resource/{script}", *args]
    return box.exec(argv, stdin=json.dumps(request), answer=True)


def test_resource_scripts_work_as_a_base_resource_type(box: Box) -> None:
    """check, out and in with Concourse's default PATH and an otherwise empty environment (no HOME, no
    image ENV), against a file:// backup repository: git and k0sctl are found, the answers are JSON."""
    bare = box.work / "base-type.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    source = {"backup": {"uri": f"file://{IN_BOX}/base-type.git"}}
    # The environment really is bare: the CLI is not on Concourse's default PATH.
    assert box.exec(["env", "-i", f"PATH={CONCOURSE_DEFAULT_PATH}", "env"]).expect_ok().stdout.split() == [
        f"PATH={CONCOURSE_DEFAULT_PATH}"]
    missing = box.exec(["env", "-i", f"PATH={CONCOURSE_DEFAULT_PATH}", "sh", "-c", "command -v k0sctl-resource"])
    assert missing.returncode != 0 and missing.stdout == ""

    empty = as_base_resource_type(box, "check", {"source": source}).expect_ok()
    assert empty.answer == [] and "init" in empty.stderr
    (box.work / "base-type-put").mkdir()
    init = as_base_resource_type(box, "out", {"source": source, "params": {"command": "init"}},
                                 f"{IN_BOX}/base-type-put").expect_ok()
    version = init.answer["version"]
    assert version["ref"] == git(bare, "rev-parse", BRANCH)
    assert init.metadata["k0sctl_version"] == K0SCTL_VERSION  # k0sctl found on the default PATH
    listed = as_base_resource_type(box, "check", {"source": source}).expect_ok()
    assert listed.answer == [version]
    got = as_base_resource_type(box, "in", {"source": source, "version": version}, f"{IN_BOX}/base-type-get")
    assert got.expect_ok().answer["version"] == version
    meta = json.loads((box.work / "base-type-get" / "metadata.json").read_text(encoding="utf-8"))
    assert meta["kind"] == "init" and meta["ref"] == version["ref"]


def test_no_build_leftovers(box: Box) -> None:
    """The multi-stage build leaves no downloader, compiler, pip, pip cache or build context behind."""
    probe = box.exec(["sh", "-c", 'for c in curl wget gcc cc make pip pip3; do command -v "$c"; done; '
                                  "ls -d /root/.cache /src /download /tmp/* /var/lib/apt/lists/*.lz4 "
                                  "/var/lib/apt/lists/*_Packages* 2>/dev/null; true"])
    assert probe.expect_ok().stdout == ""


def test_labels_and_size(image: str) -> None:
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    labels = inspected["Labels"] or inspected.get("Config", {}).get("Labels") or {}
    assert labels["org.opencontainers.image.title"] == "k0sctl-resource"
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert "org.opencontainers.image.description" in labels
    assert inspected["Size"] < 400_000_000, f"image grew to {inspected['Size'] / 1e6:.0f} MB"


def test_check_without_backup_repository(box: Box) -> None:
    run = box.step("check", {"source": {}}).expect_ok()
    assert run.answer == []


# -- the resource's steps against a file:// backup repository ---------------------------------------------

CONFIG = {
    "apiVersion": "k0sctl.k0sproject.io/v1beta1",
    "kind": "Cluster",
    "metadata": {"name": CLUSTER},
    "spec": {
        "hosts": [{"role": "controller", "ssh": {"address": "192.0.2.10", "user": "root", "port": 22}}],
        "k0s": {"version": "v1.31.2+k0s.0"},
    },
}


@dataclass
class Flow:
    """A bare backup repository on the host, the put directory, an age key pair, and the puts' results."""

    repo: Path
    source: dict[str, Any]
    identity: str
    init: StepRun | None = None
    backup: StepRun | None = None


@pytest.fixture(scope="module")
def flow(box: Box) -> Flow:
    from pyrage import x25519

    repo = box.work / "backups.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    put_dir = box.work / "put" / "config"
    put_dir.mkdir(parents=True)
    (put_dir / "k0sctl.yaml").write_text(json.dumps(CONFIG, indent=2), encoding="utf-8")
    identity = x25519.Identity.generate()
    source = {
        "backup": {"uri": f"file://{IN_BOX}/backups.git"},
        "encryption": {"recipients": [str(identity.to_public())], "identities": str(identity)},
    }
    return Flow(repo, source, str(identity))


@pytest.fixture(scope="module")
def after_init(box: Box, flow: Flow) -> Flow:
    flow.init = box.step("out", {"source": flow.source, "params": {"command": "init"}}, f"{IN_BOX}/put")
    return flow


@pytest.fixture(scope="module")
def after_backup(box: Box, after_init: Flow) -> Flow:
    flow = after_init
    state = box.work / "double-state.json"
    state.write_text(json.dumps({"running": True, "backup_bytes": 40_000}), encoding="utf-8")
    request = {"source": flow.source, "params": {"command": "backup", "config": "config/k0sctl.yaml"}}
    flow.backup = box.run_once(
        ["/opt/resource/out", f"{IN_BOX}/put"], json.dumps(request),
        mounts=[f"{DOUBLE}:/usr/local/bin/k0sctl:ro"],
        # the double alone is mounted: it cannot read the pinned release from the checkout beside it
        env={"K0SCTL_DOUBLE_VERSION": PINNED_TEXT, "K0SCTL_DOUBLE_STATE": f"{IN_BOX}/double-state.json",
             "K0SCTL_DOUBLE_RECORD": f"{IN_BOX}/double-calls.jsonl"})
    return flow


def assert_no_secret(flow: Flow, step: StepRun) -> None:
    assert flow.identity not in step.stdout and flow.identity not in step.stderr


def test_out_init(after_init: Flow) -> None:
    flow = after_init
    assert flow.init is not None
    run = flow.init.expect_ok()
    assert_no_secret(flow, run)
    ref = run.answer["version"]["ref"]
    assert ref == git(flow.repo, "rev-parse", BRANCH)
    assert git(flow.repo, "ls-tree", "-r", "--name-only", ref) == ""


def test_out_backup_with_the_k0sctl_double(box: Box, after_backup: Flow) -> None:
    flow = after_backup
    assert flow.backup is not None
    run = flow.backup.expect_ok()
    assert_no_secret(flow, run)
    ref = run.answer["version"]["ref"]
    assert ref == git(flow.repo, "rev-parse", BRANCH)
    files = git(flow.repo, "ls-tree", "-r", "--name-only", ref).splitlines()
    assert len(files) == 1 and files[0].startswith("backups/") and files[0].endswith(".age"), files
    stored = subprocess.run(["git", "-C", str(flow.repo), "cat-file", "blob", f"{ref}:{files[0]}"],
                            capture_output=True, check=True).stdout
    assert stored.startswith(b"age-encryption.org/v1\n")
    assert run.metadata["cluster"] == CLUSTER
    # the double ran k0sctl backup in that container ...
    calls = [json.loads(line) for line in (box.work / "double-calls.jsonl").read_text().splitlines() if line]
    assert any(call["argv"][:1] == ["backup"] for call in calls), calls
    # ... and the long-running container still has the image's own k0sctl
    version = box.exec(["k0sctl", "version"]).expect_ok()
    assert version.stdout.splitlines()[0] == f"version: {K0SCTL_VERSION}"
    if flow.init is not None and flow.init.returncode == 0:
        assert git(flow.repo, "rev-parse", f"{ref}^") == flow.init.answer["version"]["ref"]


def test_check_lists_the_branch(box: Box, after_backup: Flow) -> None:
    flow = after_backup
    tip = git(flow.repo, "rev-parse", BRANCH)
    history = git(flow.repo, "rev-list", "--first-parent", "--reverse", BRANCH).splitlines()
    assert len(history) == 2, "needs the init and backup puts"
    newest = box.step("check", {"source": flow.source}).expect_ok()
    assert newest.answer == [{"ref": tip}]
    since_init = box.step("check", {"source": flow.source, "version": {"ref": history[0]}}).expect_ok()
    assert since_init.answer == [{"ref": sha} for sha in history]
    gone = box.step("check", {"source": flow.source, "version": {"ref": "0" * 40}}).expect_ok()
    assert gone.answer == [{"ref": tip}]
    other_branch = {**flow.source, "backup": {**flow.source["backup"], "branch": "no-such-branch"}}
    missing = box.step("check", {"source": other_branch}).expect_ok()
    assert missing.answer == []
    assert "init" in missing.stderr


def test_in_decrypts_the_backup(box: Box, after_backup: Flow) -> None:
    flow = after_backup
    assert flow.backup is not None and flow.backup.returncode == 0, "needs the backup put"
    version = flow.backup.answer["version"]
    run = box.step("in", {"source": flow.source, "version": version, "params": {"decrypt": True}},
                   f"{IN_BOX}/get-backup").expect_ok()
    assert_no_secret(flow, run)
    assert run.answer["version"] == version
    got = box.work / "get-backup"
    meta = json.loads((got / "metadata.json").read_text(encoding="utf-8"))
    assert meta["ref"] == version["ref"] and meta["kind"] == "backup" and meta["cluster"] == CLUSTER
    assert meta["encrypted"] is True
    archive = (got / "backup.tar.gz").read_bytes()
    assert hashlib.sha256(archive).hexdigest() == meta["sha256"]
    assert len(archive) == int(meta["size"])
    with tarfile.open(got / "backup.tar.gz", mode="r:gz") as tar:
        assert tar.getnames()
    assert flow.identity not in (got / "metadata.json").read_text(encoding="utf-8")


def test_in_init_commit_and_placeholder(box: Box, after_init: Flow) -> None:
    flow = after_init
    assert flow.init is not None and flow.init.returncode == 0, "needs the init put"
    version = flow.init.answer["version"]
    box.step("in", {"source": flow.source, "version": version}, f"{IN_BOX}/get-init").expect_ok()
    got = box.work / "get-init"
    assert json.loads((got / "metadata.json").read_text(encoding="utf-8"))["kind"] == "init"
    assert sorted(p.name for p in got.iterdir()) == ["metadata.json"]
    box.step("in", {"source": {}, "version": {"ref": "none"}}, f"{IN_BOX}/get-none").expect_ok()
    got = box.work / "get-none"
    assert json.loads((got / "metadata.json").read_text(encoding="utf-8"))["kind"] == "none"
    assert sorted(p.name for p in got.iterdir()) == ["metadata.json"]


# -- k0sctl's checksum is enforced at build time -----------------------------------------------------------

FAKE_ASSET = b"#!/bin/sh\necho not k0sctl\n"


def platform_arch() -> str:
    machine = subprocess.run(["uname", "-m"], capture_output=True, text=True, check=True).stdout.strip()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def bad_mirror(root: Path, checksums: str) -> Path:
    """A release mirror whose asset is some bytes and whose checksums.txt says what the caller wants."""
    (root / K0SCTL_VERSION).mkdir(parents=True)
    (root / K0SCTL_VERSION / f"k0sctl-linux-{platform_arch()}").write_bytes(FAKE_ASSET)
    (root / K0SCTL_VERSION / "checksums.txt").write_text(checksums, encoding="utf-8")
    return root


@pytest.mark.parametrize(("case", "expected"), [
    ("mismatch", "does not match its checksums.txt"),
    ("missing", "has no line for k0sctl-linux-"),
])
def test_build_fails_on_bad_checksums(image: str, tmp_path: Path, case: str, expected: str) -> None:
    wrong = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
    right = hashlib.sha256(FAKE_ASSET).hexdigest()
    asset = f"k0sctl-linux-{platform_arch()}"
    lines = {
        # the asset's line carries another file's hash (the asset's own hash is on another line)
        "mismatch": f"{right} *k0sctl-linux-other\n{wrong} *{asset}\n",
        # lines for other assets only, one a longer name that merely starts with the asset's name
        "missing": f"{wrong} *k0sctl-linux-other\n{right} *{asset}.sig\n",
    }[case]
    tag = f"localhost/k0sctl-resource:badsum-{case}"
    podman("rmi", "--force", tag)
    log = tmp_path / "build.log"
    built = image_sh("build", "--tag", tag, "--mirror-dir", str(bad_mirror(tmp_path / "mirror", lines)),
                     log=log, timeout=900)
    assert built.returncode != 0, f"the build succeeded:\n{tail(built.stdout)}"
    assert expected in built.stdout, tail(built.stdout)
    assert not image_exists(tag)

