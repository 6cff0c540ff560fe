"""What making k0sctl's output safe costs, next to just reading it.

10 MB of real k0sctl output (the transcripts in tests/contract/data/transcripts, both formats, repeated), plus
the same size of hostile output (one 10 MB line of letters; lines full of `scheme://` without credentials),
each (a) read from a pipe and split into lines, as the supervisor does, and (b) the same, every line made safe: secrets
masked by the redactor (registered: an SSH key line by line, an age identity, a passphrase, a URL password)
and control characters escaped (`Redactor.safe`), long lines cut into pieces by `split_long_line`. Medians of
the rounds, in MB/s, and the ratio of (b) to (a).

    .venv/bin/python bench/bench_redact.py [--rounds 5] [--mb 10]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pyrage import x25519

from k0sctl_resource.k0sctl import process
from k0sctl_resource.runtime.redact import REDACT

ROOT = Path(__file__).resolve().parent.parent
TRANSCRIPTS = ROOT / "tests" / "contract" / "data" / "transcripts"
SECRETS = ["correct-horse-battery-staple", "url-password-of-ci"]


def ssh_key() -> str:
    """A throwaway ed25519 private key made now: the multi-line secret k0sctl's output must never show."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "key"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
        return path.read_text(encoding="utf-8").strip()


def age_identity() -> str:
    """A throwaway age identity made now (AGE-SECRET-KEY-1…), the one-line key kind the output must never show."""
    return str(x25519.Identity.generate())


def inputs(size: int) -> dict[str, bytes]:
    real = b"".join(path.read_bytes() for path in sorted(TRANSCRIPTS.glob("*/*/*.txt")))
    return {
        "k0sctl transcripts": (real * (size // len(real) + 1))[:size],
        "one line of letters": b"a" * size,
        "schemes without credentials": (b"x://y:" * (size // 6 + 1))[:size],
    }


def read_lines(path: Path, handle: Callable[[str], None]) -> None:
    """The supervisor's loop: 64 KiB reads from a pipe (`cat` writing the file), lines, and pieces of a line
    longer than MAX_LINE."""
    with subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        partial = b""
        while chunk := os.read(fd, 65536):
            *lines, partial = (partial + chunk).split(b"\n")
            for raw in lines:
                handle(raw.decode("utf-8", errors="replace").rstrip("\r"))
            partial = process.split_long_line(partial, handle)
        handle(partial.decode("utf-8", errors="replace"))


def ignore(line: str) -> None:
    del line


def shown(line: str) -> None:
    REDACT.safe(line)


def seconds(call: Callable[[Path, Callable[[str], None]], None], path: Path, handle: Callable[[str], None]) -> float:
    started = time.perf_counter()
    call(path, handle)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--mb", type=int, default=10)
    args = parser.parse_args()
    REDACT.add(ssh_key(), age_identity(), *SECRETS)
    size = args.mb * 1_000_000
    print(f"{args.mb} MB per input, {args.rounds} rounds, medians")
    print(f"{'input':<30} {'read MB/s':>10} {'safe MB/s':>10} {'ratio':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in inputs(size).items():
            path = Path(tmp) / "output"
            path.write_bytes(data)
            plain, safe = [], []
            for _ in range(args.rounds):  # interleaved: a busy machine slows both alike
                plain.append(seconds(read_lines, path, ignore))
                safe.append(seconds(read_lines, path, shown))
            mb = size / 1e6
            read_s, safe_s = statistics.median(plain), statistics.median(safe)
            print(f"{name:<30} {mb / read_s:>10.1f} {mb / safe_s:>10.1f} {safe_s / read_s:>6.1f}")


if __name__ == "__main__":
    main()
