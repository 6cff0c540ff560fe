"""The folder a get writes, and that `restore_from` of apply and drill reads: its file names, and the
record of the version it holds (metadata.json), written from the commit's typed facts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k0sctl_resource.gitstore.commit_format import CommitFacts, CommitInfo, metadata_of
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT
from k0sctl_resource.runtime.workspace import replace_file

METADATA_FILE = "metadata.json"
PLAIN_FILE = "backup.tar.gz"
ENCRYPTED_FILE = "backup.tar.gz.age"


@dataclass(frozen=True)
class FolderRecord:
    """What a get's metadata.json records: the version's ref and kind ("backup", "init", "unknown" for a
    commit this resource did not write, "none" for the placeholder) and the facts its commit records."""

    ref: str
    kind: str
    facts: CommitFacts | None = None

    @classmethod
    def of(cls, info: CommitInfo) -> FolderRecord:
        return cls(info.sha, info.kind, info.facts)

    def to_json(self) -> dict[str, Any]:
        """metadata.json: the ref and kind, then the facts as `metadata_of` gives them."""
        meta: dict[str, Any] = {"ref": self.ref, "kind": self.kind}
        if self.facts is not None:
            meta.update(metadata_of(self.facts))
        return meta

    def write(self, directory: Path) -> dict[str, Any]:
        """Write metadata.json into `directory` (refused if it would hold a secret); what it holds."""
        meta = self.to_json()
        text = json.dumps(meta, indent=2) + "\n"
        if REDACT(text) != text:
            raise ResourceError("refusing to write metadata.json: it would contain a secret value")
        replace_file(directory / METADATA_FILE, text.encode("utf-8"), 0o644)  # the facts are no secret
        return meta
