"""A private copy of a k0sctl config whose controllers answer k0sctl's readiness wait themselves after a restore.

A k0s backup holds `pki/admin.conf`, the admin kubeconfig of the cluster it was taken from: its server is
that cluster's leader. k0sctl restores the archive ("Restore cluster state"), runs the before-apply hooks,
starts k0s and asks `k0s kubectl get --raw=/readyz` with `<dataDir>/pki/admin.conf` at once, before k0s has
written a new one naming its own address. When the restored hosts can reach the old cluster (a drill beside
production, a disaster recovery while the old controllers still run), the OLD API server answers "ok" (it
has the same CA) and k0sctl reports a cluster ready that may not even have started.

So every controller of the copy gets a before-apply hook that removes the restored admin.conf unless k0s
runs on the host (an apply onto a running cluster never restores, and keeps its file). Without the file,
k0sctl retries until k0s has written its own, naming the host itself. An after-apply hook removes the
archived config that `k0s restore` leaves in the SSH user's home (`k0s_k0s_backup.yaml`: the old cluster's
addresses and SANs). The data directory is the one k0sctl uses: `--data-dir` in `installFlags`, else the
host's `dataDir`, else `/var/lib/k0s`.

The copy is derived from the bytes that were read and checked (`ClusterConfig.data`) and written in the
step's private workspace (`ClusterConfig.private_copy`); the user's file is never changed. k0sctl substitutes
environment variables in its config, so the hooks hold no `$` of their own.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from k0sctl_resource.config.cluster import CLUSTER_API, MAX_CONFIG, ClusterConfig
from k0sctl_resource.config.paths import read_regular
from k0sctl_resource.config.safe_load import load_yaml_documents
from k0sctl_resource.runtime.errors import ResourceError

DEFAULT_DATA_DIR = "/var/lib/k0s"
K0S = "/usr/local/bin/k0s"  # where k0sctl installs k0s on a Linux host
ARCHIVED_CONFIG = "k0s_k0s_backup.yaml"  # `k0s restore` of k0sctl's upload k0s_backup.tar.gz writes it to its cwd


def data_dir(host: dict[str, Any]) -> str:
    """The k0s data directory k0sctl uses on `host` (a spec.hosts entry): `--data-dir` in installFlags wins."""
    flags = host.get("installFlags") or []
    for flag in flags if isinstance(flags, list) else []:
        words = shlex.split(flag) if isinstance(flag, str) else []
        for index, word in enumerate(words):
            if word.startswith("--data-dir="):
                return word.split("=", 1)[1]
            if word == "--data-dir" and index + 1 < len(words):
                return words[index + 1]
    configured = host.get("dataDir")
    return configured if isinstance(configured, str) and configured else DEFAULT_DATA_DIR


def admin_conf_hook(directory: str) -> str:
    """The before-apply command: remove the restored admin kubeconfig unless k0s is running."""
    return f"{K0S} status -o json >/dev/null 2>&1 || rm -f -- {shlex.quote(directory.rstrip('/') + '/pki/admin.conf')}"


ARCHIVED_CONFIG_HOOK = f"rm -f -- ~/{ARCHIVED_CONFIG}"


def cluster_document(documents: list[Any]) -> dict[str, Any]:
    """The k0sctl Cluster document of an already validated config."""
    for doc in documents:
        if isinstance(doc, dict) and str(doc.get("apiVersion")).lower() == CLUSTER_API \
                and str(doc.get("kind")).lower() == "cluster":
            found: dict[str, Any] = doc
            return found
    raise ResourceError("the k0sctl config has no Cluster document")  # parse_cluster refused it already


def read_documents(config: ClusterConfig) -> list[Any]:
    """The documents of the bytes that were read and checked (the file again only for a config built without)."""
    data = config.data or read_regular(config.path, "k0sctl config", MAX_CONFIG)
    return load_yaml_documents(data.decode("utf-8"), str(config.shown or config.path))


def _add(hooks: Any, action: str, stage: str, command: str) -> dict[str, Any]:
    merged: dict[str, Any] = dict(hooks) if isinstance(hooks, dict) else {}
    stages = dict(merged.get(action) or {})
    stages[stage] = [*(stages.get(stage) or []), command]
    merged[action] = stages
    return merged


def with_restore_hooks(config: ClusterConfig, directory: Path) -> ClusterConfig:
    """`config` with the hooks of the module doc on every controller, written privately into `directory`."""
    import yaml

    documents = read_documents(config)
    spec = cluster_document(documents).get("spec") or {}
    hosts = spec.get("hosts") or []
    for raw, host in zip(hosts, config.hosts, strict=True):
        if host.is_controller and isinstance(raw, dict):
            hooks = _add(raw.get("hooks"), "apply", "before", admin_conf_hook(data_dir(raw)))
            raw["hooks"] = _add(hooks, "apply", "after", ARCHIVED_CONFIG_HOOK)
    text = yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)
    return config.private_copy(directory, text.encode("utf-8"), "k0sctl.restore.yaml")


def private_addresses(config: ClusterConfig) -> dict[int, str]:
    """Each host's `privateAddress` where one is set, by host index (the address k0s advertises)."""
    hosts = (cluster_document(read_documents(config)).get("spec") or {}).get("hosts") or []
    return {index: raw["privateAddress"] for index, raw in enumerate(hosts)
            if isinstance(raw, dict) and isinstance(raw.get("privateAddress"), str)}
