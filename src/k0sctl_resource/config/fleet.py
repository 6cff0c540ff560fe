"""clusters.yml: the fleet, one entry per cluster, read by `fleet-vars` (the parent pipeline) and by
`fleet-status`.

    defaults:                 # every field optional
      max_age: 26h            # a newest backup older than this is stale
      max_drill_age: 8d       # no passed drill for this long is undrilled
      timeout: 30s            # bound on everything fleet-status does with one backup repository
      secrets: "{cluster}/{var}"   # how a cluster's secrets are named in the credential manager
      vars: {…}               # pipeline/pipeline.yml's vars shared by every cluster
    clusters:
    - name: prod-eu           # the pipeline instance's `cluster` var; [a-z0-9][a-z0-9._-]*
      config: clusters/prod-eu/k0sctl.yaml   # its k0sctl.yaml in the config repository
      max_age: 2h             # overrides the defaults (max_age, max_drill_age)
      vars: {…}               # its own vars, over the defaults' vars
    removed: [old-cluster]    # clusters removed on purpose (their pipelines may be archived)

Per cluster, vars that are not given are derived: `cluster_name` (the name), `config_path`,
`scratch_config_path` (`scratch/k0sctl.yaml` next to its k0sctl.yaml), `scratch_cluster_name`
(`<name>-drill`), `backup_branch` (`k0sctl-backup-<name>`: one repository, one branch per cluster),
`freshness_max_age`, `freshness_warn_age` and `freshness_max_drill_age` (its `max_age`, 90 % of it, and
its `max_drill_age`), and every
secret var of the pipeline as a reference `((<secrets template>))` that the credential manager
resolves when the cluster's pipeline runs. A secret's value is refused here: clusters.yml
names secrets, it never holds them.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from k0sctl_resource.config.paths import read_regular
from k0sctl_resource.config.safe_load import load_yaml_documents
from k0sctl_resource.config.schema import Duration, from_json, required
from k0sctl_resource.runtime.errors import ResourceError

# The vars of pipeline/pipeline.yml that hold secrets: never in clusters.yml, always a reference.
SECRET_VARS = ("config_repo_private_key", "cluster_ssh_private_key", "backup_repo_private_key",
               "backup_identities", "scratch_ssh_private_key")
DEFAULT_SECRETS = "{cluster}/{var}"
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
REFERENCE = re.compile(r"^\(\([^()]+\)\)$")
MAX_FILE = 4 * 1024 * 1024
DEFAULT_MAX_AGE = Duration(26 * 3600)  # a nightly backup, and two hours' grace
DEFAULT_MAX_DRILL_AGE = Duration(8 * 24 * 3600)  # a weekly drill, and a day's grace
DEFAULT_TIMEOUT = Duration(30)


@dataclass(frozen=True)
class FleetDefaults:
    max_age: Duration = DEFAULT_MAX_AGE
    max_drill_age: Duration = DEFAULT_MAX_DRILL_AGE
    timeout: Duration = DEFAULT_TIMEOUT
    secrets: str = DEFAULT_SECRETS

    def validate(self, path: str) -> None:
        if "{cluster}" not in self.secrets or "{var}" not in self.secrets:
            raise ResourceError(f"{path}.secrets: must contain {{cluster}} and {{var}}, e.g. {DEFAULT_SECRETS!r}")
        if any(c in self.secrets for c in "()\n"):
            raise ResourceError(f"{path}.secrets: a name template, without parentheses or line breaks")
        if not 1 <= self.timeout <= 3600:
            raise ResourceError(f"{path}.timeout: must be between 1s and 1h")


@dataclass(frozen=True)
class _Entry:
    name: str = required()
    config: str = "k0sctl.yaml"
    max_age: Duration | None = None
    max_drill_age: Duration | None = None

    def validate(self, path: str) -> None:
        if not NAME.match(self.name):
            raise ResourceError(f"{path}.name: {self.name[:40]!r} is not a cluster name "
                                "(lowercase letters, digits, '.', '_', '-'; at most 63)")
        parts = self.config.split("/")
        if self.config.startswith("/") or ".." in parts or not self.config.endswith((".yaml", ".yml")):
            raise ResourceError(f"{path}.config: a relative path of a .yaml file in the config repository")


@dataclass(frozen=True)
class FleetCluster:
    """One cluster with everything resolved: its pipeline's vars and the limits of its status."""

    name: str
    config: str
    max_age: float
    max_drill_age: float
    vars: Mapping[str, Any] = field(default_factory=dict)

    @property
    def backup_uri(self) -> str | None:
        uri = self.vars.get("backup_repo_uri")
        return uri if isinstance(uri, str) and uri else None

    @property
    def backup_branch(self) -> str:
        return str(self.vars["backup_branch"])

    @property
    def known_hosts(self) -> str | None:
        lines = self.vars.get("cluster_ssh_known_hosts")
        return lines if isinstance(lines, str) and lines.strip() else None


@dataclass(frozen=True)
class Fleet:
    defaults: FleetDefaults
    clusters: tuple[FleetCluster, ...]
    removed: tuple[str, ...]


def _vars(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise ResourceError(f"{where}: expected a mapping of var names to values")
    return dict(raw)


def _derived(entry: _Entry, defaults: FleetDefaults) -> dict[str, Any]:
    scratch = posixpath.join(posixpath.dirname(entry.config), "scratch", "k0sctl.yaml")
    max_age = float(entry.max_age or defaults.max_age)
    found: dict[str, Any] = {"cluster_name": entry.name, "config_path": entry.config,
                             "scratch_config_path": scratch, "scratch_cluster_name": f"{entry.name}-drill",
                             "backup_branch": f"k0sctl-backup-{entry.name}",
                             # the cluster's own hourly `freshness` job judges as fleet-status does
                             "freshness_max_age": f"{max_age:g}s", "freshness_warn_age": f"{0.9 * max_age:g}s",
                             "freshness_max_drill_age": f"{float(entry.max_drill_age or defaults.max_drill_age):g}s"}
    secrets = defaults.secrets
    for var in SECRET_VARS:
        found[var] = "((" + secrets.format(cluster=entry.name, var=var) + "))"
    return found


def _cluster(raw: Any, where: str, defaults: FleetDefaults, shared: dict[str, Any]) -> FleetCluster:
    own = _vars(raw.pop("vars", None) if isinstance(raw, dict) else None, f"{where}.vars")
    entry = from_json(_Entry, raw, where)
    merged = {**_derived(entry, defaults), **shared, **own}
    for var in SECRET_VARS:
        if not (isinstance(merged[var], str) and REFERENCE.match(merged[var])):
            raise ResourceError(f"{where}.vars.{var}: a secret's value does not belong in clusters.yml; leave it "
                                f"out (it is named {_derived(entry, defaults)[var]}) or give a ((reference))")
    if "cluster" in merged:
        raise ResourceError(f"{where}.vars.cluster: reserved for the pipeline instance var")
    return FleetCluster(name=entry.name, config=entry.config,
                        max_age=float(entry.max_age or defaults.max_age),
                        max_drill_age=float(entry.max_drill_age or defaults.max_drill_age), vars=merged)


def parse_fleet(doc: Any, where: str = "clusters.yml") -> Fleet:
    if not isinstance(doc, dict):
        raise ResourceError(f"{where}: expected a mapping with clusters:")
    unknown = set(doc) - {"defaults", "clusters", "removed"}
    if unknown:
        raise ResourceError(f"{where}.{sorted(map(str, unknown))[0]}: unknown key (defaults, clusters, removed)")
    raw_defaults = dict(doc.get("defaults") or {}) if isinstance(doc.get("defaults"), dict | None) else None
    if raw_defaults is None:
        raise ResourceError(f"{where}.defaults: expected a mapping")
    shared = _vars(raw_defaults.pop("vars", None), f"{where}.defaults.vars")
    defaults = from_json(FleetDefaults, raw_defaults, f"{where}.defaults")
    entries = doc.get("clusters")
    if not isinstance(entries, list) or not entries:
        raise ResourceError(f"{where}.clusters: expected a list of at least one cluster")
    clusters = tuple(_cluster(dict(e) if isinstance(e, dict) else e, f"{where}.clusters[{i}]", defaults, shared)
                     for i, e in enumerate(entries))
    removed = doc.get("removed") or []
    if not isinstance(removed, list) or not all(isinstance(n, str) for n in removed):
        raise ResourceError(f"{where}.removed: expected a list of cluster names")
    names = [c.name for c in clusters]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ResourceError(f"{where}.clusters: {twice[0]} is listed more than once")
    both = sorted(set(names) & set(removed))
    if both:
        raise ResourceError(f"{where}: {both[0]} is both in clusters and in removed")
    return Fleet(defaults=defaults, clusters=clusters, removed=tuple(removed))


def load_fleet(path: Path) -> Fleet:
    data = read_regular(path, "clusters file", MAX_FILE)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ResourceError(f"{path}: not UTF-8 text") from None
    docs = load_yaml_documents(text, str(path))
    if len(docs) != 1:
        raise ResourceError(f"{path}: expected one YAML document, found {len(docs)}")
    return parse_fleet(docs[0], str(path))


def listed_names(doc: Any) -> set[str]:
    """The names under `clusters:` of a clusters.yml document, read leniently (an old version of the file
    that today's parser may refuse): what the history guard compares."""
    entries = doc.get("clusters") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        return set()
    return {e["name"] for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}
