#!/usr/bin/env bash
# The whole suite, timed: once on a quiet machine, then RUNS times (default 3) while busy loops keep
# twice the machine's cores loaded (what the suite must survive without retries). Extra arguments go
# to pytest, e.g. `bash scripts/test-under-load.sh 3 -m "not image"`. Prints one line per run.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
shift || true
bash scripts/setup.sh

burners=()
stop_load() {
  for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null || true; done
  burners=()
}
trap stop_load EXIT

timed_run() {
  local label=$1 start status
  shift
  start=$(date +%s)
  status=0
  .venv/bin/pytest -q -p no:cacheprovider "$@" >"/tmp/k0sctl-resource-suite-$label.log" 2>&1 || status=$?
  printf '%-8s exit %s, %s s, %s\n' "$label" "$status" "$(($(date +%s) - start))" \
    "$(tail -n 1 "/tmp/k0sctl-resource-suite-$label.log")"
}

timed_run quiet "$@"
for _ in $(seq $((2 * $(nproc)))); do
  (while :; do :; done) &
  burners+=("$!")
done
for i in $(seq "$runs"); do
  timed_run "loaded$i" "$@"
done
