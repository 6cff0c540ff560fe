"""Start-up cost of `k0sctl-resource check` with an empty request, next to a bare interpreter.

Both are measured interleaved in one run (this machine is shared and noisy), median of N each.
Target (issue 2): the check at most 80 ms above `python -c pass`.

    python bench/bench_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_MS = 80.0


def timed(argv: list[str], stdin: bytes, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(argv, input=stdin, capture_output=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed: {proc.stderr.decode(errors='replace')}")
    return elapsed * 1000


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    cli = str(Path(sys.executable).parent / "k0sctl-resource")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "TMPDIR": tmp}
        bare: list[float] = []
        check: list[float] = []
        for _ in range(3):  # warm the page cache
            timed([sys.executable, "-c", "pass"], b"", env)
            timed([cli, "check"], b'{"source": {}}', env)
        for _ in range(args.runs):
            bare.append(timed([sys.executable, "-c", "pass"], b"", env))
            check.append(timed([cli, "check"], b'{"source": {}}', env))
    b, c = statistics.median(bare), statistics.median(check)
    print(f"python -c pass             median {b:7.1f} ms  (n={args.runs})")
    print(f"k0sctl-resource check {{}}   median {c:7.1f} ms  (n={args.runs})")
    print(f"overhead                          {c - b:7.1f} ms  (target <= {TARGET_MS:.0f} ms)")
    return 0 if c - b <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
