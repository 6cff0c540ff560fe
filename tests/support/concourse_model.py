"""A model of how Concourse keeps a resource's version history, to drive the real resource through it.

Written from Concourse's source (github.com/concourse/concourse, read 2026-11-29 at 95872ce1a), not
copied from it:

- `atc/db/resource_config_scope.go`, `saveVersions` / `saveResourceVersion` / `incrementCheckOrder`:
  a check's answer is saved in its order; when at least one of its versions is new, every version of the
  answer, in order, gets a `check_order` above the highest one, so the answer's last version becomes the
  newest; when none is new, nothing moves. `LatestVersion` is the highest `check_order`.
- `atc/exec/check_step.go`: a check runs from `LatestVersion` (no version at all on the first check);
  a check that fails saves nothing.
- `atc/exec/put_step.go` + `atc/db/build.go` `SaveOutput`: a put's version is saved only when the put
  exits 0; a version not seen before gets a `check_order` above the highest (it becomes the newest),
  a known one keeps its place (only its metadata is updated).
- `atc/db/versions_db.go` (`LatestVersionOfResource`): a job's `get` without `passed` or a pin takes
  the version with the highest `check_order` that is not disabled.
- `atc/db/resource_config.go` `findOrCreateResourceConfigScope`: each pipeline resource has its own
  history (the default, global resources off); with global resources, resources of the same type and
  `source` share one. A changed `source` is a new resource config, hence a new, empty history.

The pipeline side (`Pipeline`) runs the real `check`, `in` and `out` as subprocesses through
tests/resource.py and records what they print the way Concourse would.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.resource import BUILD_ENV, Resource, StepRun

Version = dict[str, str]


def _key(version: Mapping[str, str]) -> str:
    if not version:
        raise ValueError("Concourse refuses an empty version")  # saveResourceVersion
    return json.dumps(dict(version), sort_keys=True)


@dataclass
class VersionHistory:
    """One resource config scope: its versions and their `check_order`."""

    orders: dict[str, int] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)

    def _move_to_newest(self, key: str) -> None:
        self.orders[key] = max(self.orders.values(), default=0) + 1

    def save_check(self, answer: list[Version]) -> None:
        """What Concourse does with a successful check's answer."""
        keys = [_key(v) for v in answer]
        new = [k for k in keys if k not in self.orders]
        if not new:
            return
        for key in keys:
            self._move_to_newest(key)

    def save_put(self, version: Version) -> None:
        """What Concourse does with the version a successful put printed."""
        key = _key(version)
        if key not in self.orders:
            self._move_to_newest(key)

    def newest(self) -> Version | None:
        """The version the next check starts from."""
        if not self.orders:
            return None
        return dict(json.loads(max(self.orders, key=self.orders.__getitem__)))

    def latest_for_job(self) -> Version | None:
        """What a job's `get` without `passed` or a pin takes."""
        enabled = [k for k in self.orders if k not in self.disabled]
        if not enabled:
            return None
        return dict(json.loads(max(enabled, key=self.orders.__getitem__)))

    def disable(self, version: Version) -> None:
        self.disabled.add(_key(version))

    def ordered(self) -> list[Version]:
        """Every version, oldest first (the order of the resource's page in the web UI, reversed)."""
        return [dict(json.loads(k)) for k in sorted(self.orders, key=self.orders.__getitem__)]


@dataclass
class Concourse:
    """The histories of every pipeline of one Concourse."""

    global_resources: bool = False
    scopes: dict[str, VersionHistory] = field(default_factory=dict)

    def scope(self, pipeline: str, resource: str, source: Mapping[str, Any]) -> VersionHistory:
        config = json.dumps(source, sort_keys=True)
        key = config if self.global_resources else f"{pipeline}/{resource}/{config}"
        return self.scopes.setdefault(key, VersionHistory())


@dataclass
class Pipeline:
    """One pipeline's resources of the resource type under test, run for real, recorded by the model."""

    concourse: Concourse
    name: str
    harness: Resource
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    pins: dict[str, Version] = field(default_factory=dict)

    def resource(self, name: str, source: dict[str, Any]) -> None:
        self.sources[name] = source

    def history(self, name: str) -> VersionHistory:
        return self.concourse.scope(self.name, name, self.sources[name])

    def build_env(self, job: str) -> dict[str, str]:
        return {**BUILD_ENV, "BUILD_PIPELINE_NAME": self.name, "BUILD_JOB_NAME": job,
                "BUILD_URL": f"https://ci.example.test/teams/main/pipelines/{self.name}/jobs/{job}/builds/1"}

    def check(self, name: str) -> StepRun:
        """A periodic check: from the newest version, saved when it succeeds."""
        history = self.history(name)
        request: dict[str, Any] = {"source": self.sources[name]}
        since = history.newest()
        if since is not None:
            request["version"] = since
        run = self.harness.check(request)
        if run.returncode == 0:
            history.save_check(run.answer)
        return run

    def put(self, name: str, params: dict[str, Any], directory: Path, *, job: str) -> StepRun:
        """A put step of `job`: its version is saved when it succeeds."""
        run = self.harness.put({"source": self.sources[name], "params": params}, directory, env=self.build_env(job))
        if run.returncode == 0:
            self.history(name).save_put(run.answer["version"])
        return run

    def next_get(self, name: str) -> Version | None:
        """The version a job's `get: <name>` (no `passed`) would receive now; None: the job waits."""
        return self.pins.get(name) or self.history(name).latest_for_job()

    def get(self, name: str, directory: Path, *, job: str, params: dict[str, Any] | None = None) -> StepRun:
        """A job's `get`: the real `in` of the version the model hands it."""
        version = self.next_get(name)
        assert version is not None, f"{name} has no version yet: a job with `get: {name}` would wait"
        request: dict[str, Any] = {"source": self.sources[name], "version": version}
        if params:
            request["params"] = params
        return self.harness.get(request, directory, env=self.build_env(job))
