"""Contract tests: the resource's k0sctl command lines against real k0sctl, and the double against real k0sctl.

A flag is proven accepted without a cluster by giving k0sctl a configuration path that does not exist:
k0sctl reads the configuration only after every flag has parsed, so an accepted command line ends with the
same "no configuration" error as the bare command, while a flag error ends with urfave/cli's
"Incorrect Usage" (stdout) and a fatal line on stderr. The real binaries come from
scripts/install-k0sctl.sh (versions: $K0SCTL_CONTRACT_VERSIONS, default: the pinned release and v0.28.0).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from k0sctl_resource.k0sctl.versions import K0sctlVersion
from tests.support import DOUBLE
from tests.support import k0sctl_fixtures as fx
from tests.support.k0sctl_argv import command_lines_for_contract

pytestmark = pytest.mark.k0sctl

COMMANDS = ("apply", "backup", "reset", "kubeconfig")
VALID_CONFIG = """\
apiVersion: k0sctl.k0sproject.io/v1beta1
kind: Cluster
metadata:
  name: contract
spec:
  hosts:
  - role: controller
    ssh:
      address: 127.0.0.1
      port: 1
  k0s:
    version: v1.31.2+k0s.0
"""


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str

    @staticmethod
    def _mask(text: str) -> str:
        return re.sub(r'time="[^"]*"', 'time="T"', text)

    @property
    def normalized_stderr(self) -> str:
        return self._mask(self.stderr)

    @property
    def accepted(self) -> bool:
        """Flags parsed: k0sctl went on to read the (missing) configuration and failed there."""
        last = self.stdout.rstrip("\n").rsplit("\n", 1)[-1]
        return (self.returncode == 1 and not self.usage_error and self.stderr == ""
                and re.search(r'level=fatal msg="(no configuration files found|failed to locate configuration)"',
                              last) is not None)

    @property
    def first_line(self) -> str:
        return self.stdout.split("\n", 1)[0]

    @property
    def usage_error(self) -> bool:
        return self.stdout.startswith(("Incorrect Usage:", "Incorrect Usage."))  # "." at app level before v0.15

    def shape(self) -> tuple[int, str, str]:
        """What the contract compares: exit code, stderr (timestamps masked), and stdout.

        A usage error's stdout is compared by its first line only: the help text after it is urfave/cli's
        rendering of every flag's usage string, which the double does not reproduce word for word.
        """
        shown = self.first_line if self.usage_error else self._mask(self.stdout)
        return self.returncode, self.normalized_stderr, shown

    def __str__(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[:1500]}\n--- stderr\n{self.stderr[:1500]}"


def run(binary: Path, argv: list[str], env: dict[str, str], cwd: Path, *, double_version: str | None = None,
        stdin: str | None = None) -> Outcome:
    full_env = dict(env)
    if double_version is not None:
        full_env["K0SCTL_DOUBLE_VERSION"] = double_version
    proc = subprocess.run([str(binary), *argv], env=full_env, cwd=cwd, capture_output=True, text=True, timeout=60,
                          input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL, check=False)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def load_double() -> ModuleType:
    """The double as a module (it is a script without a .py suffix), for its flag table."""
    name = "k0sctl_double_module"
    if name in sys.modules:
        return sys.modules[name]
    loader = importlib.machinery.SourceFileLoader(name, str(DOUBLE))
    spec = importlib.util.spec_from_loader(name, loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    loader.exec_module(module)
    return module


VERSIONS = fx.contract_versions()


@pytest.fixture
def missing_config(tmp_path: Path) -> Path:
    return tmp_path / "no-such-dir" / "k0sctl.yaml"


# -- the resource's command lines -------------------------------------------------------------------

@pytest.mark.parametrize("version", VERSIONS)
def test_real_k0sctl_accepts_every_command_line_of_the_resource(
        version: str, k0sctl_binaries: dict[str, Path], k0sctl_env: dict[str, str], tmp_path: Path,
        missing_config: Path) -> None:
    binary = k0sctl_binaries[version]
    lines = command_lines_for_contract(K0sctlVersion.parse(version), missing_config, tmp_path)
    assert {argv[0] for argv in lines} >= set(COMMANDS), lines
    problems = []
    for argv in lines:
        baseline = run(binary, [argv[0], "--config", str(missing_config)], k0sctl_env, tmp_path)
        assert baseline.accepted, baseline
        got = run(binary, argv, k0sctl_env, tmp_path)
        if not got.accepted:
            problems.append(f"k0sctl {version} rejects: {' '.join(argv)}\n{got}")
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize("version", VERSIONS)
def test_double_answers_the_resource_command_lines_like_real_k0sctl(
        version: str, k0sctl_binaries: dict[str, Path], k0sctl_double_bin: Path, k0sctl_env: dict[str, str],
        tmp_path: Path, missing_config: Path) -> None:
    binary = k0sctl_binaries[version]
    problems = []
    for argv in command_lines_for_contract(K0sctlVersion.parse(version), missing_config, tmp_path):
        real = run(binary, argv, k0sctl_env, tmp_path)
        double = run(k0sctl_double_bin, argv, k0sctl_env, tmp_path, double_version=version)
        if double.shape() != real.shape():
            problems.append(f"{' '.join(argv)}\nreal {real}\ndouble {double}")
    assert not problems, "\n\n".join(problems)


# -- every flag, accepted or rejected exactly as the release does --------------------------------------

def flag_candidates(binary: Path, command: str, env: dict[str, str], cwd: Path) -> dict[str, str]:
    """Every flag spelling to try on `command`, with a value that parses for its kind ('' for bools).

    The union of what the double knows for any release, what the real binary's help lists, and names
    that no release ever had.
    """
    kinds: dict[str, str] = {}
    for flag in load_double().FLAGS:
        for name in (flag.name, *flag.aliases):
            kinds.setdefault(name, flag.kind)
    help_text = run(binary, [command, "--help"], env, cwd).stdout
    for match in re.finditer(r"(?:^|[ ,])--?([a-z0-9][a-z0-9-]*)( value)?", help_text, re.MULTILINE):
        kinds.setdefault(match.group(1), "string" if match.group(2) else "bool")
    kinds.update({"bogus": "bool", "x": "bool", "o-o": "string"})
    value = {"bool": "", "int": "2", "duration": "90s", "string": "x", "slice": "x"}
    return {name: value[kind] for name, kind in kinds.items() if name not in ("help", "h", "config", "c")}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("command", COMMANDS)
def test_double_accepts_exactly_the_flags_of_the_release(
        version: str, command: str, k0sctl_binaries: dict[str, Path], k0sctl_double_bin: Path,
        k0sctl_env: dict[str, str], tmp_path: Path, missing_config: Path) -> None:
    binary = k0sctl_binaries[version]
    accepted, problems = [], []
    for name, value in sorted(flag_candidates(binary, command, k0sctl_env, tmp_path).items()):
        spelled = f"-{name}" if len(name) == 1 else f"--{name}"
        argv = [command, "--config", str(missing_config), spelled, *([value] if value else [])]
        real = run(binary, argv, k0sctl_env, tmp_path)
        double = run(k0sctl_double_bin, argv, k0sctl_env, tmp_path, double_version=version)
        if real.accepted:
            accepted.append(name)
        if double.shape() != real.shape():
            problems.append(f"{' '.join(argv)}\nreal {real}\ndouble {double}")
    assert "debug" in accepted and "bogus" not in accepted, accepted
    assert not problems, "\n\n".join(problems)


# -- how failures look --------------------------------------------------------------------------------

def error_cases(missing: Path) -> list[tuple[list[str], dict[str, str]]]:
    m = str(missing)
    return [
        (["apply", "--bogus"], {}),
        (["apply", "--config", m, "--dry-run=maybe"], {}),
        (["apply", "--config", m, "--no-wait=false"], {}),
        (["apply", "--config", m, "--concurrency", "many"], {}),
        (["apply", "--config", m, "--timeout", "soon"], {}),
        (["apply", "--config", m, "--timeout", "5"], {}),
        (["backup", "--config"], {}),
        (["reset", "---force"], {}),
        (["kubeconfig", "-c", m, "-z"], {}),
        (["apply", "-c", m, "positional", "--bogus"], {}),
        (["apply", "-c", m, "--", "--bogus"], {}),
        (["--bogus", "version"], {}),
        (["--debug", "apply", "-c", m], {}),
        (["version", "--bogus"], {}),
        (["no-such-command"], {}),
        (["apply", "-c", "-"], {}),
        (["version"], {"DEBUG": "yes"}),
        (["apply", "-c", m], {"DEBUG": ""}),
        (["apply", "-c", m], {"DRY_RUN": "maybe"}),
        (["backup", "-c", m], {"DISABLE_TELEMETRY": "yes"}),
        (["reset", "-c", m], {"TRACE": "1"}),
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_double_fails_like_real_k0sctl(version: str, k0sctl_binaries: dict[str, Path], k0sctl_double_bin: Path,
                                       k0sctl_env: dict[str, str], tmp_path: Path, missing_config: Path) -> None:
    binary = k0sctl_binaries[version]
    problems = []
    for argv, extra_env in error_cases(missing_config):
        env = {**k0sctl_env, **extra_env}
        real = run(binary, argv, env, tmp_path)
        double = run(k0sctl_double_bin, argv, env, tmp_path, double_version=version)
        if double.shape() != real.shape():
            problems.append(f"{extra_env} {' '.join(argv)}\nreal {real}\ndouble {double}")
    assert not problems, "\n\n".join(problems)


@pytest.mark.parametrize("version", VERSIONS)
def test_unwritable_cache_fails_like_real_k0sctl(version: str, k0sctl_binaries: dict[str, Path],
                                                 k0sctl_double_bin: Path, k0sctl_env: dict[str, str],
                                                 tmp_path: Path, missing_config: Path) -> None:
    not_a_dir = tmp_path / "cache-is-a-file"
    not_a_dir.write_text("")
    env = {**k0sctl_env, "XDG_CACHE_HOME": str(not_a_dir)}
    argv = ["apply", "--config", str(missing_config)]
    real = run(k0sctl_binaries[version], argv, env, tmp_path)
    double = run(k0sctl_double_bin, argv, env, tmp_path, double_version=version)
    assert real.returncode == 1 and "could not create any of the following paths" in real.stdout, real
    assert double.shape() == real.shape(), f"real {real}\ndouble {double}"


@pytest.mark.parametrize("version", VERSIONS)
def test_reset_without_force_is_refused_like_real_k0sctl(version: str, k0sctl_binaries: dict[str, Path],
                                                         k0sctl_double_bin: Path, k0sctl_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    """A valid config whose host is never contacted: reset stops at its --force check (stdout is no TTY)."""
    config = tmp_path / "k0sctl.yaml"
    config.write_text(VALID_CONFIG)
    argv = ["reset", "--config", str(config)]
    real = run(k0sctl_binaries[version], argv, k0sctl_env, tmp_path)
    double = run(k0sctl_double_bin, argv, k0sctl_env, tmp_path, double_version=version)
    assert real.returncode == 1 and "reset requires --force" in real.stdout, real
    assert (double.returncode, double.stdout) == (real.returncode, real.stdout), f"real {real}\ndouble {double}"
    # v0.32's notice on stderr: the double prints a paraphrase of the same shape.
    assert len(double.stderr.splitlines()) == len(real.stderr.splitlines()), f"real {real}\ndouble {double}"


@pytest.mark.parametrize("version", VERSIONS)
def test_version_output_has_the_same_shape(version: str, k0sctl_binaries: dict[str, Path],
                                           k0sctl_double_bin: Path, k0sctl_env: dict[str, str],
                                           tmp_path: Path) -> None:
    real = run(k0sctl_binaries[version], ["version"], k0sctl_env, tmp_path)
    double = run(k0sctl_double_bin, ["version"], k0sctl_env, tmp_path, double_version=version)
    assert real.returncode == double.returncode == 0
    assert real.first_line == double.first_line == f"version: {version}"
    shape = re.compile(r"version: v\d+\.\d+\.\d+\ncommit: [0-9a-f]+\n")
    assert shape.fullmatch(real.stdout) and shape.fullmatch(double.stdout), f"real {real}\ndouble {double}"
    real_commit, double_commit = (o.stdout.splitlines()[1] for o in (real, double))
    assert len(real_commit) == len(double_commit)
    assert real.stderr == double.stderr == ""


def test_contract_versions_are_known_to_the_resource() -> None:
    for version in VERSIONS:
        parsed: Any = K0sctlVersion.parse(version)
        assert str(parsed) == version
