#!/usr/bin/env bash
# Build Concourse's `fly` CLI from the Go module proxy, for validating pipeline/pipeline.yml offline:
#   ${K0SCTL_RESOURCE_CACHE:-$HOME/.cache/k0sctl-resource}/fly/<commit>/fly
# and print its path on stdout (progress and notes go to stderr).
#
# usage: scripts/install-fly.sh
#
# The commit is pinned below (a Concourse release). Concourse's tags (v8.x) are not valid Go module
# versions for github.com/concourse/concourse (the module path has no /v8 suffix), so the build is
# pinned by commit. A binary already in place whose `fly --version` prints the pinned release is reused.
# First `go install github.com/concourse/concourse/fly@<commit>` is tried; where that fails, the module
# is downloaded with `go mod download` and fly is built from a writable copy of it.
#
# Environment:
#   K0SCTL_RESOURCE_CACHE  cache root (default ~/.cache/k0sctl-resource)
#   K0SCTL_RESOURCE_FLY    path of a fly binary to use instead of building one (for example the one your
#                          Concourse serves at /api/v1/cli?arch=amd64&platform=linux); printed as is
#                          after a check that it runs
#
# Exit status: 0 fly is there; 1 the build failed; 3 a prerequisite is missing (no Go, or the Go module
# proxy cannot be reached); 4 the Go module proxy refuses the Concourse module (it answers, but will
# not serve it). Tests skip on 4 (and on 3, except under CI=true), naming the reason.
set -euo pipefail

readonly MODULE=github.com/concourse/concourse
# Concourse v8.2.5 (tag v8.2.5, release/8.2.x), committed 2026-08-02.
readonly FLY_RELEASE=8.2.5
readonly FLY_COMMIT=10d78df20d5e35b729e0049c6f1c219fa771d596

readonly EXIT_BUILD=1 EXIT_PREREQ=3 EXIT_REFUSED=4

CLEANUP=()
cleanup() { [[ ${#CLEANUP[@]} -eq 0 ]] || rm -rf "${CLEANUP[@]}"; }
trap cleanup EXIT

note() { printf 'install-fly: %s\n' "$*" >&2; }
die() {
  local code=$1
  shift
  note "error: $*"
  exit "$code"
}

last_line() { grep -v '^[[:space:]]*$' <<<"$1" | tail -n 1; }

# Read one string field of `go mod download -json` output from stdin.
json_field() {
  sed -n "s/^[[:space:]]*\"$1\": \"\\(.*\\)\",\\{0,1\\}\$/\\1/p" | head -n 1
}

# Sort a failed download into: proxy unreachable (3), module refused by the proxy (4), other (1).
classify() {
  local output=$1
  if grep -qiE 'dial tcp|no such host|connection refused|network is unreachable|i/o timeout|TLS handshake|GOPROXY=off|proxyconnect' <<<"$output"; then
    return "$EXIT_PREREQ"
  fi
  if grep -qiE '(403 Forbidden|404 Not Found|410 Gone)|not available|unknown revision|invalid version' <<<"$output"; then
    return "$EXIT_REFUSED"
  fi
  return "$EXIT_BUILD"
}

fail_download() {
  local output=$1 code=0 detail
  detail=$(json_field Error <<<"$output")
  [[ -n $detail ]] || detail=$(last_line "$output")
  classify "$output" || code=$?
  case $code in
    "$EXIT_PREREQ") die "$EXIT_PREREQ" "the Go module proxy ($(go env GOPROXY)) cannot be reached: $detail" ;;
    "$EXIT_REFUSED") die "$EXIT_REFUSED" "the Go module proxy ($(go env GOPROXY)) does not serve $MODULE@$FLY_COMMIT: $detail" ;;
    *) die "$EXIT_BUILD" "cannot download $MODULE@$FLY_COMMIT: $detail" ;;
  esac
}

is_wanted_fly() {
  local bin=$1
  [[ -x $bin ]] && [[ $("$bin" --version 2>/dev/null) == "$FLY_RELEASE" ]]
}

readonly LDFLAGS="-s -w -X $MODULE.Version=$FLY_RELEASE"

try_go_install() {
  local out=$1 gobin log
  gobin=$(mktemp -d)
  log=$(mktemp)
  CLEANUP+=("$gobin" "$log")
  note "go install $MODULE/fly@$FLY_COMMIT (Concourse $FLY_RELEASE)"
  if GOBIN=$gobin CGO_ENABLED=0 go install -trimpath -ldflags "$LDFLAGS" "$MODULE/fly@$FLY_COMMIT" >"$log" 2>&1 \
    && is_wanted_fly "$gobin/fly"; then
    mv -f "$gobin/fly" "$out"
    return 0
  fi
  note "go install did not give a usable fly ($(last_line "$(cat "$log")")); trying go mod download + go build"
  return 1
}

build_from_module() {
  local out=$1 output moddir work
  output=$(go mod download -json "$MODULE@$FLY_COMMIT" 2>&1) || fail_download "$output"
  moddir=$(json_field Dir <<<"$output")
  [[ -n $moddir && -d $moddir ]] || die "$EXIT_BUILD" "go mod download gave no source directory for $MODULE@$FLY_COMMIT"
  work=$(mktemp -d)
  CLEANUP+=("$work")
  cp -R "$moddir" "$work/concourse"
  chmod -R u+w "$work/concourse"
  note "building fly from $MODULE@$FLY_COMMIT"
  if ! (cd "$work/concourse" && CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "$LDFLAGS" -o "$out" ./fly) >&2; then
    die "$EXIT_BUILD" "go build of fly failed"
  fi
}

main() {
  [[ $# -eq 0 ]] || die 2 "usage: $0 (no arguments; see the comment at the top)"

  if [[ -n ${K0SCTL_RESOURCE_FLY:-} ]]; then
    [[ -x $K0SCTL_RESOURCE_FLY ]] || die "$EXIT_PREREQ" "K0SCTL_RESOURCE_FLY=$K0SCTL_RESOURCE_FLY is not an executable file"
    "$K0SCTL_RESOURCE_FLY" --version >/dev/null 2>&1 || die "$EXIT_BUILD" "$K0SCTL_RESOURCE_FLY --version failed"
    note "using K0SCTL_RESOURCE_FLY ($("$K0SCTL_RESOURCE_FLY" --version))"
    printf '%s\n' "$K0SCTL_RESOURCE_FLY"
    return 0
  fi

  local cache dest tmp start
  cache=${K0SCTL_RESOURCE_CACHE:-$HOME/.cache/k0sctl-resource}
  dest=$cache/fly/$FLY_COMMIT/fly
  if is_wanted_fly "$dest"; then
    note "fly $FLY_RELEASE already built"
    printf '%s\n' "$dest"
    return 0
  fi

  command -v go >/dev/null 2>&1 || die "$EXIT_PREREQ" "Go is not installed (need a Go toolchain on PATH, >= 1.26 for Concourse $FLY_RELEASE)"
  export GOTOOLCHAIN=local
  mkdir -p "$(dirname "$dest")"
  # One build at a time per cache (parallel test sessions share it).
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache/.install-fly.lock"
    flock 9
    if is_wanted_fly "$dest"; then
      printf '%s\n' "$dest"
      return 0
    fi
  fi

  start=$SECONDS
  tmp=$dest.tmp.$$
  CLEANUP+=("$tmp")
  if ! try_go_install "$tmp"; then
    build_from_module "$tmp"
  fi
  is_wanted_fly "$tmp" || die "$EXIT_BUILD" "the built fly does not report version $FLY_RELEASE"
  mv -f "$tmp" "$dest"
  note "built fly $FLY_RELEASE in $((SECONDS - start))s"
  printf '%s\n' "$dest"
}

main "$@"
