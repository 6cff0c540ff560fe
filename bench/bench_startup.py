"""What a `check` costs, next to what git alone costs for the same answer (docs/performance.md, "check").

Runs the installed `k0sctl-resource check` as Concourse does (JSON on stdin, a fresh process, the
check cache in $TMPDIR) against real bare repositories, over file:// and over SSH to an sshd this
benchmark starts on 127.0.0.1 (tests/support/sshd.py), and the floors it is held to, interleaved in one run
(every round runs every measurement once, in a new random order), medians of the rounds:

- (a) warm check, tip unchanged, file://: wall time above `python -c pass` + `git ls-remote`;
- (b) the same over SSH: ratio to a bare `git ls-remote` over the same SSH;
- (c) a check that finds a new commit (the version it is given is the previous tip): ratio to
  `git ls-remote` + `git fetch` of that commit into a repository that has the rest (over SSH; the
  file:// numbers are shown too);
- (d) CPU time (user + sys of the whole process tree, from getrusage(RUSAGE_CHILDREN)) of a warm
  check and of a bare ls-remote, and the cores that 1,000 resources checked every minute keep busy;
- (e) the same checks against a branch of 10 and of `--big` commits, judged on CPU time (a busy
  machine stretches wall time, not the work done).

The package's modules are byte-compiled first, as `pip install` does in the image (this machine sets
PYTHONDONTWRITEBYTECODE, which would otherwise make every check compile them from source).

    .venv/bin/python bench/bench_startup.py [--rounds 15] [--big 10000]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.backup_support import BRANCH, backup_source, bare_repo, build_history  # noqa: E402
from tests.support.resource import executable  # noqa: E402
from tests.support.sshd import SshServer  # noqa: E402

HEAD = f"refs/heads/{BRANCH}"
FETCH = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--filter=tree:0"]


@dataclass(frozen=True)
class Sample:
    wall: float  # ms
    cpu: float  # ms, user + sys of the process and everything it waited for

    def __add__(self, other: Sample) -> Sample:
        return Sample(self.wall + other.wall, self.cpu + other.cpu)


def run(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> tuple[Sample, bytes]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, capture_output=True, env=env, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed: {proc.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall * 1000, cpu * 1000), proc.stdout


@dataclass
class Repo:
    """A served repository, its URL for one transport, the floor's client repository, the tip."""

    path: Path
    url: str
    source: dict[str, Any]
    client: Path
    tip: str = ""
    previous: str = ""


class Bench:
    def __init__(self, work: Path, server: SshServer) -> None:
        self.work = work
        known = work / "known_hosts"
        known.write_text(server.known_hosts + "\n", encoding="utf-8")
        ssh = server.ssh_command(known)[:-1]  # git adds user@host and the port from the URL
        del ssh[ssh.index("-p"):ssh.index("-p") + 2]
        self.server = server
        base = {k: v for k, v in os.environ.items() if not k.startswith(("BUILD_", "GIT_", "K0SCTL"))}
        self.git_env = {**base, "GIT_SSH_COMMAND": " ".join(ssh), "LC_ALL": "C"}
        self.check_env = {**base, "TMPDIR": str(work / "tmp"), "HOME": str(work / "home"), "NO_COLOR": "1"}
        (work / "tmp").mkdir()
        (work / "home").mkdir()
        self.samples: dict[str, list[Sample]] = defaultdict(list)

    def repo(self, path: Path, ssh: bool) -> Repo:
        url = self.server.url(path) if ssh else f"file://{path}"
        source = (backup_source(url, private_key=self.server.client_key, known_hosts=self.server.known_hosts)
                  if ssh else backup_source(url))
        client = bare_repo(self.work / f"client-{path.stem}-{'ssh' if ssh else 'file'}.git")
        run(["git", "-C", str(client), *FETCH, "--depth=32", "--", url, f"+{HEAD}:refs/k0sctl/tip"], self.git_env)
        tip = run(["git", "-C", str(path), "rev-parse", HEAD], self.git_env)[1].decode().strip()
        return Repo(path, url, source, client, tip=tip)

    def check(self, repo: Repo, version: str, expect: list[str]) -> Sample:
        request = json.dumps({"source": repo.source, "version": {"ref": version}}).encode()
        sample, out = run([executable(), "check"], self.check_env, request)
        got = [v["ref"] for v in json.loads(out)]
        if got != expect:
            raise SystemExit(f"check answered {got}, expected {expect}")
        return sample

    def ls_remote(self, repo: Repo) -> Sample:
        return run(["git", "ls-remote", "--exit-code", "--", repo.url, HEAD], self.git_env)[0]

    def floor_new(self, repo: Repo) -> Sample:
        """What git alone needs to learn a new commit: ls-remote, then fetch it (and only it)."""
        fetch = ["git", "-C", str(repo.client), *FETCH, "--", repo.url, f"+{HEAD}:refs/k0sctl/tip"]
        return self.ls_remote(repo) + run(fetch, self.git_env)[0]

    def measure(self, jobs: dict[str, Callable[[], Sample]]) -> None:
        names = list(jobs)
        random.shuffle(names)
        for name in names:
            self.samples[name].append(jobs[name]())


def advance(repos: list[Repo]) -> None:
    """One new backup commit on every served repository (not timed)."""
    for path in {r.path for r in repos}:
        chain = build_history(path, 1, 256)
        for r in repos:
            if r.path == path:
                r.previous, r.tip = r.tip, chain[-1]


def rounds(bench: Bench, small: dict[str, Repo], big: dict[str, Repo], count: int) -> None:
    everything = [*small.values(), *big.values()]
    advance(everything)
    for r in everything:  # fill each check cache once: what a warm check finds
        bench.check(r, r.tip, [r.tip])
        bench.check(r, r.previous, [r.previous, r.tip])
    for r in small.values():
        bench.floor_new(r)
    sizes = {"small": small, "big": big}
    for n in range(count):
        print(f"round {n + 1}/{count}", file=sys.stderr, end="\r")
        warm: dict[str, Callable[[], Sample]] = {
            "pass": lambda: run([sys.executable, "-c", "pass"], bench.check_env)[0],
            "ls-remote file": lambda: bench.ls_remote(small["file"]),
            "ls-remote ssh": lambda: bench.ls_remote(small["ssh"]),
        }
        new: dict[str, Callable[[], Sample]] = {}
        for size, repos in sizes.items():
            for transport, r in repos.items():
                warm[f"warm {transport} {size}"] = warm_check(bench, r)
                new[f"new {transport} {size}"] = new_check(bench, r)
                if size == "small":
                    new[f"floor new {transport}"] = floor_new(bench, r)
        bench.measure(warm)
        advance(everything)
        bench.measure(new)
    print(file=sys.stderr)


def warm_check(bench: Bench, r: Repo) -> Callable[[], Sample]:
    return lambda: bench.check(r, r.tip, [r.tip])


def new_check(bench: Bench, r: Repo) -> Callable[[], Sample]:
    return lambda: bench.check(r, r.previous, [r.previous, r.tip])


def floor_new(bench: Bench, r: Repo) -> Callable[[], Sample]:
    return lambda: bench.floor_new(r)


def median(samples: list[Sample], what: str = "wall") -> float:
    return float(statistics.median(getattr(s, what) for s in samples))


Row = tuple[str, str, str, str, str, bool | None]  # label, check, floor, result, goal, met (None: no goal)


def above(label: str, check: float, parts: dict[str, float], goal: float | None) -> Row:
    floor = sum(parts.values())
    shown = " + ".join(f"{name} {value:.1f}" for name, value in parts.items())
    return (label, f"{check:.1f} ms", f"{floor:.1f} ms ({shown})", f"+{check - floor:.1f} ms",
            "" if goal is None else f"<= +{goal:.0f} ms", None if goal is None else check - floor <= goal)


def ratio(label: str, check: float, floor: float, what: str, goal: float | None) -> Row:
    return (label, f"{check:.1f} ms", f"{floor:.1f} ms{what}", f"{check / floor:.2f}x",
            "" if goal is None else f"<= {goal:g}x", None if goal is None else check / floor <= goal)


def rows_for(m: dict[str, float], cpu: dict[str, float], big: int) -> list[Row]:
    rows = [
        above("(a) warm check, tip unchanged, file://", m["warm file small"],
              {"pass": m["pass"], "ls-remote": m["ls-remote file"]}, 60),
        above("    its CPU time", cpu["warm file small"], {"pass": cpu["pass"], "ls-remote": cpu["ls-remote file"]},
              None),
        ratio("(b) warm check, tip unchanged, SSH", m["warm ssh small"], m["ls-remote ssh"], " (ls-remote)", 1.2),
        ratio("(c) check finding a new commit, SSH", m["new ssh small"], m["floor new ssh"], " (ls-remote + fetch)",
              1.5),
        ratio("    the same, file://", m["new file small"], m["floor new file"], " (ls-remote + fetch)", None),
    ]
    for transport in ("file", "ssh"):
        check_cpu, git_cpu = cpu[f"warm {transport} small"], cpu[f"ls-remote {transport}"]
        cores = f"{check_cpu / 60:.2f} vs {git_cpu / 60:.2f} cores"  # ms per check x 1,000 checks / 60,000 ms
        rows.append((f"(d) CPU per warm check, {transport}", f"{check_cpu:.1f} ms", f"{git_cpu:.1f} ms (ls-remote)",
                     cores, "1,000/min", None))
    for kind, label in (("warm", "tip unchanged"), ("new", "finding a new commit")):
        for transport in ("file", "ssh"):
            rows.append(flat(f"(e) {label}, {transport}: {big:,} vs 10", f"{kind} {transport}", m, cpu))
    return rows


def flat(label: str, name: str, m: dict[str, float], cpu: dict[str, float]) -> Row:
    """Cost at the long branch against the short one. Judged on CPU time, which other jobs on the machine
    do not stretch as they stretch wall time."""
    wall, used = m[f"{name} big"] / m[f"{name} small"], cpu[f"{name} big"] / cpu[f"{name} small"]
    return (label, f"{m[name + ' big']:.1f} ms", f"{m[name + ' small']:.1f} ms",
            f"{wall:.2f}x, cpu {used:.2f}x", "cpu <= 1.2x", used <= 1.2)


def report(bench: Bench, big: int, count: int) -> bool:
    m = {name: median(samples) for name, samples in bench.samples.items()}
    cpu = {name: median(samples, "cpu") for name, samples in bench.samples.items()}
    rows = rows_for(m, cpu, big)
    print(f"\ncheck vs git alone: medians of {count} interleaved rounds (cpu: {os.cpu_count()} cores, "
          f"load {os.getloadavg()[0]:.2f}; shared machine, expect noise)")
    print(f"{'':<46}{'check':>10}  {'floor (e: at 10 commits)':<44}{'result':>20}  {'goal':<13}met")
    for label, check, floor, result, goal, met in rows:
        flag = "" if met is None else ("yes" if met else "NO")
        print(f"{label:<46}{check:>10}  {floor:<44}{result:>20}  {goal:<13}{flag}".rstrip())
    return all(row[5] is not False for row in rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--big", type=int, default=10_000, help="commits on the long branch")
    args = parser.parse_args()
    import k0sctl_resource

    compileall.compile_dir(str(Path(k0sctl_resource.__file__).parent), quiet=1)
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        work = Path(tmp)
        with SshServer(work / "sshd") as server:
            bench = Bench(work, server)
            paths = {}
            for n in (10, args.big):
                paths[n] = bare_repo(work / f"history-{n}.git")
                build_history(paths[n], n, 256)
            small = {t: bench.repo(paths[10], t == "ssh") for t in ("file", "ssh")}
            big = {t: bench.repo(paths[args.big], t == "ssh") for t in ("file", "ssh")}
            rounds(bench, small, big, args.rounds)
            return 0 if report(bench, args.big, args.rounds) else 1


if __name__ == "__main__":
    sys.exit(main())
