#!/usr/bin/env bash
# The whole test suite, as CI runs it: setup, lint, type check, every test (the image tests included).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not image"` for the fast path.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "==> ruff" >&2
.venv/bin/ruff check .
echo "==> mypy" >&2
.venv/bin/mypy
echo "==> import contracts" >&2
.venv/bin/lint-imports
echo "==> pytest" >&2
exec .venv/bin/pytest "$@"
