"""Retention under concurrency, against a real bare repository, with puts running in threads:

- backups racing, each applying the policy: nothing the policy keeps (over every archive any of them
  saw or wrote) is lost, every put's printed commit holds its own archive, and no name is used twice
  (retention may have removed an archive of a racer's second before it pushed);
- a drill running while backups prune: the drill restores its archive whole, its record names it, its
  version still gives it back (the history keeps it), and once the drill passed retention keeps it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from k0sctl_resource.config.models import Retention
from k0sctl_resource.gitstore.commit_format import archive_created
from k0sctl_resource.gitstore.retention import Archive, decide
from tests.steps.test_drill import drill, scratch_config
from tests.steps.test_prune_verify import daily, files
from tests.support.backup_support import (
    BRANCH,
    backup_source,
    commit_trailers,
    first_parents,
    git,
    in_threads,
    parallel_resources,
    put_request,
)
from tests.support.fixtures import CLUSTER_NAME, Double
from tests.support.resource import Resource
from tests.support.scratch_api import ScratchApiServer

POLICY = {"keep_last": 1, "keep_daily": 3}


def test_backups_racing_with_retention_lose_nothing_the_policy_keeps(tmp_path: Path, workdir: Path, repo: Path,
                                                                     running: Double) -> None:
    seeded = daily(repo, 6)
    source = backup_source(f"file://{repo}", plaintext=True, retention=POLICY)
    resources = parallel_resources(tmp_path, running, 4)
    runs: list[Any] = [None] * len(resources)

    def one(i: int) -> None:
        runs[i] = resources[i].put(put_request(source, "backup"), workdir, timeout=300)

    in_threads(len(resources), one)
    new = []
    for run in runs:
        run.expect_ok()
        ref = run.answer["version"]["ref"]
        assert ref in first_parents(repo) and run.metadata["archive"] in files(repo, ref), "its commit holds it"
        new.append(run.metadata["archive"])
    history = [p.rsplit("/", 1)[-1] for p in
               git(repo, "log", "--first-parent", "--diff-filter=A", "--name-only", "--format=", BRANCH).split()]
    reused = sorted({n for n in history if history.count(n) > 1})
    assert not reused, f"an archive name was reused in the branch's history: {reused} (the puts reported {new})"
    print(f"4 racing backups stored {', '.join(sorted(new))}; the branch added {len(history)} names")
    every = [Archive(n, created) for n in [*seeded, *new] if (created := archive_created(n, CLUSTER_NAME))]
    wanted = set(decide(every, Retention(keep_last=1, keep_daily=3), now=datetime.now(UTC)).kept)
    final = set(files(repo))
    assert wanted <= final, f"lost to the race: {wanted - final}"
    assert final <= wanted | set(new), f"left behind: {final - wanted - set(new)}"


def test_a_drill_running_while_backups_prune_keeps_its_archive(tmp_path: Path, workdir: Path, repo: Path,
                                                               running: Double, resource: Resource,
                                                               scratch_api: ScratchApiServer) -> None:
    source = backup_source(f"file://{repo}", plaintext=True, keep=1)
    scratch_config(workdir, controller=scratch_api.address)  # the drill proves the API it restored
    drilled = resource.put(put_request(source, "backup"), workdir).expect_ok()
    ref = drilled.answer["version"]["ref"]
    resource.get({"source": source, "version": {"ref": ref}}, workdir / "cluster").expect_ok()
    record = json.loads((workdir / "cluster" / "metadata.json").read_text(encoding="utf-8"))

    scratch = Double(tmp_path / "scratch-double")  # the scratch hosts: a cluster of their own
    scratch.dir.mkdir()
    # every k0sctl command of the drill takes a while; its kubeconfig names the scratch API server
    scratch.set(running=False, sleep=0.5, kubeconfig_text=scratch_api.admin_kubeconfig())
    (tmp_path / "drill").mkdir()
    (tmp_path / "pruners").mkdir()
    (drill_resource,) = parallel_resources(tmp_path / "drill", scratch, 1)
    pruners = parallel_resources(tmp_path / "pruners", running, 1)
    outcome: dict[str, Any] = {}

    def one(i: int) -> None:
        if i == 0:
            outcome["drill"] = drill(drill_resource, workdir, source)
        else:
            outcome["backups"] = [pruners[0].put(put_request(source, "backup"), workdir) for _ in range(3)]

    in_threads(2, one)
    run = outcome["drill"].expect_ok()
    for backup in outcome["backups"]:
        backup.expect_ok()
    assert drilled.metadata["archive"] not in files(repo), "the backups pruned it from the tree meanwhile"
    (restored,) = scratch.state()["restores"]
    assert restored["sha256"] == record["sha256"], "the drill restored the archive whole"
    (drill_commit,) = first_parents(repo, f"k0sctl-drills/{BRANCH}")
    trailers = commit_trailers(repo, drill_commit)
    assert trailers["Drilled-Ref"] == ref and trailers["Drilled-Archive"] == drilled.metadata["archive"]
    assert run.metadata["drill_result"] == "passed"
    again = resource.get({"source": source, "version": {"ref": ref}}, tmp_path / "again").expect_ok()
    assert again.metadata["sha256"] == record["sha256"], "its version still gives the archive back"

    # Once a drill passed on an archive still in the tree, retention keeps that archive.
    newest = resource.put(put_request(source, "backup"), workdir).expect_ok()
    resource.get({"source": source, "version": newest.answer["version"]}, workdir / "cluster").expect_ok()
    scratch.set(sleep=0)
    drill(drill_resource, workdir, source).expect_ok()
    for _ in range(2):
        later = resource.put(put_request(source, "backup"), workdir).expect_ok()
        assert "last drill" in later.metadata["kept"]
    assert set(files(repo)) == {newest.metadata["archive"], later.metadata["archive"]}
