"""The Concourse build variables a get or put may see; used where present, never required."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class BuildEnv:
    build_id: str | None
    build_name: str | None
    job_name: str | None
    pipeline_name: str | None
    team_name: str | None
    external_url: str | None
    build_url: str | None

    @classmethod
    def from_environ(cls, env: dict[str, str] | None = None) -> BuildEnv:
        e = dict(os.environ) if env is None else env

        def get(name: str) -> str | None:
            return e.get(name) or None

        url = get("BUILD_URL")
        external = get("ATC_EXTERNAL_URL")
        if url is None and external and get("BUILD_ID"):
            # Before Concourse v8 there is no BUILD_URL; one-off builds have no job, so use the id form.
            url = f"{external.rstrip('/')}/builds/{get('BUILD_ID')}"
        return cls(
            build_id=get("BUILD_ID"),
            build_name=get("BUILD_NAME"),
            job_name=get("BUILD_JOB_NAME"),
            pipeline_name=get("BUILD_PIPELINE_NAME"),
            team_name=get("BUILD_TEAM_NAME"),
            external_url=external,
            build_url=url,
        )

    def describe(self) -> str:
        """`team/pipeline/job #build` as far as known, for commit messages and logs."""
        parts = [p for p in (self.team_name, self.pipeline_name, self.job_name) if p]
        where = "/".join(parts) if parts else "one-off build"
        return f"{where} #{self.build_name}" if self.build_name else where
