"""Benchmark: retention over N archives (10,000 by default) in the backup branch's tree.

1. The policy alone (`gitstore.retention.decide`, in this process): wall time and Python's peak
   allocation (tracemalloc) over N (name, Created-At) pairs.
2. The real `k0sctl-resource out` as Concourse runs it (JSON on stdin, a subprocess, the k0sctl test
   double on PATH) against a file:// bare repository whose tip holds N archives, one an hour back from
   an hour ago (a 14-month history of hourly backups, every one still in the tree: the worst case):
   `prune` with `dry_run: true`, `backup` (adds one archive and applies the policy: the first one
   removes almost every archive), `backup` again (the steady state: one in, one out), and `verify`.
   For each: wall time and the peak RSS of the largest process of the step's tree (ru_maxrss of
   wait4: the Python process or one of its gits).

The policy: keep_daily 7, keep_weekly 4, keep_monthly 12, keep_yearly 3 in Europe/Berlin.

    .venv/bin/python bench/bench_retention.py [--archives 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support import DOUBLE_DIR  # noqa: E402
from tests.support.backup_support import backup_source, bare_repo, put_request  # noqa: E402
from tests.support.fixtures import CLUSTER_NAME, Double, k0sctl_yaml  # noqa: E402
from tests.support.resource import Resource, executable  # noqa: E402

from k0sctl_resource.config.models import Retention  # noqa: E402
from k0sctl_resource.gitstore.retention import Archive, decide  # noqa: E402

POLICY = {"keep_daily": 7, "keep_weekly": 4, "keep_monthly": 12, "keep_yearly": 3, "timezone": "Europe/Berlin"}


def moments(count: int) -> list[datetime]:
    newest = datetime.now(UTC).replace(microsecond=0, second=0, minute=0) - timedelta(hours=1)
    return [newest - timedelta(hours=i) for i in range(count)][::-1]


def seed(repo: Path, count: int) -> None:
    """One commit on the branch whose tree holds `count` archives (one small blob shared by all), its message
    the record of the newest one."""
    names = [f"{CLUSTER_NAME}-{m.strftime('%Y%m%dT%H%M%SZ')}.tar.gz.age" for m in moments(count)]
    newest = names[-1]
    message = (f"backup {CLUSTER_NAME} {newest}\n\nseeded for the benchmark\n\nK0sctl-Resource-Kind: backup\n"
               f"Archive: {newest}\nArchive-Path: backups/{newest}\n"
               f"Created-At: {moments(1)[0].strftime('%Y-%m-%dT%H:%M:%SZ')}\nCluster: {CLUSTER_NAME}\n"
               "Encrypted: false\n").encode()
    lines = [b"blob\nmark :1\ndata 4\nseed\n",
             f"commit refs/heads/k0sctl-backup\ncommitter b <b@x> {int(time.time())} +0000\n"
             f"data {len(message)}\n".encode() + message]
    lines += [f"M 100644 :1 backups/{name}\n".encode() for name in names]
    lines.append(b"\ndone\n")
    subprocess.run(["git", "-C", str(repo), "fast-import", "--quiet", "--done"], input=b"".join(lines), check=True)


def policy_alone(count: int, repeat: int) -> tuple[float, float, int]:
    archives = [Archive(f"c-{m.strftime('%Y%m%dT%H%M%SZ')}.tar.gz.age", m) for m in moments(count)]
    policy = Retention(**POLICY)  # type: ignore[arg-type]
    now = datetime.now(UTC)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        decision = decide(archives, policy, now=now)
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    decide(archives, policy, now=now)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return statistics.median(times), peak / 2**20, len(decision.kept)


# Runs one step and writes the peak RSS (KiB) of its largest process (ru_maxrss of RUSAGE_CHILDREN: the step
# and every git it waited for) to the file named by argv[1]; a fresh process per step, so no earlier step counts.
WRAPPER = """
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code)
"""


def step(res: Resource, workdir: Path, request: dict[str, Any]) -> tuple[float, float, dict[str, str]]:
    """One `out` step: wall seconds, peak RSS in MiB of its largest process, its metadata."""
    rss_file = workdir.parent / "rss"
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", WRAPPER, str(rss_file), executable(), "out", str(workdir)],
                          input=json.dumps(request).encode(), capture_output=True, env=res.environment(), check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"step failed: {proc.stderr.decode()[-2000:]}")
    answer = json.loads(proc.stdout)
    return wall, int(rss_file.read_text()) / 1024, {m["name"]: m["value"] for m in answer.get("metadata", [])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archives", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    seconds, peak, kept = policy_alone(args.archives, args.repeat)
    print(f"policy alone over {args.archives} archives: {seconds * 1000:.1f} ms (median of {args.repeat}), "
          f"peak allocation {peak:.1f} MiB, kept {kept}")

    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        base = Path(tmp)
        repo = bare_repo(base / "backups.git")
        started = time.perf_counter()
        seed(repo, args.archives)
        print(f"seeded a tip with {args.archives} archives in {time.perf_counter() - started:.1f} s")
        double = Double(base / "double")
        double.dir.mkdir()
        double.set(running=True, backup_bytes=4096)
        workdir = base / "build"
        (workdir / "config").mkdir(parents=True)
        (workdir / "config" / "k0sctl.yaml").write_text(k0sctl_yaml(), encoding="utf-8")
        (base / "home").mkdir()
        (base / "tmp").mkdir()
        res = Resource(home=base / "home", tmpdir=base / "tmp", path_prefix=[DOUBLE_DIR],
                       env={"K0SCTL_DOUBLE_STATE": str(double.state_file),
                            "K0SCTL_DOUBLE_RECORD": str(double.record_file)})
        source = backup_source(f"file://{repo}", plaintext=True, retention=POLICY)
        print(f"{'step':<34} {'wall s':>8} {'peak RSS MiB':>13}  result")
        for label, request in (
            ("prune dry_run", put_request(source, "prune", dry_run=True)),
            ("backup (first prune of the tree)", put_request(source, "backup")),
            ("backup (steady state)", put_request(source, "backup")),
            ("verify", put_request(source, "verify", max_age="2h")),
        ):
            wall, rss, meta = step(res, workdir, request)
            result = f"kept {meta.get('kept_archives', '-')}, removed {meta.get('removed_archives', '-')}"
            print(f"{label:<34} {wall:>8.2f} {rss:>13.1f}  {result if label != 'verify' else meta.get('status')}")


if __name__ == "__main__":
    main()
