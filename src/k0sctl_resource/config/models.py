"""The source every step is given (its secret fields marked `secret()`) and the version: the values every layer
shares. The step params and the typed requests are in `k0sctl_resource.concourse`.

Names are the contract of README.md's "Source configuration"; `schema.from_json` enforces types and rejects
unknown keys.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from dataclasses import dataclass, field, replace
from os import PathLike
from types import MappingProxyType
from typing import Any

from k0sctl_resource.config.schema import Duration, from_json, required, secret, secret_paths
from k0sctl_resource.runtime.errors import ResourceError

NO_VERSION = "none"
BACKUP_TIMEOUT = Duration(60.0)  # source.backup.timeout's default (seconds)


def _empty_env() -> MappingProxyType[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True)
class K0sctlOptions:
    debug: bool = False
    trace: bool = False
    concurrency: int | None = None
    timeout: Duration | None = None
    env: MappingProxyType[str, str] = field(default_factory=_empty_env)

    def validate(self, path: str) -> None:
        if self.concurrency is not None and self.concurrency < 1:
            raise ResourceError(f"{path}.concurrency: must be at least 1")
        for name in self.env:
            if not name or "=" in name or "\x00" in name:
                raise ResourceError(f"{path}.env: invalid variable name {name[:40]!r}")


MIN_SECRET_LENGTH = 8
_URI_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/@?#]*?:(?P<pw>[^/@?#]*)@")


def uri_password(uri: str) -> str | None:
    """The password written into a URL (`https://user:password@host/…`), decoded as git decodes it, or None."""
    match = _URI_PASSWORD.match(uri)
    return urllib.parse.unquote(match.group("pw")) if match else None


def check_secret_length(value: str, path: str) -> None:
    """Every secret value is masked wherever it appears (logs, answers, commits): a very short one would
    match ordinary words and version numbers, and a put would then refuse its own answer."""
    if len(value) < MIN_SECRET_LENGTH:
        raise ResourceError(f"{path}: must be at least {MIN_SECRET_LENGTH} characters (a shorter value would be "
                            "masked inside ordinary words of every log line and answer)")


@dataclass(frozen=True)
class GitUser:
    name: str = "k0sctl-resource"
    email: str = "k0sctl-resource@localhost"


@dataclass(frozen=True)
class Retention:
    """`backup.retention`: which archives the branch's tree keeps, by restic's `forget` rules."""

    keep_last: int = 0
    keep_hourly: int = 0
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0
    keep_yearly: int = 0
    keep_within: Duration | None = None  # archives created this long before the newest one
    min_keep: int = 1
    timezone: str = "UTC"  # the zone of the calendar buckets (IANA name)

    COUNTS = ("keep_last", "keep_hourly", "keep_daily", "keep_weekly", "keep_monthly", "keep_yearly")

    def validate(self, path: str) -> None:
        from k0sctl_resource.config.zones import check_zone

        for name in self.COUNTS:
            if getattr(self, name) < 0:
                raise ResourceError(f"{path}.{name}: must be 0 or more")
        if self.min_keep < 1:
            raise ResourceError(f"{path}.min_keep: must be at least 1")
        if not any(getattr(self, name) for name in self.COUNTS) and self.keep_within is None:
            raise ResourceError(f"{path}: every keep_* is 0 and keep_within is unset, so this policy keeps "
                                "nothing; set at least one of them (or remove backup.retention to keep all)")
        check_zone(self.timezone, f"{path}.timezone")


@dataclass(frozen=True)
class BackupRepo:
    uri: str = required()
    branch: str = "k0sctl-backup"
    path: str = "backups"
    private_key: str | None = secret()
    username: str | None = None
    password: str | None = secret()
    keep: int = 0
    retention: Retention | None = None
    git_user: GitUser = field(default_factory=GitUser)
    timeout: Duration = BACKUP_TIMEOUT  # a git network call without progress for this long stops

    def validate(self, path: str) -> None:
        if not self.uri.strip():
            raise ResourceError(f"{path}.uri: must not be empty")
        if self.keep < 0:
            raise ResourceError(f"{path}.keep: must be 0 (keep all) or more")
        if self.keep and self.retention is not None and self.retention.keep_last:
            raise ResourceError(f"{path}.keep: is shorthand for retention.keep_last; set one of them, not both")
        if not 1 <= self.timeout <= 3600:
            raise ResourceError(f"{path}.timeout: must be between 1s and 1h")
        bad_branch = (
            not self.branch
            or self.branch.startswith(("-", "/", "."))
            or self.branch.endswith(("/", ".lock"))
            or any(c in self.branch for c in " ~^:?*[\\\x7f") or any(ord(c) < 0x20 for c in self.branch)
            or "@{" in self.branch or self.branch == "@" or "/." in self.branch or "//" in self.branch
            or ".." in self.branch
        )
        if bad_branch:
            raise ResourceError(f"{path}.branch: not a valid branch name")
        parts = [p for p in self.path.split("/") if p not in ("", ".")]
        if not parts or ".." in parts or self.path.startswith("/") or parts[0] == ".git":
            raise ResourceError(f"{path}.path: must be a relative folder inside the repository")
        if any(p.startswith("-") for p in parts) or any(ord(c) < 0x20 or c in "\\\x7f" for c in self.path):
            raise ResourceError(f"{path}.path: a folder name must not begin with '-' nor hold control characters")

    @property
    def policy(self) -> Retention | None:
        """The retention policy in force: `retention`, with `keep` as its keep_last; None keeps every archive."""
        if not self.keep:
            return self.retention
        return replace(self.retention or Retention(), keep_last=self.keep)

    @property
    def folder(self) -> str:
        return "/".join(p for p in self.path.split("/") if p not in ("", "."))


@dataclass(frozen=True)
class Encryption:
    recipients: tuple[str, ...] = ()
    identities: str | None = secret()
    passphrase: str | None = secret()
    plaintext: bool = False

    def validate(self, path: str) -> None:
        if self.passphrase is not None and self.recipients:
            raise ResourceError(f"{path}: set either recipients or passphrase, not both")
        for i, recipient in enumerate(self.recipients):
            if not recipient.startswith(("age1", "ssh-ed25519 ", "ssh-rsa ")):
                raise ResourceError(
                    f"{path}.recipients[{i}]: expected an age (age1…) or SSH (ssh-ed25519, ssh-rsa) public key"
                )

    @property
    def can_encrypt(self) -> bool:
        return bool(self.recipients) or self.passphrase is not None

    @property
    def can_decrypt(self) -> bool:
        return bool(self.identities) or self.passphrase is not None


@dataclass(frozen=True)
class Source:
    ssh_private_key: str | None = secret()
    ssh_known_hosts: str | None = None
    k0sctl: K0sctlOptions = field(default_factory=K0sctlOptions)
    backup: BackupRepo | None = None
    encryption: Encryption = field(default_factory=Encryption)

    def validate(self, path: str) -> None:
        """Every secret has the same length rule wherever it is given (see `check_secret_length`): the fields
        marked `secret()` and a password written into `backup.uri`."""
        for where in source_secret_paths():
            node: Any = self
            for name in where:
                node = getattr(node, name, None)
            if isinstance(node, str):
                check_secret_length(node, ".".join((path, *where)))
        if self.backup is not None and (embedded := uri_password(self.backup.uri)) is not None:
            check_secret_length(embedded, f"{path}.backup.uri: the password in the URL")

    def host_key_options(self, known_hosts: str | PathLike[str]) -> list[str]:
        """The ssh options that check host keys against the file `known_hosts` alone (written from
        `ssh_known_hosts`), as the function `host_key_options` below."""
        return host_key_options(self.ssh_known_hosts, known_hosts)


def host_key_options(ssh_known_hosts: str | None, known_hosts: str | PathLike[str]) -> list[str]:
    """The ssh options that check host keys against the file `known_hosts` alone (written from the lines
    `ssh_known_hosts`): strictly when those lines are given, else trust on first use into it."""
    checking = "yes" if ssh_known_hosts else "accept-new"
    return ["-o", f"UserKnownHostsFile={known_hosts}", "-o", f"StrictHostKeyChecking={checking}"]


def require_backup(source: Source, for_what: str) -> BackupRepo:
    """`source.backup`, or the one error for a step or param that cannot work without it:
    `<for_what> needs source.backup: the git repository that keeps the archives`."""
    if source.backup is None:
        raise ResourceError(f"{for_what} needs source.backup: the git repository that keeps the archives")
    return source.backup


@functools.cache
def source_secret_paths() -> tuple[tuple[str, ...], ...]:
    """Where a source carries secrets: the fields marked `secret()` above, and nothing else."""
    return secret_paths(Source)


def secrets_in(raw_source: Any) -> list[str]:
    """The secret values of a source as JSON (any shape, not yet validated): the strings at the fields
    marked `secret()` and the password written into `backup.uri`. It reads the request before it is
    validated, so that even a validation error cannot print one; it is the one list the redactor is fed
    from. A value shorter than the length rule is left out: validation refuses it (never printing it) before
    anything runs, and registered it would mask the letters of that very error line."""
    def at(path: tuple[str, ...]) -> Any:
        node = raw_source
        for name in path:
            node = node.get(name) if isinstance(node, dict) else None
        return node

    found = [v for path in source_secret_paths() if isinstance(v := at(path), str)]
    uri = at(("backup", "uri"))
    if isinstance(uri, str) and (embedded := uri_password(uri)):
        found.append(embedded)
    return [v for v in found if len(v) >= MIN_SECRET_LENGTH]


@dataclass(frozen=True)
class Version:
    ref: str = required()

    def validate(self, path: str) -> None:
        if self.ref != NO_VERSION and not (
            7 <= len(self.ref) <= 64 and all(c in "0123456789abcdef" for c in self.ref)
        ):
            raise ResourceError(f"{path}.ref: expected a commit sha or {NO_VERSION!r}")

    @property
    def is_none(self) -> bool:
        return self.ref == NO_VERSION

    def to_json(self) -> dict[str, str]:
        return {"ref": self.ref}


NONE_VERSION = Version(ref=NO_VERSION)


def parse_source(raw: Any) -> Source:
    return from_json(Source, raw, "source")
