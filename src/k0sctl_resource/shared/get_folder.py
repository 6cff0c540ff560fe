"""The folder a get writes, and that `restore_from` of apply and drill reads: its file names, and the
record of the version it holds (metadata.json), written from the commit's typed facts and read back
into them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from k0sctl_resource.config.paths import read_regular
from k0sctl_resource.gitstore.commit_format import BackupFacts, CommitFacts, CommitInfo, facts_of_metadata, metadata_of
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.redact import REDACT
from k0sctl_resource.runtime.workspace import replace_file

METADATA_FILE = "metadata.json"
PLAIN_FILE = "backup.tar.gz"
ENCRYPTED_FILE = "backup.tar.gz.age"
METADATA_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class FolderRecord:
    """What a get's metadata.json records: the version's ref and kind ("backup", "init", "unknown" for a
    commit this resource did not write, "none" for the placeholder) and the facts its commit records.

    Read back, `kind` is None when the file names none, `ref` empty when it names none, and `malformed`
    names the facts the file holds in a form their type does not allow (left out of `facts`)."""

    ref: str
    kind: str | None
    facts: CommitFacts | None = None
    malformed: tuple[str, ...] = ()

    @classmethod
    def of(cls, info: CommitInfo) -> FolderRecord:
        return cls(info.sha, info.kind, info.facts)

    @property
    def backup(self) -> BackupFacts:
        """The facts of a backup's record; none at all for a record of another kind."""
        return self.facts if isinstance(self.facts, BackupFacts) else BackupFacts()

    @property
    def short_ref(self) -> str:
        """The ref as messages name a version ("?" when the record names none)."""
        return self.ref[:12] or "?"

    def to_json(self) -> dict[str, Any]:
        """metadata.json: the ref and kind, then the facts as `metadata_of` gives them."""
        meta: dict[str, Any] = {"ref": self.ref, "kind": self.kind}
        if self.facts is not None:
            meta.update(metadata_of(self.facts))
        return meta

    @classmethod
    def of_json(cls, meta: dict[str, Any]) -> FolderRecord:
        """`to_json` read back; keys it does not know are ignored."""
        ref, kind = meta.get("ref"), meta.get("kind")
        facts, malformed = facts_of_metadata(kind, meta)
        return cls(ref if isinstance(ref, str) else "", kind if isinstance(kind, str) else None, facts, malformed)

    def write(self, directory: Path) -> dict[str, Any]:
        """Write metadata.json into `directory` (refused if it would hold a secret); what it holds."""
        meta = self.to_json()
        text = json.dumps(meta, indent=2) + "\n"
        if REDACT(text) != text:
            raise ResourceError("refusing to write metadata.json: it would contain a secret value")
        replace_file(directory / METADATA_FILE, text.encode("utf-8"), 0o644)  # the facts are no secret
        return meta

    @classmethod
    def read(cls, directory: Path, name: str = "restore_from") -> FolderRecord | None:
        """The metadata.json in `directory` (None when there is none), refused in one line naming
        `params.<name>` when it is not a regular file (a symbolic link included) of at most 1 MiB of JSON
        holding an object."""
        path = directory / METADATA_FILE
        try:
            os.lstat(path)
        except FileNotFoundError:
            return None
        data = read_regular(path, f"params.{name}: {METADATA_FILE}", METADATA_LIMIT, follow=False)
        try:
            meta = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise ResourceError(f"params.{name}: {METADATA_FILE} is not valid JSON; refusing it") from None
        if not isinstance(meta, dict):
            raise ResourceError(f"params.{name}: {METADATA_FILE} does not hold a JSON object; refusing it")
        return cls.of_json(meta)
