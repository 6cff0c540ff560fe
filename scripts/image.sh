#!/usr/bin/env bash
# Build and run the k0sctl-resource container image with podman, on machines that reach no container
# registry and no GitHub: the base image is made with debootstrap, and k0sctl comes from a loopback
# HTTP mirror that serves a locally built binary exactly like a k0sctl release (binary + checksums.txt).
#
# usage: scripts/image.sh COMMAND [ARGS...]
#   deps                      install podman, runc, debootstrap (apt-get) when one is missing
#   base [--force]            make the base image debian:<suite>-slim (cached, see BASE_MAX_AGE_DAYS)
#   build [--tag TAG] [--mirror-dir DIR] [--no-cache] [-- PODMAN_BUILD_ARGS...]
#                             build the image (default tag k0sctl-resource:dev); with --mirror-dir, DIR
#                             is served as the k0sctl release mirror as it is (it must hold
#                             VERSION/k0sctl-linux-ARCH and VERSION/checksums.txt), else one is made
#                             from scripts/install-k0sctl.sh's binary
#   run [PODMAN_RUN_ARGS...]  podman run with the settings this machine needs
#   size [TAG]                print the image's size
#
# Environment:
#   K0SCTL_RESOURCE_CACHE     cache root (default ~/.cache/k0sctl-resource): base stamp, mirror, locks
#   BASE_SUITE                Debian suite of the base image (default trixie)
#   BASE_MAX_AGE_DAYS         remake the base image when its stamp is older (default 7)
#   DEBIAN_MIRROR             Debian mirror for debootstrap (default: the one apt uses here)
#   DEBIAN_SECURITY_MIRROR    security mirror written into the base's apt sources
#   K0SCTL_VERSION            k0sctl to build in (default: the pinned one, src/k0sctl_resource/k0sctl/k0sctl.version)
#   K0SCTL_RESOURCE_MIRROR_PORT  loopback port the k0sctl mirror asks for first (default 18733)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${K0SCTL_RESOURCE_CACHE:-$HOME/.cache/k0sctl-resource}
BASE_SUITE=${BASE_SUITE:-trixie}
BASE_IMAGE=debian:${BASE_SUITE}-slim
BASE_MAX_AGE_DAYS=${BASE_MAX_AGE_DAYS:-7}
DEFAULT_TAG=k0sctl-resource:dev
HOST_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

# Machine-specific podman settings, shared by every build and run:
PODMAN_RUNTIME=(
  # crun refuses this kernel's hybrid cgroup layout; runc copes with it.
  --runtime runc
)
PODMAN_ULIMITS=(
  # The default limits podman asks for exceed the hard limits this sandbox grants, so containers fail
  # to start; ask for limits that fit inside them.
  --ulimit nofile=20000:20000 --ulimit nproc=32768:32768
)
# A fixed port keeps the mirror URL (a build arg, and so part of the layer cache key) the same from one
# build to the next, so the verified k0sctl layer is reused; a busy port falls back to a free one.
MIRROR_PORT=${K0SCTL_RESOURCE_MIRROR_PORT:-18733}

note() { printf 'image.sh: %s\n' "$*" >&2; }
die() {
  note "error: $*"
  exit 1
}

CLEANUP_PIDS=()
CLEANUP_PATHS=()
cleanup() {
  local pid
  for pid in "${CLEANUP_PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [[ ${#CLEANUP_PATHS[@]} -eq 0 ]] || rm -rf "${CLEANUP_PATHS[@]}"
}
trap cleanup EXIT

as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  else
    sudo "$@"
  fi
}

cmd_deps() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || [[ -x /usr/sbin/runc ]] || missing+=(runc)
  command -v debootstrap >/dev/null 2>&1 || [[ -x /usr/sbin/debootstrap ]] || missing+=(debootstrap)
  # debootstrap checks the suite's Release signature against this keyring (not on Ubuntu by default).
  [[ -e /usr/share/keyrings/debian-archive-keyring.gpg ]] || missing+=(debian-archive-keyring)
  [[ ${#missing[@]} -gt 0 ]] || return 0
  note "installing ${missing[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

# The Debian mirror this machine's apt uses (debootstrap must use a mirror reachable from here).
debian_mirror() {
  if [[ -n ${DEBIAN_MIRROR:-} ]]; then
    printf '%s\n' "$DEBIAN_MIRROR"
    return
  fi
  local uri=
  if [[ -r /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }' \
      /etc/apt/sources.list.d/debian.sources)
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

base_stamp() { printf '%s/base/%s.stamp\n' "$CACHE" "${BASE_IMAGE//[:\/]/-}"; }

# Fresh: the image exists, the stamp names this very image, and the stamp is younger than the limit.
base_is_fresh() {
  local stamp id
  stamp=$(base_stamp)
  [[ -f $stamp ]] || return 1
  podman image exists "$BASE_IMAGE" || return 1
  id=$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE")
  [[ $(<"$stamp") == "$id" ]] || return 1
  [[ -z $(find "$stamp" -mtime "+$((BASE_MAX_AGE_DAYS - 1))" -print) ]]
}

# Make the rootfs look like Debian's official -slim images: no docs, man pages or translations, apt
# keeps no package cache, deb822 sources with the updates and security suites.
slim_rootfs() {
  local dir=$1 mirror=$2
  local security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
  cat >"$dir/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
# Like Debian's -slim images: leave out documentation and translations (copyright files stay).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
  find "$dir/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
  find "$dir/usr/share/doc" -mindepth 1 -depth -type d -empty -delete
  rm -rf "$dir"/usr/share/{man,info,groff,lintian,linda}/*
  find "$dir/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +

  cat >"$dir/etc/apt/apt.conf.d/slim" <<'EOF'
// Container image: no package cache, no translations, compressed indexes, no suggested packages kept.
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
Acquire::GzipIndexes "true";
APT::AutoRemove::SuggestsImportant "false";
EOF
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: $BASE_SUITE $BASE_SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: $BASE_SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/var/cache/debconf/*-old "$dir"/var/lib/dpkg/*-old "$dir"/var/log/* "$dir"/tmp/* "$dir"/root/.cache
  # The container engine provides these at run time.
  : >"$dir/etc/resolv.conf"
  echo localhost >"$dir/etc/hostname"
}

cmd_base() {
  local force=0
  # debootstrap, slimming the root-owned tree and packing it all need root (podman here runs rootful too).
  [[ $EUID -eq 0 ]] || die "base: run as root (debootstrap writes a root-owned tree that the next steps slim and pack)"
  while [[ $# -gt 0 ]]; do
    case $1 in
      --force) force=1 ;;
      *) die "base: unknown argument $1" ;;
    esac
    shift
  done
  cmd_deps
  mkdir -p "$CACHE/base"
  # Parallel test sessions share the image store: one base build at a time.
  exec 8>"$CACHE/base/.lock"
  flock 8
  if [[ $force -eq 0 ]] && base_is_fresh; then
    note "base image $BASE_IMAGE is fresh ($(base_stamp))"
    exec 8>&-
    return 0
  fi
  local mirror rootfs start id
  mirror=$(debian_mirror)
  start=$SECONDS
  rootfs=$(mktemp -d "$CACHE/base/rootfs.XXXXXX")
  CLEANUP_PATHS+=("$rootfs")
  note "debootstrap --variant=minbase $BASE_SUITE from $mirror"
  as_root debootstrap --variant=minbase "$BASE_SUITE" "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || {
    tail -n 30 "$rootfs.log" >&2
    rm -f "$rootfs.log"
    die "debootstrap failed"
  }
  rm -f "$rootfs.log"
  slim_rootfs "$rootfs" "$mirror"
  tar --numeric-owner -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase $BASE_SUITE $mirror" \
    --quiet - "$BASE_IMAGE" >/dev/null
  id=$(podman image inspect --format '{{.Id}}' "$BASE_IMAGE")
  printf '%s\n' "$id" >"$(base_stamp)"
  exec 8>&-
  note "base image $BASE_IMAGE made in $((SECONDS - start)) s ($(image_size "$BASE_IMAGE"))"
}

image_size() {
  local bytes
  bytes=$(podman image inspect --format '{{.Size}}' "$1")
  awk -v b="$bytes" 'BEGIN { printf "%.1f MB (%d bytes)\n", b / 1000000, b }'
}

cmd_size() {
  local tag=${1:-$DEFAULT_TAG}
  printf '%s: %s\n' "$tag" "$(image_size "$tag")"
}

pinned_k0sctl_version() {
  tr -d '[:space:]' < "$ROOT/src/k0sctl_resource/k0sctl/k0sctl.version"
}

host_arch() {
  case $(uname -m) in
    x86_64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) die "no k0sctl release for $(uname -m)" ;;
  esac
}

# A release mirror for VERSION from the locally built binary: VERSION/k0sctl-linux-ARCH + checksums.txt.
make_mirror() {
  local version=$1 arch bin dir asset
  arch=$(host_arch)
  if [[ -x $ROOT/scripts/install-k0sctl.sh ]]; then
    bin=$("$ROOT/scripts/install-k0sctl.sh" "$version" | tail -n 1)
  else
    bin=$CACHE/k0sctl/$version/k0sctl
    [[ -x $bin ]] || die "no k0sctl $version binary at $bin (scripts/install-k0sctl.sh builds one)"
  fi
  [[ -x $bin ]] || die "scripts/install-k0sctl.sh gave no binary for $version"
  dir=$CACHE/mirror
  asset=k0sctl-linux-$arch
  mkdir -p "$dir/$version"
  # Written under temporary names and renamed, so that parallel builds never serve a partial file.
  if ! cmp -s "$bin" "$dir/$version/$asset"; then
    cp -f "$bin" "$dir/$version/.$asset.$$"
    mv -f "$dir/$version/.$asset.$$" "$dir/$version/$asset"
  fi
  (cd "$dir/$version" && sha256sum --binary "$asset") >"$dir/$version/.checksums.txt.$$"
  mv -f "$dir/$version/.checksums.txt.$$" "$dir/$version/checksums.txt"
  printf '%s\n' "$dir"
}

# Serve DIR on loopback in the background and set MIRROR_URL. The URL carries a digest of the version's
# checksums.txt, so a mirror with other content never hits a cached download layer of another.
MIRROR_URL=
start_mirror() {
  local dir=$1 version=$2 served key pid i
  [[ -f $dir/$version/checksums.txt ]] || die "mirror $dir has no $version/checksums.txt"
  key=$(sha256sum <"$dir/$version/checksums.txt" | cut -c1-16)
  served=$(mktemp -d)
  CLEANUP_PATHS+=("$served" "$served.port" "$served.log")
  ln -s "$(cd "$dir" && pwd)" "$served/$key"
  # fd 8 (the base lock) is closed for the server, which must not hold the lock.
  python3 "$ROOT/scripts/mirror.py" "$served" --port "$MIRROR_PORT" --port-file "$served.port" \
    >/dev/null 2>"$served.log" 8>&- &
  pid=$!
  CLEANUP_PIDS+=("$pid")
  for ((i = 0; i < 100; i++)); do
    [[ -s $served.port ]] && break
    kill -0 "$pid" 2>/dev/null || die "the mirror did not start: $(cat "$served.log")"
    sleep 0.1
  done
  [[ -s $served.port ]] || die "the mirror did not start in time"
  MIRROR_URL=http://127.0.0.1:$(<"$served.port")/$key
}

cmd_build() {
  local tag=$DEFAULT_TAG mirror_dir='' extra=() version url start status=0
  while [[ $# -gt 0 ]]; do
    case $1 in
      --tag) tag=${2:?--tag needs a value}; shift ;;
      --mirror-dir) mirror_dir=${2:?--mirror-dir needs a value}; shift ;;
      --no-cache) extra+=(--no-cache) ;;
      --) shift; extra+=("$@"); break ;;
      *) die "build: unknown argument $1" ;;
    esac
    shift
  done
  cmd_base
  version=${K0SCTL_VERSION:-$(pinned_k0sctl_version)}
  [[ -n $version ]] || die "no k0sctl version in $ROOT/src/k0sctl_resource/k0sctl/k0sctl.version"
  [[ -n $mirror_dir ]] || mirror_dir=$(make_mirror "$version")
  start_mirror "$mirror_dir" "$version"
  url=$MIRROR_URL
  local build_opts=(
    --pull=never "${PODMAN_RUNTIME[@]}" "${PODMAN_ULIMITS[@]}"
    --layers --force-rm
    # The OCI format drops SHELL, so RUN steps would lose bash's -euo pipefail: keep Docker's format.
    --format docker
    # RUN steps use the host's network: the k0sctl mirror listens on the host's loopback only.
    --network host
    --build-arg "BASE_IMAGE=$BASE_IMAGE"
    --build-arg "K0SCTL_VERSION=$version"
    --build-arg "K0SCTL_MIRROR=$url"
  )
  if [[ -f $HOST_CA_BUNDLE ]]; then
    # HTTPS from here (pip to PyPI) passes an intercepting egress proxy whose CA only the host's
    # bundle holds: hand that bundle to the pip steps as the build secret pip-cert (a read-only mount
    # over /etc/ssl/certs/ca-certificates.crt would break installing ca-certificates in the image).
    build_opts+=(--secret "id=pip-cert,src=$HOST_CA_BUNDLE")
  fi
  note "podman build -t $tag (k0sctl $version from $url)"
  start=$SECONDS
  podman build "${build_opts[@]}" "${extra[@]}" -t "$tag" -f "$ROOT/Dockerfile" "$ROOT" || status=$?
  [[ $status -eq 0 ]] || die "podman build failed (exit $status)"
  note "built $tag in $((SECONDS - start)) s: $(image_size "$tag")"
}

cmd_run() {
  exec podman run "${PODMAN_RUNTIME[@]}" "${PODMAN_ULIMITS[@]}" "$@"
}

main() {
  [[ $# -gt 0 ]] || die "usage: $0 deps|base|build|run|size [ARGS...]"
  local cmd=$1
  shift
  case $cmd in
    deps) cmd_deps "$@" ;;
    base) cmd_base "$@" ;;
    build) cmd_build "$@" ;;
    run) cmd_run "$@" ;;
    size) cmd_size "$@" ;;
    -h | --help | help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" ;;
    *) die "unknown command $cmd (deps, base, build, run, size)" ;;
  esac
}

main "$@"
