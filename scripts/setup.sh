#!/usr/bin/env bash
# Sets up everything the demo and the test suite need on a fresh Debian machine (run as root):
# Debian packages, the project's virtualenv, and the real k0sctl (and fly) built from the Go module proxy.
# Safe to run again: each step is skipped when its result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Debian packages: git and OpenSSH (client for k0sctl/git, server for the test nodes), age (the CLI the
# tests hold our archives against), iproute2 (network namespaces), podman/runc/debootstrap (image tests),
# graphviz (the pipeline picture), shellcheck (the task scripts and assets, tests/system/test_workflows.py),
# mtr-tiny is not needed: the route report is our own.
packages=(git openssh-client openssh-server age iproute2 procps podman runc debootstrap graphviz shellcheck
          python3-venv ca-certificates curl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  log "installing Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The virtualenv, reinstalled when pyproject.toml changes.
stamp=.venv/.pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  log "creating the virtualenv (.venv) with the package and its dev tools"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  echo "$want" > "$stamp"
fi

# Real k0sctl (default and older supported release), cached outside the repository.
if [[ -x scripts/install-k0sctl.sh ]]; then
  log "k0sctl for the tests"
  bash scripts/install-k0sctl.sh >/dev/null
fi
if [[ -x scripts/install-fly.sh ]]; then
  log "fly for pipeline validation"
  # exit 4: the Go module proxy refuses the Concourse module (it does on this kind of machine); the
  # pipeline tests then fall back to their offline checks and say so.
  bash scripts/install-fly.sh >/dev/null || { rc=$?; [[ $rc -eq 4 ]] || exit "$rc"
    log "fly: the Go module proxy does not serve Concourse; fly validation is skipped"; }
fi
log "setup done"
