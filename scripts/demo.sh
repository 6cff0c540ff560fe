#!/usr/bin/env bash
# DEMO: sets everything up, then runs the resource's main job against local stand-ins:
# init, backup, check, get and ping, with a backup repository served over SSH by a local sshd, that
# sshd as the cluster's one node, and the k0sctl TEST DOUBLE instead of a real cluster. Nothing outside
# a temporary directory is touched, and everything started is stopped again.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python scripts/demo.py "$@"
