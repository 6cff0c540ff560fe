"""Pipeline scenarios: the real resource (check / in / out as subprocesses, real git repositories, the
k0sctl double) driven through a model of how Concourse keeps versions (tests/support/concourse_model.py).
Each scenario asserts what a job's next `get` would receive, the thing that decides whether `install`
restores a rebuilt cluster.

The first tests hold the model itself to Concourse's behaviour (read from its source, see the model's
docstring), including the defect a placeholder version once caused (a put printing
`{"ref": "none"}` became the newest version).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.backup_support import BRANCH, age_key, backup_source, bare_repo, first_parents, git
from tests.support.concourse_model import Concourse, Pipeline, VersionHistory
from tests.support.fixtures import Double, k0sctl_yaml
from tests.support.k0sctl_hook import k0sctl_with_hook
from tests.support.resource import Resource
from tests.support.sshd import SshServer
from tests.system.test_pipeline import example_vars, our_steps, substitute
from tests.system.test_pipeline import pipeline as sample_pipeline

LOCAL_HOST = [{"role": "controller", "localhost": {"enabled": True}}]  # ping has nothing to probe: no traffic



def sample_puts() -> dict[str, tuple[str, dict[str, Any]]]:
    """job -> (resource, params) of the put of each job of the sample pipeline, vars filled in."""
    doc = substitute(sample_pipeline(), example_vars())
    found = {}
    for path, kind, step in our_steps(doc):
        if kind == "put":
            found[path.split(".", 1)[0]] = (step.get("resource", step["put"]), step["params"])
    return found


# The sample pipeline's puts (pipeline/pipeline.yml), as Concourse sends them; the ping's params go to
# a resource without a backup repository there (`cluster-hosts`), and to `cluster` in one test below.
SAMPLE = sample_puts()
PING, INIT, INSTALL, BACKUP, UNINSTALL = (SAMPLE[job][1] for job in ("ping", "init", "install", "backup",
                                                                       "uninstall"))


def v(ref: str) -> dict[str, str]:
    return {"ref": ref}


# -- the model, held to Concourse's documented behaviour ---------------------------------------------------

def test_model_a_known_version_does_not_move() -> None:
    history = VersionHistory()
    history.save_check([v("a")])
    history.save_check([v("a"), v("b")])
    assert history.newest() == v("b")
    history.save_put(v("a"))  # a put printing a version Concourse knows: it keeps its place
    assert history.newest() == v("b") and history.latest_for_job() == v("b")
    history.save_check([v("a")])  # a check answering only known versions changes nothing
    assert history.ordered() == [v("a"), v("b")]
    history.save_put(v("c"))  # a put printing a new version: it becomes the newest
    assert history.newest() == v("c") and history.ordered() == [v("a"), v("b"), v("c")]


def test_model_a_check_with_a_new_version_reorders_its_whole_answer() -> None:
    history = VersionHistory()
    history.save_check([v("a"), v("b"), v("c")])
    history.save_check([v("a"), v("d")])  # incrementCheckOrder: every version of the answer, in order
    assert history.ordered() == [v("b"), v("c"), v("a"), v("d")]


def test_model_jobs_skip_disabled_versions_but_checks_do_not() -> None:
    history = VersionHistory()
    history.save_check([v("a"), v("b")])
    history.disable(v("b"))
    assert history.latest_for_job() == v("a")
    assert history.newest() == v("b")  # the check still starts from b
    with pytest.raises(ValueError, match="empty version"):
        history.save_put({})


def test_model_shows_the_defect_of_a_placeholder_version() -> None:
    """Issue 12, defect 2: a put that printed `none` while backups existed made `none` the newest
    version, and the checks afterwards (answering the branch's tip, a known version) never moved it."""
    history = VersionHistory()
    history.save_check([v("init"), v("backup-1")])
    history.save_put(v("none"))  # the old ping, backup repository unreachable for a moment
    history.save_check([v("backup-1")])  # the old check from `none`: the tip alone, known
    assert history.latest_for_job() == v("none"), "install would have skipped the restore"


def test_model_histories_are_per_pipeline_unless_resources_are_global() -> None:
    separate = Concourse()
    assert separate.scope("a", "cluster", {"s": 1}) is not separate.scope("b", "cluster", {"s": 1})
    assert separate.scope("a", "cluster", {"s": 1}) is not separate.scope("a", "cluster", {"s": 2})
    shared = Concourse(global_resources=True)
    assert shared.scope("a", "cluster", {"s": 1}) is shared.scope("b", "other", {"s": 1})


# -- the real resource through the model -------------------------------------------------------------------

@pytest.fixture
def keys(tmp_path: Path, resource: Resource) -> tuple[str, str]:
    key = age_key(tmp_path)
    resource.secrets.append(key.identity)
    return key.recipient, key.identity


def cluster_source(uri: str, keys: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return backup_source(uri, recipients=[keys[0]], identities=keys[1], **extra)


@pytest.fixture
def pipeline(resource: Resource, repo: Path, keys: tuple[str, str]) -> Pipeline:
    """The sample pipeline's two resources of this type: `cluster` (backups) and `cluster-hosts` (ping)."""
    p = Pipeline(Concourse(), "k0s-prod", resource)
    p.resource("cluster", cluster_source(f"file://{repo}", keys))
    assert SAMPLE["ping"][0] == "cluster-hosts"
    resources = {r["name"]: r for r in substitute(sample_pipeline(), example_vars())["resources"]}
    p.resource("cluster-hosts", resources["cluster-hosts"]["source"])
    return p


class Builds:
    """A fresh put directory per build, holding the config repository's k0sctl.yaml (a get of `config`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def new(self) -> Path:
        self.count += 1
        build = self.root / f"build-{self.count}"
        (build / "config").mkdir(parents=True)
        (build / "config" / "k0sctl.yaml").write_text(k0sctl_yaml(hosts=LOCAL_HOST), encoding="utf-8")
        return build


@pytest.fixture
def builds(tmp_path: Path) -> Builds:
    return Builds(tmp_path / "builds")


def install(p: Pipeline, builds: Builds) -> tuple[dict[str, Any], Any]:
    """The `install` job: get cluster (the newest version), then apply restoring from it."""
    build = builds.new()
    p.get("cluster", build / "cluster", job="install").expect_ok()
    fetched = json.loads((build / "cluster" / "metadata.json").read_text(encoding="utf-8"))
    return fetched, p.put("cluster", INSTALL, build, job="install")


def restores(double: Double) -> int:
    return len(double.state().get("restores", []))


def test_ping_before_init_leaves_install_waiting(pipeline: Pipeline, builds: Builds, double: Double,
                                                 repo: Path) -> None:
    """The sample pipeline: ping runs first on unpause; it has a resource of its own without a backup
    repository, so it cannot give `cluster` a version, and install waits for init."""
    p = pipeline
    assert p.check("cluster").expect_ok().answer == []
    assert "run a put with params.command: init" in p.check("cluster").stderr
    p.put("cluster-hosts", PING, builds.new(), job="ping").expect_ok()
    assert p.next_get("cluster-hosts") == v("none")
    assert p.next_get("cluster") is None, "install must wait: cluster has no version before init"
    assert git(repo, "for-each-ref") == "", "ping must not touch the backup repository"

    init = p.put("cluster", INIT, builds.new(), job="init").expect_ok().answer["version"]
    assert p.next_get("cluster") == init
    fetched, run = install(p, builds)
    run.expect_ok()
    assert fetched["kind"] == "init" and "fresh install" in run.stderr
    assert run.answer["version"] == init and p.next_get("cluster") == init  # known: nothing moves


def test_ping_on_the_cluster_resource_before_init(pipeline: Pipeline, builds: Builds, double: Double,
                                                  repo: Path) -> None:
    """A pipeline that pings through the backed-up resource (the old sample): ping creates the branch
    with init's empty commit, so the version install takes is that commit, never a placeholder; the
    later `init` finds the branch and changes nothing."""
    p = pipeline
    first = p.put("cluster", PING, builds.new(), job="ping").expect_ok().answer["version"]
    assert first == v(first_parents(repo)[0]) and p.next_get("cluster") == first
    again = p.put("cluster", INIT, builds.new(), job="init").expect_ok()
    assert again.answer["version"] == first and again.metadata["created"] == "false"
    fetched, run = install(p, builds)
    run.expect_ok()
    assert fetched["kind"] == "init" and p.next_get("cluster") == first


def test_an_apply_before_init_on_a_running_cluster(pipeline: Pipeline, builds: Builds, double: Double,
                                                   repo: Path) -> None:
    """An apply with backup_first outside the sample's order (no get of cluster): it creates the branch
    with init's empty commit, backs the running cluster up onto it and prints that backup. init then
    refuses (the branch holds an archive) and is not needed; Concourse saves nothing from it."""
    p = pipeline
    double.set(running=True)
    apply = {k: val for k, val in INSTALL.items() if k not in ("restore_from", "restore")}
    run = p.put("cluster", apply, builds.new(), job="install").expect_ok()
    init, backup = first_parents(repo)
    assert run.answer["version"] == v(backup) == v(run.metadata["backup_ref"])
    refused = p.put("cluster", INIT, builds.new(), job="init")
    assert refused.returncode != 0 and "is not needed" in refused.error_lines[0]
    assert p.next_get("cluster") == v(backup) and p.history("cluster").ordered() == [v(backup)]
    assert init != backup


def test_a_backup_repository_down_during_ping_keeps_the_restore(resource: Resource, builds: Builds,
                                                                double: Double, tmp_path: Path,
                                                                keys: tuple[str, str]) -> None:
    """The backup repository's SSH server is down while ping runs (on the backed-up resource): the
    put fails and Concourse saves nothing, so install on a rebuilt cluster still restores."""
    server = SshServer(tmp_path / "sshd").start()
    try:
        served = bare_repo(tmp_path / "served.git")
        resource.secrets.append(server.client_key)
        p = Pipeline(Concourse(), "k0s-prod", resource)
        p.resource("cluster", cluster_source(server.url(served), keys, private_key=server.client_key,
                                             known_hosts=server.known_hosts))
        p.put("cluster", INIT, builds.new(), job="init").expect_ok()
        double.set(running=True)
        backup = p.put("cluster", BACKUP, builds.new(), job="backup").expect_ok().answer["version"]
        p.check("cluster").expect_ok()
        assert p.next_get("cluster") == backup

        server.stop()
        down = p.put("cluster", PING, builds.new(), job="ping")
        assert down.returncode != 0 and len(down.error_lines) == 1
        assert "could not be reached" in down.error_lines[0] or "cannot read" in down.error_lines[0]
        assert p.check("cluster").returncode != 0  # the check fails too: nothing saved
        server.start()
        p.check("cluster").expect_ok()
        assert p.next_get("cluster") == backup

        double.set(running=False)  # the cluster was rebuilt
        fetched, run = install(p, builds)
        run.expect_ok()
        assert fetched["ref"] == backup["ref"] and run.metadata["restored"] == "true" and restores(double) == 1
    finally:
        server.stop()


@pytest.fixture
def backed_up(pipeline: Pipeline, builds: Builds, double: Double) -> Iterator[dict[str, str]]:
    """init, then a nightly backup of the running cluster; the newest version is that backup."""
    pipeline.put("cluster", INIT, builds.new(), job="init").expect_ok()
    double.set(running=True)
    backup = pipeline.put("cluster", BACKUP, builds.new(), job="backup").expect_ok().answer["version"]
    pipeline.check("cluster").expect_ok()
    yield backup


def test_install_after_a_backup_restores_it_and_prints_its_own_backup(
        pipeline: Pipeline, builds: Builds, double: Double, backed_up: dict[str, str]) -> None:
    p = pipeline
    assert p.next_get("cluster") == backed_up
    double.set(running=False)  # rebuilt hosts: nothing to back up first, the newest backup is restored
    fetched, run = install(p, builds)
    run.expect_ok()
    assert fetched["kind"] == "backup" and run.metadata["restored"] == "true" and restores(double) == 1
    assert "nothing to back up" in run.stderr and "level=fatal" not in run.stderr
    assert run.answer["version"] == backed_up and p.next_get("cluster") == backed_up
    # a config change later: the running cluster is backed up first, and that backup is the new newest
    fetched, run = install(p, builds)
    run.expect_ok()
    assert run.metadata["restored"] == "false" and run.answer["version"] == v(run.metadata["backup_ref"])
    assert p.next_get("cluster") == run.answer["version"] != backed_up


@pytest.mark.parametrize("job", ["install", "uninstall"])
def test_a_backup_repository_gone_during_apply_or_reset(pipeline: Pipeline, builds: Builds, double: Double,
                                                         repo: Path, backed_up: dict[str, str], job: str) -> None:
    """The get succeeded; the repository is unreachable when the put runs: the put fails before
    k0sctl runs, Concourse saves nothing, and the next install still restores the backup."""
    p = pipeline
    build = builds.new()
    p.get("cluster", build / "cluster", job=job).expect_ok()
    before = len(double.commands())
    repo.rename(repo.with_name("away.git"))
    run = p.put("cluster", INSTALL if job == "install" else UNINSTALL, build, job=job)
    assert run.returncode != 0 and len(run.error_lines) == 1 and "nothing was changed" in run.error_lines[0]
    assert len(double.commands()) == before, "k0sctl must not run"
    assert double.state()["running"] is True
    repo.with_name("away.git").rename(repo)
    p.check("cluster").expect_ok()
    assert p.next_get("cluster") == backed_up

    double.set(running=False)
    fetched, again = install(p, builds)
    again.expect_ok()
    assert fetched["ref"] == backed_up["ref"] and again.metadata["restored"] == "true"


def test_a_backup_repository_lost_while_k0sctl_applies(pipeline: Pipeline, builds: Builds, double: Double,
                                                       repo: Path, backed_up: dict[str, str],
                                                       tmp_path: Path, resource: Resource) -> None:
    """The cluster action has happened: the put prints the commit it read before (known to Concourse,
    so nothing moves) and warns; the next install still gets the backup."""
    away = shlex.quote(str(repo.with_name("away.git")))
    resource.path_prefix.insert(0, k0sctl_with_hook(tmp_path / "hook", "apply", f"mv {shlex.quote(str(repo))} {away}"))
    double.set(running=False)
    _fetched, run = install(pipeline, builds)
    run.expect_ok()
    assert run.metadata["restored"] == "true" and run.answer["version"] == backed_up
    assert "could not read branch" in run.stderr
    repo.with_name("away.git").rename(repo)
    assert pipeline.next_get("cluster") == backed_up


def test_a_check_after_a_rewritten_branch(pipeline: Pipeline, builds: Builds, double: Double, repo: Path,
                                          backed_up: dict[str, str]) -> None:
    p = pipeline
    init, _backup = first_parents(repo)
    # init with force: a new root commit, printed by the put, so Concourse takes it as the newest
    fresh = p.put("cluster", {**INIT, "force": True}, builds.new(), job="init").expect_ok().answer["version"]
    assert p.next_get("cluster") == fresh
    assert p.check("cluster").expect_ok().answer == [fresh] and p.next_get("cluster") == fresh

    # Rolled back by hand to a commit Concourse already knows: the check from the gone version answers
    # the tip, a known version, so Concourse does not move it; jobs keep getting the gone version, which
    # the server still serves by its sha (git protocol v2, as GitHub does) until it is garbage-collected.
    git(repo, "update-ref", f"refs/heads/{BRANCH}", backed_up["ref"])
    assert p.check("cluster").expect_ok().answer == [backed_up]
    assert p.next_get("cluster") == fresh and fresh["ref"] not in first_parents(repo)
    # What the README tells operators to do after such a rewrite: disable the gone version in Concourse
    # (fly disable-resource-version), or run a backup, whose new commit becomes the newest.
    p.history("cluster").disable(fresh)
    assert p.next_get("cluster") == backed_up
    double.set(running=True)
    newest = p.put("cluster", BACKUP, builds.new(), job="backup").expect_ok().answer["version"]
    assert p.next_get("cluster") == newest and first_parents(repo)[:2] == [init, backed_up["ref"]]


def test_two_pipelines_sharing_one_backup_repository(resource: Resource, builds: Builds, double: Double,
                                                     repo: Path, keys: tuple[str, str]) -> None:
    concourse = Concourse()
    a = Pipeline(concourse, "k0s-a", resource)
    b = Pipeline(concourse, "k0s-b", resource)
    for p in (a, b):
        p.resource("cluster", cluster_source(f"file://{repo}", keys))
    init = a.put("cluster", INIT, builds.new(), job="init").expect_ok().answer["version"]
    assert b.check("cluster").expect_ok().answer == [init]
    double.set(running=True)
    backup_a = a.put("cluster", BACKUP, builds.new(), job="backup").expect_ok().answer["version"]
    assert a.next_get("cluster") == backup_a
    assert b.next_get("cluster") == init  # b has not checked yet: its own history
    b.check("cluster").expect_ok()
    assert b.next_get("cluster") == backup_a

    double.set(running=False)
    fetched, run = install(b, builds)  # b's rebuilt cluster restores a's backup
    run.expect_ok()
    assert fetched["ref"] == backup_a["ref"] and run.metadata["restored"] == "true"
    assert run.answer["version"] == backup_a

    backup_b = b.put("cluster", BACKUP, builds.new(), job="backup").expect_ok().answer["version"]
    assert a.next_get("cluster") == backup_a
    a.check("cluster").expect_ok()
    assert a.next_get("cluster") == backup_b and a.history("cluster").ordered()[-2:] == [backup_a, backup_b]

    # With global resources the same source is one history: b's put is a's newest at once.
    shared = Concourse(global_resources=True)
    ga, gb = Pipeline(shared, "k0s-a", resource), Pipeline(shared, "k0s-b", resource)
    for p in (ga, gb):
        p.resource("cluster", cluster_source(f"file://{repo}", keys))
    ga.check("cluster").expect_ok()
    double.set(running=True)
    newest = gb.put("cluster", BACKUP, builds.new(), job="backup").expect_ok().answer["version"]
    assert ga.next_get("cluster") == newest
