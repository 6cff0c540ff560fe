"""Running the installed `k0sctl-resource` steps exactly as Concourse does, for the tests.

JSON on stdin, the directory as argument, build variables in the environment; the answer is the one
JSON value on stdout. Every run is also checked by the secret scanner when secrets are registered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BUILD_ENV = {
    "BUILD_ID": "1234",
    "BUILD_NAME": "42",
    "BUILD_JOB_NAME": "install",
    "BUILD_PIPELINE_NAME": "k0s",
    "BUILD_TEAM_NAME": "main",
    "ATC_EXTERNAL_URL": "https://ci.example.test",
    "BUILD_URL": "https://ci.example.test/teams/main/pipelines/k0s/jobs/install/builds/42",
}


def executable() -> str:
    found = Path(sys.executable).parent / "k0sctl-resource"
    if found.exists():
        return str(found)
    which = shutil.which("k0sctl-resource")
    assert which, "k0sctl-resource is not installed (pip install -e .)"
    return which


@dataclass
class StepRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    answer: Any = None

    @property
    def metadata(self) -> dict[str, str]:
        if not isinstance(self.answer, dict):
            return {}
        return {item["name"]: item["value"] for item in self.answer.get("metadata", [])}

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error: ")]

    def expect_ok(self) -> StepRun:
        assert self.returncode == 0, f"exit {self.returncode}\nstderr:\n{self.stderr}"
        return self


@dataclass
class Resource:
    """The resource's three steps as subprocesses, with a controlled environment."""

    home: Path
    tmpdir: Path
    path_prefix: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    secrets: list[str] = field(default_factory=list)
    argv_prefix: list[str] = field(default_factory=list)  # e.g. `ip netns exec NS` to run inside a namespace
    # check, in and out run in the test's own process (`tests.support.in_process.run_in_process`): the
    # default of tests/steps; the protocol, descriptor, signal and abort tests keep real processes.
    in_process: bool = False

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BUILD_", "ATC_", "K0SCTL_DOUBLE"))}
        env.update(HOME=str(self.home), TMPDIR=str(self.tmpdir), NO_COLOR="1")
        env["PATH"] = os.pathsep.join([*(str(p) for p in self.path_prefix), env.get("PATH", "")])
        env.update(self.env)
        if extra:
            env.update(extra)
        return env

    def step(self, args: Iterable[str], request: Any, *, env: Mapping[str, str] | None = None,
             timeout: float = 120) -> StepRun:
        args = list(args)
        stdin = request if isinstance(request, str | bytes) else json.dumps(request)
        # Raw bytes on stdin (the protocol's own tests) need a real process's stdin.
        if self.in_process and not self.argv_prefix and args[:1] in (["check"], ["in"], ["out"]) \
                and isinstance(stdin, str):
            from tests.support.in_process import run_in_process

            run = run_in_process(args, stdin, self.environment(env))
            self.scan(run)
            return run
        argv = [*self.argv_prefix, executable(), *args]
        proc = subprocess.run(argv, input=stdin.encode() if isinstance(stdin, str) else stdin,
                              capture_output=True, env=self.environment(env), timeout=timeout, check=False)
        out = proc.stdout.decode(errors="replace")
        err = proc.stderr.decode(errors="replace")
        run = StepRun(argv, proc.returncode, out, err)
        if list(args)[:1] in (["check"], ["in"], ["out"]) and out.strip():
            run.answer = json.loads(out)  # a step's stdout is either empty or exactly one JSON value
        self.scan(run)
        return run

    def check(self, request: Any, **kw: Any) -> StepRun:
        return self.step(["check"], request, **kw)

    def get(self, request: Any, directory: Path, **kw: Any) -> StepRun:
        return self.step(["in", str(directory)], request, **kw)

    def put(self, request: Any, directory: Path, **kw: Any) -> StepRun:
        return self.step(["out", str(directory)], request, **kw)

    # -- the secret scanner --------------------------------------------------------------------------
    def scan(self, run: StepRun, extra_dirs: Iterable[Path] = ()) -> None:
        """Fail when a registered secret is in stdout, stderr, metadata, or a file left behind."""
        for secret in self.secrets:
            for line in _secret_probes(secret):
                assert line not in run.stdout, "a secret reached stdout"
                assert line not in run.stderr, "a secret reached stderr"
        leftovers = [p for p in self.tmpdir.glob("k0sctl-resource-*") if p.is_dir()]
        assert not leftovers, f"private temporary directories left behind: {leftovers}"
        for root in [self.home, self.tmpdir, *extra_dirs]:
            assert_no_secret_in_files(root, self.secrets)


# The first base64 line of every unencrypted OpenSSH ed25519 key is the same header
# ("openssh-key-v1", cipher none, ...): it says nothing about the key, so it is not a probe.
_OPENSSH_HEADER = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"


def _secret_probes(secret: str) -> list[str]:
    lines = [secret.strip()]
    lines += [line.strip() for line in secret.splitlines() if len(line.strip()) >= 16
              and not line.startswith("-----") and not line.startswith(_OPENSSH_HEADER)]
    return [line for line in lines if line]


def assert_no_secret_in_files(root: Path, secrets: Iterable[str]) -> None:
    probes = [p.encode() for s in secrets for p in _secret_probes(s)]
    if not probes or not root.exists():
        return
    for path in root.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        if ".git/objects" in str(path):  # packed objects are compressed: checked through git below
            continue
        data = path.read_bytes()
        for probe in probes:
            assert probe not in data, f"a secret was written to {path}"


def git_history_text(repo: Path) -> str:
    """Every commit message and every file of every commit of every ref, as one text."""
    proc = subprocess.run(["git", "-C", str(repo), "log", "--all", "-p", "--format=%H%n%B", "--binary"],
                          capture_output=True, check=True)
    return proc.stdout.decode(errors="replace")
