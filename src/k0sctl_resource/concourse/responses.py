"""What a step answers on stdout: one typed response per step, turned into JSON by the runner.

check answers the list of versions, oldest first; get and put answer one version and its metadata.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from k0sctl_resource.concourse.protocol import metadata
from k0sctl_resource.config.models import Version


@dataclass(frozen=True)
class CheckResponse:
    versions: list[Version]

    def to_json(self) -> list[dict[str, str]]:
        return [version.to_json() for version in self.versions]


@dataclass
class StepResponse:
    """The answer of a get or put: the version, and its facts as metadata (None values left out)."""

    version: Version
    facts: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version.to_json(), "metadata": metadata(self.facts)}


Response = CheckResponse | StepResponse
