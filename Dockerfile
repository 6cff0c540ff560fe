# k0sctl-resource: the Concourse resource type and task image (k0sctl, git, ssh, k0sctl-resource).
#
#   docker buildx build --platform linux/amd64,linux/arm64 .
#
# k0sctl is downloaded from its GitHub release for TARGETARCH and checked against the release's
# checksums.txt; K0SCTL_MIRROR points the download elsewhere (scripts/image.sh serves a local mirror).

ARG BASE_IMAGE=debian:trixie-slim

# ---------------------------------------------------------------------------------------------------
# k0sctl: download and verify the release binary.
FROM ${BASE_IMAGE} AS k0sctl
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
ARG TARGETARCH
# The pinned release is the one in src/k0sctl_resource/k0sctl/k0sctl.version (Renovate bumps that file);
# --build-arg K0SCTL_VERSION=vX.Y.Z builds another.
ARG K0SCTL_VERSION=
ARG K0SCTL_MIRROR=https://github.com/k0sproject/k0sctl/releases/download
WORKDIR /download
COPY src/k0sctl_resource/k0sctl/k0sctl.version ./
RUN K0SCTL_VERSION="${K0SCTL_VERSION:-$(tr -d '[:space:]' < k0sctl.version)}"; \
    asset="k0sctl-linux-${TARGETARCH:?TARGETARCH is not set}"; \
    base="${K0SCTL_MIRROR%/}/${K0SCTL_VERSION}"; \
    curl -fsSL --retry 3 --proto '=https,http' -o checksums.txt "${base}/checksums.txt"; \
    curl -fsSL --retry 3 --proto '=https,http' -o "${asset}" "${base}/${asset}"; \
    if ! grep -E "^[0-9a-f]{64} [ *]${asset}\$" checksums.txt >"${asset}.sha256"; then \
      echo "checksums.txt of k0sctl ${K0SCTL_VERSION} has no line for ${asset}" >&2; \
      exit 1; \
    fi; \
    if ! sha256sum --check --strict "${asset}.sha256"; then \
      echo "${asset} of k0sctl ${K0SCTL_VERSION} does not match its checksums.txt" >&2; \
      exit 1; \
    fi; \
    install -m 0755 "${asset}" /usr/local/bin/k0sctl; \
    XDG_CACHE_HOME=/tmp/k0sctl-cache /usr/local/bin/k0sctl version | tee version.txt; \
    grep -qx "version: ${K0SCTL_VERSION}" version.txt

# ---------------------------------------------------------------------------------------------------
# venv: the k0sctl-resource package and its dependencies in /opt/venv.
FROM ${BASE_IMAGE} AS venv
SHELL ["/bin/bash", "-euo", "pipefail", "-c"]
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/venv
WORKDIR /src
# The optional build secret pip-cert is a CA bundle for pip, for builds whose HTTPS passes an
# intercepting proxy (docker build --secret id=pip-cert,src=FILE); it is never stored in a layer.
# Dependencies first (from pyproject.toml alone), so a change under src/ reuses this layer.
COPY pyproject.toml ./
RUN --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi; \
    python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))' \
      >/tmp/requirements.txt; \
    /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt
COPY README.md ./
COPY src ./src
# pip itself is not needed at run time.
RUN --mount=type=secret,id=pip-cert \
    if [ -s /run/secrets/pip-cert ]; then export PIP_CERT=/run/secrets/pip-cert; fi; \
    /opt/venv/bin/pip install --no-cache-dir --no-deps .; \
    /opt/venv/bin/pip uninstall -y -q pip

# ---------------------------------------------------------------------------------------------------
# The image.
FROM ${BASE_IMAGE}
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates git openssh-client python3 tzdata \
 && rm -rf /var/lib/apt/lists/*
COPY --from=k0sctl /usr/local/bin/k0sctl /usr/local/bin/k0sctl
COPY --from=venv /opt/venv /opt/venv
COPY --chmod=0755 assets/check assets/in assets/out /opt/resource/
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONUNBUFFERED=1
ARG BASE_IMAGE
ARG VERSION=dev
ARG REVISION=
LABEL org.opencontainers.image.title="k0sctl-resource" \
      org.opencontainers.image.description="Concourse resource type that drives k0sctl: install, back up (encrypted, in git), restore, reset and ping k0s clusters; also a task image with k0sctl, git and ssh" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"
WORKDIR /
CMD ["bash"]
