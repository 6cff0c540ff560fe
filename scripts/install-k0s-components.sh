#!/usr/bin/env bash
# Build the control-plane components the real-k0s test tier runs beside a k0s built without its
# embedded binaries (-tags=noembedbins): etcd and kube-apiserver, from the Go module proxy alone, into
#   ${K0SCTL_RESOURCE_CACHE:-$HOME/.cache/k0sctl-resource}/k0s-components/<name>/<version>/<name>
# and print the path of each on stdout (progress and notes go to stderr).
#
# usage: scripts/install-k0s-components.sh        (etcd v3.5.16, kube-apiserver v1.31.2: k0s v1.31.2's)
#
# A binary already in place is reused as is (its file name carries the version). How each is built:
#   etcd            the module go.etcd.io/etcd/server/v3 with its replace blocks (../api, ../pkg, ... in
#                   etcd's repository) dropped, so its sibling modules come from the proxy at the
#                   versions it requires;
#   kube-apiserver  the module k8s.io/kubernetes with each `./staging/src/k8s.io/X` replacement turned
#                   into k8s.io/X v0.<minor>.<patch> from the proxy, built with -tags=providerless.
# Cold, both take about six minutes on two cores and need about 3 GB of module cache.
#
# Environment:
#   K0SCTL_RESOURCE_CACHE   cache root (default ~/.cache/k0sctl-resource)
#
# Exit status: 0 all built; 1 a build failed; 3 a prerequisite is missing (no Go, or the Go module
# proxy cannot be reached).
set -euo pipefail

readonly ETCD_VERSION=v3.5.16
readonly KUBE_VERSION=v1.31.2
readonly EXIT_BUILD=1 EXIT_PREREQ=3

CLEANUP=()
cleanup() {
  [[ ${#CLEANUP[@]} -eq 0 ]] && return 0
  chmod -R u+w "${CLEANUP[@]}" 2>/dev/null || true # module copies are read-only, as in the module cache
  rm -rf "${CLEANUP[@]}"
}
trap cleanup EXIT

note() { printf 'install-k0s-components: %s\n' "$*" >&2; }
die() {
  local code=$1
  shift
  note "error: $*"
  exit "$code"
}

# Download one module and print its directory in the module cache.
module_dir() {
  local output
  if ! output=$(go mod download -json "$1" 2>&1); then
    if grep -qiE 'dial tcp|no such host|connection refused|network is unreachable|i/o timeout|TLS handshake|proxyconnect' <<<"$output"; then
      die "$EXIT_PREREQ" "the Go module proxy ($(go env GOPROXY)) cannot be reached while downloading $1"
    fi
    die "$EXIT_BUILD" "cannot download $1: $(grep -v '^[[:space:]]*$' <<<"$output" | tail -n 1)"
  fi
  sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$output" | head -n 1
}

# A writable copy of a module's source in a temporary directory; prints its path.
writable_copy() {
  local dir work
  dir=$(module_dir "$1") || exit $?
  [[ -n $dir && -d $dir ]] || die "$EXIT_BUILD" "go mod download gave no source directory for $1"
  work=$(mktemp -d)
  CLEANUP+=("$work")
  cp -R "$dir" "$work/src"
  chmod -R u+w "$work/src"
  printf '%s\n' "$work/src"
}

# Build into $dest (via a temporary name, so an interrupted build leaves nothing that looks done).
build() {
  local src=$1 dest=$2 pkg=$3
  shift 3
  mkdir -p "$(dirname "$dest")"
  CLEANUP+=("$dest.tmp.$$")
  (cd "$src" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath "$@" -o "$dest.tmp.$$" "$pkg") >&2 ||
    die "$EXIT_BUILD" "go build of $pkg failed"
  mv -f "$dest.tmp.$$" "$dest"
}

install_etcd() {
  local dest=$CACHE_ROOT/k0s-components/etcd/$ETCD_VERSION/etcd src mod
  if [[ -x $dest ]]; then
    note "etcd $ETCD_VERSION already built"
  else
    note "building etcd $ETCD_VERSION"
    src=$(writable_copy "go.etcd.io/etcd/server/v3@$ETCD_VERSION") || exit $?
    for mod in $(cd "$src" && go mod edit -json | sed -n 's/.*"Path": "\(go\.etcd\.io\/etcd\/[^"]*\)".*/\1/p' | sort -u); do
      (cd "$src" && go mod edit "-dropreplace=$mod")
    done
    (cd "$src" && GOFLAGS=-mod=mod go mod tidy >&2) || die "$EXIT_BUILD" "go mod tidy of etcd's server module failed"
    build "$src" "$dest" . -ldflags "-s -w"
  fi
  printf '%s\n' "$dest"
}

install_kube_apiserver() {
  local dest=$CACHE_ROOT/k0s-components/kube-apiserver/$KUBE_VERSION/kube-apiserver src staged
  local minor_patch=${KUBE_VERSION#v1.} major=1 minor
  minor=${minor_patch%%.*}
  if [[ -x $dest ]]; then
    note "kube-apiserver $KUBE_VERSION already built"
  else
    note "building kube-apiserver $KUBE_VERSION"
    src=$(writable_copy "k8s.io/kubernetes@$KUBE_VERSION") || exit $?
    local edits=()
    for staged in $(cd "$src" && go mod edit -json | sed -n 's/.*"Path": "\.\/staging\/src\/\(k8s\.io\/[^"]*\)".*/\1/p'); do
      edits+=("-replace=$staged=$staged@v0.$minor_patch")
    done
    ((${#edits[@]})) || die "$EXIT_BUILD" "k8s.io/kubernetes@$KUBE_VERSION has no ./staging replacements to turn into module versions"
    (cd "$src" && go mod edit "${edits[@]}")
    local v=k8s.io/component-base/version
    build "$src" "$dest" ./cmd/kube-apiserver -tags=providerless -ldflags "-s -w -X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=$major -X $v.gitMinor=$minor -X $v.gitTreeState=clean -X $v.gitCommit=not_available"
  fi
  printf '%s\n' "$dest"
}

main() {
  CACHE_ROOT=${K0SCTL_RESOURCE_CACHE:-$HOME/.cache/k0sctl-resource}
  mkdir -p "$CACHE_ROOT"
  if command -v flock >/dev/null 2>&1; then # one build at a time per cache
    exec 9>"$CACHE_ROOT/.install-k0s-components.lock"
    flock 9
  fi
  if [[ ! -x $CACHE_ROOT/k0s-components/etcd/$ETCD_VERSION/etcd || ! -x $CACHE_ROOT/k0s-components/kube-apiserver/$KUBE_VERSION/kube-apiserver ]]; then
    command -v go >/dev/null 2>&1 || die "$EXIT_PREREQ" "Go is not installed (need a Go toolchain on PATH to build etcd and kube-apiserver)"
    export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false GOWORK=off
  fi
  install_etcd
  install_kube_apiserver
}

main "$@"
