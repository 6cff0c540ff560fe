"""Benchmark of fleet-status: does reading 200 clusters' branches cost about one fetch of their repository?

Builds one bare repository served over SSH by a real sshd on 127.0.0.1 (git protocol v2, filters allowed):
N clusters (default 200), each with its backup branch (`--backups` commits, every archive `--archive-kb`
of random data and kept in the tree) and its drill branch (`--drills` records). Then runs the real
`k0sctl-resource fleet-status --json` (a subprocess, the key in its environment) on 1 cluster and on all
N, and as floors and comparison:

- `git ls-remote` of the repository, and one `git fetch --depth=1 --filter=tree:0` of one branch;
- the naive way: one such fetch per cluster, one after the other (what N separate checks would cost);
- the bytes that came over SSH for the N-cluster fleet-status (counted by an `ssh` wrapper) against the
  archives in the branches' tips.

    python bench/bench_fleet.py [--clusters 200] [--backups 30] [--drills 8] [--archive-kb 256] [--repeat 3]
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
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.backup_support import bare_repo, build_history, ssh_counter_dir  # noqa: E402
from tests.support.fleet_support import ClusterSpec, add_drills, clusters_yml  # noqa: E402
from tests.support.resource import executable  # noqa: E402
from tests.support.sshd import SshServer  # noqa: E402


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def median_of(repeat: int, fn: Callable[[], object]) -> float:
    return statistics.median(timed(fn) for _ in range(repeat))


def build(repo: Path, clusters: int, backups: int, drills: int, archive: int) -> list[ClusterSpec]:
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    specs = [ClusterSpec(f"c{i:03d}", backups=backups,
                         drills=tuple(("passed", timedelta(days=7 * (drills - j)), 60.0 + i) for j in range(drills)))
             for i in range(clusters)]
    for spec in specs:
        start = now - timedelta(hours=1, minutes=backups)
        build_history(repo, backups, archive, cluster=spec.name, branch=spec.branch, start=start)
        add_drills(repo, spec.branch, spec.drills, now)
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--backups", type=int, default=30)
    parser.add_argument("--drills", type=int, default=8)
    parser.add_argument("--archive-kb", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        work = Path(tmp)
        repo = bare_repo(work / "backups.git")
        started = time.perf_counter()
        specs = build(repo, args.clusters, args.backups, args.drills, args.archive_kb * 1024)
        print(f"built {args.clusters} clusters x {args.backups} backups ({args.archive_kb} KiB) + {args.drills} drills "
              f"in {time.perf_counter() - started:.1f}s", file=sys.stderr)
        counter = ssh_counter_dir(work)
        with SshServer(work / "sshd") as server:
            url = server.url(repo)
            env = {**os.environ, "K0SCTL_FLEET_BACKUP_PRIVATE_KEY": server.client_key, "HOME": str(work)}

            def status(count: int, count_to: Path | None = None) -> dict[str, object]:
                clusters = clusters_yml(work / f"clusters-{count}.yml", specs[:count], url,
                                        known_hosts=server.known_hosts, timeout="120s")
                run_env = dict(env)
                if count_to is not None:
                    run_env.update(PATH=f"{counter}{os.pathsep}{env['PATH']}", BENCH_SSH_COUNT=str(count_to))
                proc = subprocess.run([executable(), "fleet-status", "-f", str(clusters), "--json"], env=run_env,
                                      capture_output=True, text=True, check=False)
                report = json.loads(proc.stdout)
                if report["status"] != "ok":
                    raise SystemExit(f"fleet-status did not answer ok:\n{proc.stdout[:2000]}\n{proc.stderr}")
                return dict(report)

            known = work / "known_hosts"
            known.write_text(server.known_hosts + "\n")
            argv = server.ssh_command(known)[:-1]
            del argv[argv.index("-p"):argv.index("-p") + 2]
            git_env = {**os.environ, "GIT_SSH_COMMAND": " ".join(argv)}

            def fetch_one(branch: str) -> None:
                target = Path(tempfile.mkdtemp(dir=work))
                subprocess.run(["git", "init", "-q", "--bare", str(target)], check=True)
                subprocess.run(["git", "-C", str(target), "fetch", "-q", "--depth=1", "--filter=tree:0", url,
                                f"+refs/heads/{branch}:refs/x"], env=git_env, check=True, capture_output=True)
                shutil.rmtree(target)

            def naive() -> None:
                for spec in specs:
                    fetch_one(spec.branch)

            rows = {
                "git ls-remote (floor)": median_of(args.repeat, lambda: subprocess.run(
                    ["git", "ls-remote", "--heads", url], env=git_env, check=True, capture_output=True)),
                "one fetch of one branch": median_of(args.repeat, lambda: fetch_one(specs[0].branch)),
                "fleet-status, 1 cluster": median_of(args.repeat, lambda: status(1)),
                f"fleet-status, {args.clusters} clusters": median_of(args.repeat, lambda: status(args.clusters)),
                f"naive: {args.clusters} fetches in a row": timed(naive),
            }
            count = work / "ssh-bytes"
            status(args.clusters, count_to=count)
            over_ssh = sum(int(x) for x in count.read_text().split())
        print(f"\nfleet-status, one repository with {args.clusters} clusters' branches ({args.backups} backups of "
              f"{args.archive_kb} KiB, {args.drills} drills each; SSH to 127.0.0.1; medians of {args.repeat})")
        for label, seconds in rows.items():
            print(f"{label:<40}{seconds:>9.3f} s")
        tips = args.clusters * min(args.backups, 1) * args.archive_kb * 1024
        print(f"{'bytes over SSH, all clusters':<40}{over_ssh:>9d} B  (newest archives alone: {tips} B)")


if __name__ == "__main__":
    main()
