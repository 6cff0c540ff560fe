"""What a put or get answers: a version and metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from k0sctl_resource.concourse.protocol import metadata
from k0sctl_resource.config.models import Version


@dataclass
class StepResult:
    version: Version
    facts: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"version": self.version.to_json(), "metadata": metadata(self.facts)}
