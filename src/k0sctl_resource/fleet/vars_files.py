"""`k0sctl-resource fleet-vars`: what the parent pipeline (pipeline/fleet.yml) needs to set one pipeline
instance per cluster, and the guard that keeps it from archiving clusters by accident.

Writes into the output directory:
- `clusters.json`: the cluster names, the `across` values (`load_var`);
- `vars/<name>.yml`: every var of the cluster's pipeline (defaults, its own vars, derived ones, secret
  references), the `var_files` of its `set_pipeline`.

Concourse archives every pipeline that the job's last successful build set and this one did not: a
cluster left out of clusters.yml by mistake (a bad merge, a truncated file) would lose its pipeline at
the next successful build. So a cluster is never just deleted: it is moved to `removed:`. The guard
reads the history of clusters.yml (the config repository's checkout, when clusters.yml is at its top)
and fails, before any pipeline is set, when a name listed there once is now in neither `clusters:` nor
`removed:`. A failed build archives nothing.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from k0sctl_resource.config.fleet import Fleet, listed_names
from k0sctl_resource.config.safe_load import load_yaml_documents
from k0sctl_resource.gitstore.runner import GitRunner
from k0sctl_resource.runtime import log
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.workspace import replace_file

HISTORY_COMMITS = 500  # versions of clusters.yml the guard reads, newest first
VAR = re.compile(r"\(\(([^()]+)\)\)")


def _yaml(value: Any) -> str:
    import yaml

    return str(yaml.safe_dump(value, sort_keys=True, default_flow_style=False, allow_unicode=True))


def template_vars(pipeline: Path) -> set[str]:
    """The ((vars)) a pipeline template uses (local `((.:x))` vars left out)."""
    text = pipeline.read_text(encoding="utf-8")
    return {m.strip() for m in VAR.findall(text) if not m.strip().startswith(".:")}


def check_complete(fleet: Fleet, pipeline: Path) -> None:
    """Every var the template uses is set for every cluster: a var left unset would not fail set_pipeline
    but become a credential-manager lookup that fails only when the job runs."""
    needed = template_vars(pipeline)
    for cluster in fleet.clusters:
        missing = sorted(needed - set(cluster.vars))
        if missing:
            raise ResourceError(f"clusters.yml: cluster {cluster.name} does not set {', '.join(missing)} (needed by "
                                f"{pipeline.name}; in its vars or the defaults' vars)")
        unused = sorted(set(cluster.vars) - needed)
        if unused:
            log.warn(f"cluster {cluster.name}: vars that {pipeline.name} does not use: {', '.join(unused)}")


def names_in_history(clusters_file: Path) -> set[str] | None:
    """Every name ever listed under `clusters:` in the git history of `clusters_file`; None when the file is
    not at the top of a git checkout."""
    top = clusters_file.resolve().parent
    if not (top / ".git").exists():
        return None
    if (top / ".git" / "shallow").exists():
        raise ResourceError(f"{top} is a shallow clone: the guard against removing a cluster by accident reads the "
                            "history of clusters.yml (remove `depth` from the config repository's git resource)")
    # A checkout made by another user (the get of another container user) is read all the same: only
    # `log` and `show` run, and nothing in its configuration may run a program.
    trust = (("safe.directory", str(top)), ("core.fsmonitor", "false"), ("core.hooksPath", os.devnull))
    runner = GitRunner(top, {"GIT_CONFIG_COUNT": str(len(trust)),
                             **{f"GIT_CONFIG_{kind}_{i}": pair[j] for i, pair in enumerate(trust)
                                for j, kind in enumerate(("KEY", "VALUE"))}})
    shas = runner.ok("log", f"--max-count={HISTORY_COMMITS}", "--format=%H", "--", clusters_file.name,
                     what="reading the history of clusters.yml").split()
    names: set[str] = set()
    for sha in shas:
        result = runner.run("show", f"{sha}:{clusters_file.name}")
        if not result.ok:  # the commit that deleted the file
            continue
        try:
            docs = load_yaml_documents(result.stdout, f"clusters.yml at {sha[:12]}")
        except ResourceError:
            continue  # a broken old version lists nothing we can read
        for doc in docs:
            names |= listed_names(doc)
    return names


def guard(fleet: Fleet, clusters_file: Path) -> None:
    history = names_in_history(clusters_file)
    if history is None:
        log.warn(f"{clusters_file} is not at the top of a git checkout: the guard against removing a cluster by "
                 "accident cannot read its history")
        return
    gone = sorted(history - {c.name for c in fleet.clusters} - set(fleet.removed))
    if gone:
        raise ResourceError(
            f"clusters.yml: {', '.join(gone)} disappeared from clusters: without being listed under removed:; "
            "nothing is set (a successful build would archive their pipelines). Put them back, or list them "
            "under removed: to remove them on purpose")


def write_fleet_vars(fleet: Fleet, clusters_file: Path, out: Path, pipeline: Path | None) -> None:
    guard(fleet, clusters_file)
    if pipeline is not None:
        check_complete(fleet, pipeline)
    (out / "vars").mkdir(parents=True, exist_ok=True)
    for cluster in fleet.clusters:
        replace_file(out / "vars" / f"{cluster.name}.yml", _yaml(dict(cluster.vars)).encode("utf-8"), 0o644)
    names = [c.name for c in fleet.clusters]
    replace_file(out / "clusters.json", (json.dumps(names) + "\n").encode("utf-8"), 0o644)
    log.ok(f"{len(names)} cluster pipeline(s) to set: {', '.join(names)}"
           + (f"; removed on purpose: {', '.join(fleet.removed)}" if fleet.removed else ""))
