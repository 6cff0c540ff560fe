"""Benchmark: memory and time of a `put backup` and a `get` as the archive grows (1 MB, 100 MB, 1 GB).

Runs the installed `k0sctl-resource` as Concourse does (JSON on stdin, a subprocess per step) against a
file:// bare backup repository, with the k0sctl test double writing an archive of N bytes (scenario
keys `backup_bytes`, `backup_gzip_level: 0`: a valid tar.gz of random data, written streaming). For
every step it reports:

- wall time, split into k0sctl, git and the resource's own work: `git` and `k0sctl` are wrapped by
  small shell scripts first on PATH that log when each call starts and ends (the union of the
  intervals is that tool's time; the rest of the wall time is the resource's own, Python start
  included);
- peak RSS of the process tree, sampled from /proc every 10 ms: the sum of the RSS of every process
  alive at one moment. "ours" is the resource's Python process and every git process it starts on
  the client side; "server" is what file:// runs for the repository's side (upload-pack,
  receive-pack and their children: over SSH or HTTPS they run on the server, not in the container);
  k0sctl (the double, a stand-in for the real binary) and the timing wrappers are left out.
  "py" is the Python process's own high-water mark (VmHWM) and "git1" the largest VmHWM of any
  single git process, both read from /proc while the process lives.

    .venv/bin/python bench/bench_archive_memory.py [--sizes 1M,100M,1G] [--mode recipients,passphrase]
                                                   [--repeat 1] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import DOUBLE_DIR  # noqa: E402
from tests.support.backup_support import age_key, backup_source, bare_repo, put_request  # noqa: E402
from tests.support.fixtures import k0sctl_yaml  # noqa: E402
from tests.support.resource import executable  # noqa: E402

WRAPPER = """#!/bin/bash
# bench timing wrapper
start=$(date +%s%N)
{real} "$@"
rc=$?
echo "{name} $start $(date +%s%N)" >> "$BENCH_TIMES"
exit $rc
"""
SERVER_SIDE = ("upload-pack", "receive-pack")
MIB = 1024 * 1024


def parse_size(text: str) -> int:
    units = {"K": 10**3, "M": 10**6, "G": 10**9}
    text = text.strip().upper()
    return int(float(text[:-1]) * units[text[-1]]) if text[-1] in units else int(text)


@dataclass
class Proc:
    pid: int
    ppid: int
    comm: str
    cmdline: str
    rss: int
    hwm: int


def read_procs() -> dict[int, Proc]:
    procs: dict[int, Proc] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
            with open(f"/proc/{entry}/status", "rb") as fh:
                status = fh.read().decode(errors="replace")
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        fields = {line.split(":")[0]: line.split(":")[1].split() for line in status.splitlines() if ":" in line}
        rss = int(fields.get("VmRSS", ["0"])[0]) * 1024
        hwm = int(fields.get("VmHWM", ["0"])[0]) * 1024
        procs[int(entry)] = Proc(int(entry), ppid, comm, cmdline, rss, hwm)
    return procs


def kind_of(pid: int, procs: dict[int, Proc], root: int) -> str:
    """ours / server / k0sctl / wrapper for a process of the tree under `root`."""
    proc = procs[pid]
    if (proc.comm == "bash" and "bench-wrap/" in proc.cmdline) or proc.comm == "date":
        return "wrapper"
    chain = pid
    while chain in procs and chain != root:
        p = procs[chain]
        if "k0sctl_double" in p.cmdline or p.comm == "k0sctl":
            return "k0sctl"
        if any(s in p.comm or s in p.cmdline for s in SERVER_SIDE):
            return "server"
        chain = p.ppid
    return "ours"


@dataclass
class Peaks:
    ours: int = 0
    server: int = 0
    py: int = 0
    git1: int = 0
    seen: set[str] = field(default_factory=set)


def sample(root: int, done: threading.Event, peaks: Peaks) -> None:
    while not done.is_set():
        procs = read_procs()
        tree = {root}
        grew = True
        while grew:
            grew = False
            for p in procs.values():
                if p.ppid in tree and p.pid not in tree:
                    tree.add(p.pid)
                    grew = True
        sums = {"ours": 0, "server": 0}
        for pid in tree:
            if pid not in procs:
                continue
            kind = kind_of(pid, procs, root)
            p = procs[pid]
            if kind in sums:
                sums[kind] += p.rss
            if pid == root:
                peaks.py = max(peaks.py, p.hwm)
            elif kind == "ours" and p.comm.startswith("git"):
                peaks.git1 = max(peaks.git1, p.hwm)
                peaks.seen.add(f"{kind}:{p.comm}")
        peaks.ours = max(peaks.ours, sums["ours"])
        peaks.server = max(peaks.server, sums["server"])
        done.wait(0.01)


def union_seconds(intervals: list[tuple[int, int]]) -> float:
    total = 0
    end = -1
    for start, stop in sorted(intervals):
        if start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total / 1e9


@dataclass
class Lab:
    work: Path
    wrappers: Path
    state: Path

    def env(self, times: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BUILD_", "ATC_", "K0SCTL_DOUBLE"))}
        env.update(TMPDIR=str(self.work / "tmp"), HOME=str(self.work / "home"), NO_COLOR="1",
                   PATH=os.pathsep.join([str(self.wrappers), env.get("PATH", "")]),
                   K0SCTL_DOUBLE_STATE=str(self.state), BENCH_TIMES=str(times))
        return env

    def step(self, args: list[str], request: Any) -> tuple[dict[str, float], Any]:
        fd, name = tempfile.mkstemp(dir=self.work, prefix="times-")
        os.close(fd)
        times = Path(name)
        started = time.perf_counter_ns()
        proc = subprocess.Popen([executable(), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=self.env(times))
        peaks = Peaks()
        done = threading.Event()
        sampler = threading.Thread(target=sample, args=(proc.pid, done, peaks), daemon=True)
        sampler.start()
        out, err = proc.communicate(json.dumps(request).encode())
        wall = (time.perf_counter_ns() - started) / 1e9
        done.set()
        sampler.join()
        if proc.returncode != 0:
            raise SystemExit(f"{args[0]} failed:\n{err.decode(errors='replace')}")
        spans: dict[str, list[tuple[int, int]]] = {"git": [], "k0sctl": []}
        for line in times.read_text().splitlines():
            name, start, stop = line.split()
            spans[name].append((int(start), int(stop)))
        k0sctl = union_seconds(spans["k0sctl"])
        git = union_seconds(spans["git"])
        both = union_seconds(spans["git"] + spans["k0sctl"])
        row = {"wall": wall, "k0sctl": k0sctl, "git": git, "own": wall - both, "ours": peaks.ours / MIB,
               "server": peaks.server / MIB, "py": peaks.py / MIB, "git1": peaks.git1 / MIB}
        return row, json.loads(out)


def make_lab(work: Path) -> Lab:
    wrappers = work / "bench-wrap"
    wrappers.mkdir(parents=True)
    real_git = shutil.which("git")
    assert real_git, "git is not installed"
    for name, real in (("git", real_git), ("k0sctl", str(DOUBLE_DIR / "k0sctl"))):
        path = wrappers / name
        path.write_text(WRAPPER.format(name=name, real=real), encoding="utf-8")
        path.chmod(0o755)
    for d in ("tmp", "home", "build/config"):
        (work / d).mkdir(parents=True)
    (work / "build/config/k0sctl.yaml").write_text(k0sctl_yaml(), encoding="utf-8")
    return Lab(work, wrappers, work / "double-state.json")


def source_for(mode: str, repo: Path, work: Path) -> dict[str, Any]:
    if mode == "passphrase":
        return backup_source(f"file://{repo}", passphrase=os.urandom(12).hex())
    key = age_key(work, f"age-{repo.name}")
    return backup_source(f"file://{repo}", recipients=[key.recipient], identities=key.identity)


def cycle(lab: Lab, size: int, mode: str, index: int) -> tuple[dict[str, float], dict[str, float]]:
    repo = bare_repo(lab.work / f"repo-{mode}-{size}-{index}.git")
    lab.state.write_text(json.dumps({"running": True, "backup_bytes": size, "backup_gzip_level": 0}))
    source = source_for(mode, repo, lab.work)
    put, answer = lab.step(["out", str(lab.work / "build")], put_request(source, "backup"))
    out = lab.work / f"get-{index}"
    get, _ = lab.step(["in", str(out)], {"source": source, "version": answer["version"]})
    shutil.rmtree(out)
    shutil.rmtree(repo)
    return put, get


COLUMNS = ("wall", "k0sctl", "git", "own", "ours", "server", "py", "git1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1M,100M,1G")
    parser.add_argument("--mode", default="recipients,passphrase")
    parser.add_argument("--repeat", type=int, default=1, help="runs per size and mode; the table shows medians")
    parser.add_argument("--work", type=Path, default=None, help="scratch directory (default: a new one in /tmp)")
    parser.add_argument("--json", type=Path, default=None, help="also write the medians here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-archive-", dir=args.work))
    lab = make_lab(work)
    rows: list[dict[str, Any]] = []
    print(f"{'mode':<11}{'size':>6} {'step':<5}{'wall s':>8}{'k0sctl':>8}{'git':>8}{'own':>8}{'own%':>6}"
          f"{'ours MiB':>10}{'server':>8}{'py':>7}{'git1':>7}", flush=True)
    try:
        for mode in args.mode.split(","):
            for text in args.sizes.split(","):
                size = parse_size(text)
                runs = [cycle(lab, size, mode, i) for i in range(args.repeat)]
                for step, at in (("put", 0), ("get", 1)):
                    med = {c: statistics.median(r[at][c] for r in runs) for c in COLUMNS}
                    rows.append({"mode": mode, "size": text, "step": step, **med})
                    print(f"{mode:<11}{text:>6} {step:<5}{med['wall']:8.2f}{med['k0sctl']:8.2f}{med['git']:8.2f}"
                          f"{med['own']:8.2f}{100 * med['own'] / med['wall']:5.0f}%{med['ours']:10.1f}"
                          f"{med['server']:8.1f}{med['py']:7.1f}{med['git1']:7.1f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
