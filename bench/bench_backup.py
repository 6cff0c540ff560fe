"""Benchmark of the backup repository: does any step cost more as the history grows?

Builds two bare repositories served over SSH by a real sshd on 127.0.0.1 (git protocol v2, filters
allowed, as GitHub/GitLab/Gitea serve): one with 10 backup commits and one with 1,000 (every archive a
few MB of random data and kept in the tree: the worst case), written with `git fast-import`. Then runs
the real `k0sctl-resource` steps as Concourse does (JSON on stdin, subprocesses, k0sctl test double on
PATH) and prints a table:

- cold check (empty cache, a version one behind the tip), warm check (nothing new);
- get of the newest version (a real encrypted archive), with the bytes that came over SSH (counted by
  an `ssh` wrapper first on PATH) against the archive's size;
- put backup;
- bare `git ls-remote` over the same SSH, as the floor for a warm check.

    python bench/bench_backup.py [--archive-mb 2] [--big 1000] [--repeat 5]
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support import DOUBLE_DIR  # noqa: E402
from tests.support.backup_support import (  # noqa: E402
    age_key,
    backup_source,
    bare_repo,
    build_history,
    put_request,
    ssh_counter_dir,
)
from tests.support.resource import executable  # noqa: E402
from tests.support.sshd import SshServer  # noqa: E402


@dataclass
class Lab:
    work: Path
    server: SshServer
    key_identity: str
    key_recipient: str
    double_state: Path
    counter_dir: Path

    def source(self, repo: Path) -> dict[str, Any]:
        return backup_source(self.server.url(repo), private_key=self.server.client_key,
                             known_hosts=self.server.known_hosts, recipients=[self.key_recipient],
                             identities=self.key_identity)

    def env(self, tmpdir: Path, *, count_to: Path | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("BUILD_", "K0SCTL_DOUBLE"))}
        path = [str(DOUBLE_DIR), env.get("PATH", "")]
        if count_to is not None:
            path.insert(0, str(self.counter_dir))
            env["BENCH_SSH_COUNT"] = str(count_to)
        env.update(TMPDIR=str(tmpdir), HOME=str(self.work / "home"), NO_COLOR="1",
                   PATH=os.pathsep.join(path), K0SCTL_DOUBLE_STATE=str(self.double_state))
        return env

    def step(self, args: list[str], request: Any, tmpdir: Path, *,
             count_to: Path | None = None) -> tuple[float, Any, str]:
        started = time.perf_counter()
        proc = subprocess.run([executable(), *args], input=json.dumps(request).encode(), capture_output=True,
                              env=self.env(tmpdir, count_to=count_to), check=False)
        elapsed = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"{args[0]} failed:\n{proc.stderr.decode(errors='replace')}")
        return elapsed, json.loads(proc.stdout), proc.stderr.decode(errors="replace")


def median_of(repeat: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(repeat))


def measure(lab: Lab, repo: Path, repeat: int) -> dict[str, float]:
    source = lab.source(repo)
    chain = subprocess.run(["git", "-C", str(repo), "rev-list", "--first-parent", "--reverse", "k0sctl-backup"],
                           capture_output=True, text=True, check=True).stdout.split()
    tmpdir = Path(tempfile.mkdtemp(dir=lab.work, prefix="tmp-"))
    behind = {"source": source, "version": {"ref": chain[-2]}}

    def cold() -> float:
        shutil.rmtree(tmpdir / "k0sctl-check-cache", ignore_errors=True)
        return lab.step(["check"], behind, tmpdir)[0]

    results: dict[str, float] = {"cold_check": median_of(repeat, cold)}
    lab.step(["check"], behind, tmpdir)
    results["warm_check"] = median_of(repeat * 2, lambda: lab.step(["check"], behind, tmpdir)[0])

    workdir = lab.work / "build"

    def put() -> float:
        return lab.step(["out", str(workdir)], put_request(source, "backup"), tmpdir)[0]

    results["put_backup"] = median_of(max(3, repeat // 2), put)
    newest = subprocess.run(["git", "-C", str(repo), "rev-parse", "k0sctl-backup"], capture_output=True, text=True,
                            check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%(trailers:key=Archive-Path,valueonly)",
                              newest], capture_output=True, text=True, check=True).stdout.strip()
    stored = int(subprocess.run(["git", "-C", str(repo), "cat-file", "-s", f"{newest}:{archive}"],
                                capture_output=True, text=True, check=True).stdout)
    gets: list[float] = []
    over_ssh: list[int] = []
    for i in range(max(3, repeat // 2)):
        out = lab.work / f"get-{repo.name}-{i}"
        count = lab.work / f"ssh-bytes-{repo.name}-{i}"
        elapsed, _, _ = lab.step(["in", str(out)], {"source": source, "version": {"ref": newest}}, tmpdir,
                                 count_to=count)
        gets.append(elapsed)
        over_ssh.append(sum(int(x) for x in count.read_text().split()))
        shutil.rmtree(out)
    results["get_newest"] = statistics.median(gets)
    results["get_bytes"] = float(statistics.median(over_ssh))
    results["archive_bytes"] = float(stored)
    known = lab.work / "bench_known_hosts"
    known.write_text(lab.server.known_hosts + "\n")
    argv = lab.server.ssh_command(known)[:-1]  # without user@host; git adds it and the port
    port_at = argv.index("-p")
    del argv[port_at:port_at + 2]
    env = {**os.environ, "GIT_SSH_COMMAND": " ".join(argv)}

    def ls_remote() -> float:
        started = time.perf_counter()
        subprocess.run(["git", "ls-remote", lab.server.url(repo), "refs/heads/k0sctl-backup"], capture_output=True,
                       env=env, check=True)
        return time.perf_counter() - started

    results["ls_remote"] = median_of(repeat * 2, ls_remote)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--archive-mb", type=float, default=2.0, help="size of each archive in the history")
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--big", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    size = int(args.archive_mb * 1024 * 1024)
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        (work / "build" / "config").mkdir(parents=True)
        (work / "build" / "config" / "k0sctl.yaml").write_text(json.dumps({
            "apiVersion": "k0sctl.k0sproject.io/v1beta1", "kind": "Cluster", "metadata": {"name": "bench"},
            "spec": {"hosts": [{"role": "controller", "ssh": {"address": "192.0.2.10"}}],
                     "k0s": {"version": "v1.31.2+k0s.0"}}}))
        state = work / "double.json"
        state.write_text(json.dumps({"running": True, "backup_bytes": size}))
        counter = ssh_counter_dir(work)
        key = age_key(work)
        rows: dict[int, dict[str, float]] = {}
        with SshServer(work / "sshd") as server:
            lab = Lab(work, server, key.identity, key.recipient, state, counter)
            for n in (args.small, args.big):
                repo = bare_repo(work / f"history-{n}.git")
                started = time.perf_counter()
                build_history(repo, n, size, cluster="bench")
                print(f"built {n} commits of {args.archive_mb:g} MB archives in {time.perf_counter() - started:.1f}s",
                      file=sys.stderr)
                rows[n] = measure(lab, repo, args.repeat)
                shutil.rmtree(repo)
        small, big = rows[args.small], rows[args.big]
        print(f"\nbackup repository, {args.small} vs {args.big} backup commits ({args.archive_mb:g} MB archives, "
              "SSH to 127.0.0.1, medians)")
        print(f"{'measure':<28}{args.small:>12}{args.big:>12}{'ratio':>9}{'target':>10}")
        for name, label in (("cold_check", "cold check (s)"), ("warm_check", "warm check (s)"),
                            ("get_newest", "get newest (s)"), ("put_backup", "put backup (s)"),
                            ("ls_remote", "git ls-remote (s)")):
            ratio = big[name] / small[name]
            target = "<= 1.5" if name != "ls_remote" else ""
            print(f"{label:<28}{small[name]:>12.3f}{big[name]:>12.3f}{ratio:>9.2f}{target:>10}")
        for n, row in rows.items():
            print(f"get bytes over SSH / archive size at {n:>5}: {row['get_bytes']:.0f} / {row['archive_bytes']:.0f}"
                  f" = {row['get_bytes'] / row['archive_bytes']:.3f} (target <= 1.2)")
            print(f"warm check / bare git ls-remote at {n:>5}: {row['warm_check']:.3f} / {row['ls_remote']:.3f}"
                  f" = {row['warm_check'] / row['ls_remote']:.2f}x (target <= 2)")


if __name__ == "__main__":
    main()
