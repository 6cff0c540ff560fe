#!/usr/bin/env bash
# Build real k0sctl binaries from the Go module proxy, one per version, into
#   ${K0SCTL_RESOURCE_CACHE:-$HOME/.cache/k0sctl-resource}/k0sctl/<VERSION>/k0sctl
# and print the path of each on stdout (progress and notes go to stderr).
#
# usage: scripts/install-k0sctl.sh [VERSION...]
#   (default: the pinned release, in src/k0sctl_resource/k0sctl/k0sctl.version, and v0.28.0)
#
# A binary already in place whose `k0sctl version` prints the wanted version is reused as is.
# Otherwise the documented `go install github.com/k0sproject/k0sctl@VERSION` is tried first; where the
# proxy refuses what that needs (here it refuses the module's version list), k0sctl is built from its
# module source: `go mod download`, a writable copy, a git repository tagged VERSION (so the Go
# toolchain stamps the version into the binary, as upstream's release builds do), `go build`.
#
# Environment:
#   K0SCTL_RESOURCE_CACHE        cache root (default ~/.cache/k0sctl-resource)
#   K0SCTL_INSTALL_TRUST_PINNED  set to 1 to build versions whose checksum the checksum database cannot
#                                vouch for, checked instead against a hash pinned below (see PINNED_SUMS)
#
# Exit status: 0 all built; 1 a build failed; 2 bad usage; 3 a prerequisite is missing (no Go, no git,
# or the Go module proxy cannot be reached). Tests skip (or fail under CI) on 3.
set -euo pipefail

readonly MODULE=github.com/k0sproject/k0sctl
PINNED=$(tr -d '[:space:]' < "$(dirname "$0")/../src/k0sctl_resource/k0sctl/k0sctl.version")
readonly PINNED DEFAULT_VERSIONS=("$PINNED" v0.28.0)

# Dependency versions that a k0sctl release requires but that the module proxy refuses, each with the
# nearest version it serves. A row is applied only for its k0sctl version and only when the required
# version really is refused at build time; the substitution is then announced on stderr.
#   k0sctl   module                          required  substitute
readonly SUBSTITUTIONS=(
  "v0.32.2 github.com/k0sproject/rig/v2 v2.1.1 v2.1.0" # release fact: rig v2.1.1 is refused; v2.1.0 is served
)

# k0sctl versions whose checksum the checksum database does not know (its lookup answers 404), with the
# module hashes (h1: of the zip, h1: of go.mod) as the proxy serves them. The zip's files were compared
# by hand with the upstream git tag's tree and are identical. These rows are used ONLY when
# K0SCTL_INSTALL_TRUST_PINNED=1: the checksum database is then skipped for the k0sctl module alone
# (every dependency is still verified), and the download must carry exactly these hashes.
#   k0sctl   zip hash                                        go.mod hash
readonly PINNED_SUMS=(
  "v0.22.0 h1:n1tChmaLCXBKmIIOZkmYVbdGIyhroohJ/U3Ezrxcpc4= h1:/mdVVfHWB+sU3kzBRRRA6J78SfG2lQohxwFfeYRvw3U="
  "v0.20.0 h1:/Igi8JEubQh5f1OloWyvQOWvy6ZLAIV5eHbMQQnrbDI= h1:9qONqom8d798PFSlOBXE6hdMbZcYx4z06J67FFZIIOw="
  "v0.13.1 h1:QJyzYrO3TG5VHHEl6c1toxJSJsSxyMqUTNtVQ/6ORMg= h1:E803MsDkStpLdtssuZTFo8192IOM+vOs7Mc2b6cuQvM="
)

readonly EXIT_BUILD=1 EXIT_USAGE=2 EXIT_PREREQ=3

CLEANUP=() EMPTY_DIRS=()
cleanup() {
  [[ ${#CLEANUP[@]} -eq 0 ]] || rm -rf "${CLEANUP[@]}"
  [[ ${#EMPTY_DIRS[@]} -eq 0 ]] || rmdir "${EMPTY_DIRS[@]}" 2>/dev/null || true # a failed build leaves none
}
trap cleanup EXIT

note() { printf 'install-k0sctl: %s\n' "$*" >&2; }
die() {
  local code=$1
  shift
  note "error: $*"
  exit "$code"
}

# Classify a failed download: an unreachable proxy is a missing prerequisite, anything else a build error.
fail_download() {
  local what=$1 output=$2
  if grep -qiE 'dial tcp|no such host|connection refused|network is unreachable|i/o timeout|TLS handshake|GOPROXY=off|proxyconnect' <<<"$output"; then
    die "$EXIT_PREREQ" "the Go module proxy ($(go env GOPROXY)) cannot be reached while downloading $what: $(last_error "$output")"
  fi
  die "$EXIT_BUILD" "cannot download $what: $(last_error "$output")"
}

last_error() {
  local line
  line=$(json_field Error <<<"$1")
  [[ -n $line ]] || line=$(grep -v '^[[:space:]]*$' <<<"$1" | tail -n 1)
  printf '%s' "$line"
}

# Read one string field of `go mod download -json` output from stdin.
json_field() {
  sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" | head -n 1
}

# Prints "version: vX.Y.Z" as its first line when the binary is the wanted version.
binary_is_version() {
  local bin=$1 version=$2
  [[ -x $bin ]] && [[ $("$bin" version 2>/dev/null | head -n 1) == "version: $version" ]]
}

# go install, exactly as k0sctl's README documents it. Fails here (the proxy refuses @v/list).
try_go_install() {
  local version=$1 out=$2 gobin
  gobin=$(mktemp -d)
  if GOBIN=$gobin go install "$MODULE@$version" >"$gobin.log" 2>&1 && binary_is_version "$gobin/k0sctl" "$version"; then
    mv -f "$gobin/k0sctl" "$out"
    rm -rf "$gobin" "$gobin.log"
    return 0
  fi
  note "go install $MODULE@$version did not give a usable binary ($(grep -v -e '^[[:space:]]*$' -e '^go: downloading' "$gobin.log" | tail -n 2 | tr -s '\n\t' '  ')); building from the module source"
  rm -rf "$gobin" "$gobin.log"
  return 1
}

pinned_sums() {
  local version=$1 row
  for row in "${PINNED_SUMS[@]}"; do
    read -r -a f <<<"$row"
    if [[ ${f[0]} == "$version" ]]; then
      printf '%s %s\n' "${f[1]}" "${f[2]}"
      return 0
    fi
  done
  return 1
}

# Download the k0sctl module and print its directory in the module cache.
download_k0sctl() {
  local version=$1 output sums want_zip want_mod
  if output=$(go mod download -json "$MODULE@$version" 2>&1); then
    json_field Dir <<<"$output"
    return 0
  fi
  if grep -q 'sum.golang.org/lookup' <<<"$output" && sums=$(pinned_sums "$version"); then
    if [[ ${K0SCTL_INSTALL_TRUST_PINNED:-} != 1 ]]; then
      die "$EXIT_BUILD" "the checksum database cannot verify $MODULE@$version ($(last_error "$output")); a hand-checked hash is pinned in $0: set K0SCTL_INSTALL_TRUST_PINNED=1 to build against it"
    fi
    read -r want_zip want_mod <<<"$sums"
    note "WARNING: checksum database skipped for $MODULE@$version (K0SCTL_INSTALL_TRUST_PINNED=1); requiring the pinned hash $want_zip instead"
    output=$(GONOSUMDB=$MODULE go mod download -json "$MODULE@$version" 2>&1) || fail_download "$MODULE@$version" "$output"
    if [[ $(json_field Sum <<<"$output") != "$want_zip" || $(json_field GoModSum <<<"$output") != "$want_mod" ]]; then
      die "$EXIT_BUILD" "$MODULE@$version does not match its pinned hash (got $(json_field Sum <<<"$output")); refusing to build it"
    fi
    json_field Dir <<<"$output"
    return 0
  fi
  fail_download "$MODULE@$version" "$output"
}

# Apply the SUBSTITUTIONS rows of this version inside the writable source copy $2.
substitute_refused_dependencies() {
  local version=$1 src=$2 row output
  for row in "${SUBSTITUTIONS[@]}"; do
    read -r -a f <<<"$row"
    [[ ${f[0]} == "$version" ]] || continue
    local module=${f[1]} required=${f[2]} substitute=${f[3]}
    grep -q "^[[:space:]]*$module $required\\b" "$src/go.mod" || continue
    if output=$(cd "$src" && go mod download -json "$module@$required" 2>&1); then
      continue # served after all: build with what k0sctl asks for
    fi
    note "SUBSTITUTION: $MODULE@$version requires $module $required, which the proxy refuses ($(last_error "$output")); building with $module $substitute instead"
    # `go get` would need the refused version's go.mod: edit the requirement, then fetch (and record
    # in go.sum) the substitute alone.
    (cd "$src" && go mod edit "-require=$module@$substitute")
    output=$(cd "$src" && go mod download "$module" 2>&1) || fail_download "$module@$substitute" "$output"
  done
}

build_from_source() {
  local version=$1 out=$2 moddir work src info_file commit_time ldflags
  moddir=$(download_k0sctl "$version") || exit $?
  [[ -n $moddir && -d $moddir ]] || die "$EXIT_BUILD" "go mod download gave no source directory for $MODULE@$version"
  work=$(mktemp -d)
  CLEANUP+=("$work")
  src=$work/k0sctl
  cp -R "$moddir" "$src"
  chmod -R u+w "$src"

  substitute_refused_dependencies "$version" "$src"

  # A tagged repository, committed at the release time the proxy reports, so that `go build
  # -buildvcs=true` stamps the version (and a reproducible commit id) like a release build.
  info_file=$(go env GOMODCACHE)/cache/download/$MODULE/@v/$version.info
  commit_time=$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' "$info_file" 2>/dev/null || true)
  commit_time=${commit_time:-2000-01-01T00:00:00Z}
  (
    cd "$src"
    export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
    export GIT_AUTHOR_NAME=install-k0sctl GIT_AUTHOR_EMAIL=install-k0sctl@localhost
    export GIT_COMMITTER_NAME=install-k0sctl GIT_COMMITTER_EMAIL=install-k0sctl@localhost
    export GIT_AUTHOR_DATE=$commit_time GIT_COMMITTER_DATE=$commit_time
    git init -q -b main .
    git add -A
    git commit -q -m "k0sctl $version from the Go module proxy"
    git tag "$version"
  ) || die "$EXIT_BUILD" "cannot create the tagged git repository for $version"

  # Releases before the switch to versioninfo (v0.13.x) take their version from linker flags, as in
  # their Makefile; later ones read it from the build info stamped by -buildvcs.
  ldflags="-s -w"
  if ! grep -q versioninfo "$src/version/version.go" 2>/dev/null; then
    ldflags+=" -X $MODULE/version.Version=$version -X $MODULE/version.GitCommit=$(git -C "$src" rev-parse --short=7 HEAD)"
  fi
  note "building $MODULE@$version"
  if ! (cd "$src" && CGO_ENABLED=0 go build -buildvcs=true -trimpath -ldflags "$ldflags" -o "$out" .) >&2; then
    die "$EXIT_BUILD" "go build of $MODULE@$version failed"
  fi
}

install_version() {
  local version=$1 dest tmp
  [[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] || die "$EXIT_USAGE" "not a k0sctl version: $version (expected vX.Y.Z)"
  dest=$CACHE_ROOT/k0sctl/$version/k0sctl
  if binary_is_version "$dest" "$version"; then
    note "$version already built"
    printf '%s\n' "$dest"
    return 0
  fi
  require_toolchain
  mkdir -p "$(dirname "$dest")"
  EMPTY_DIRS+=("$(dirname "$dest")")
  tmp=$dest.tmp.$$
  CLEANUP+=("$tmp")
  if ! try_go_install "$version" "$tmp"; then
    build_from_source "$version" "$tmp"
  fi
  binary_is_version "$tmp" "$version" || {
    rm -f "$tmp"
    die "$EXIT_BUILD" "the built binary does not report version $version"
  }
  mv -f "$tmp" "$dest"
  note "built $version"
  printf '%s\n' "$dest"
}

# Checked only when something has to be built: cached binaries need neither Go nor the proxy.
TOOLCHAIN_READY=0
require_toolchain() {
  [[ $TOOLCHAIN_READY == 1 ]] && return 0
  command -v go >/dev/null 2>&1 || die "$EXIT_PREREQ" "Go is not installed (need a Go toolchain on PATH, >= the go line of k0sctl's go.mod, 1.26 for v0.32)"
  command -v git >/dev/null 2>&1 || die "$EXIT_PREREQ" "git is not installed (the build tags a git repository to stamp the version)"

  # Build exactly with the installed toolchain, with VCS stamping allowed (this machine's go env
  # carries GOFLAGS=-buildvcs=false, which would leave the binary without a version).
  export GOTOOLCHAIN=local
  local flags=() flag
  for flag in $(go env GOFLAGS); do
    [[ $flag == -buildvcs* ]] || flags+=("$flag")
  done
  # An empty GOFLAGS would fall back to the go env file: keep a harmless flag in it.
  GOFLAGS="${flags[*]:--buildvcs=auto}"
  export GOFLAGS
  TOOLCHAIN_READY=1
}

main() {
  local versions=("$@")
  [[ ${#versions[@]} -gt 0 ]] || versions=("${DEFAULT_VERSIONS[@]}")

  CACHE_ROOT=${K0SCTL_RESOURCE_CACHE:-$HOME/.cache/k0sctl-resource}
  mkdir -p "$CACHE_ROOT"
  # One build at a time per cache (parallel test sessions share it).
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$CACHE_ROOT/.install-k0sctl.lock"
    flock 9
  fi

  local version
  for version in "${versions[@]}"; do
    install_version "$version"
  done
}

main "$@"
