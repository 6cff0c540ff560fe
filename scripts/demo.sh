#!/usr/bin/env bash
# DEMO: sets everything up, then runs the resource with the REAL k0sctl (the pinned release) against a k0s test node
# (tests/support/k0s_node.py: sshd in its own network/UTS/mount namespaces, k0s replaced by a small double that
# k0sctl uploads): init, apply, backup, check, get, reset, apply with restore_from. Needs root (network
# namespaces). Nothing outside a temporary directory and the namespaces it creates is touched, and
# everything started is stopped again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
