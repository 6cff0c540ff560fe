"""`source.backup.uri` as data: the one place that decides which URLs git may be given.

Accepted: `ssh://` (and `git+ssh://`), scp-style `[user@]host:path`, `https://`, `file://` and absolute
local paths, and `http://` without credentials. Refused before git runs: anything git would hand to a
program or a descriptor (`ext::…`, `fd::…`, any `<helper>::…`, unknown `<scheme>://` which git maps to
`git-remote-<scheme>`), `git://` (no authentication, no encryption), and any host, user or path that
begins with `-` (git and ssh would read it as an option). The result names the one git transport in use,
for `GIT_ALLOW_PROTOCOL`.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Literal

from k0sctl_resource.runtime.errors import ResourceError

Transport = Literal["ssh", "http", "https", "file"]

WHERE = "source.backup.uri"
_EXPECTED = "expected an ssh://, git@host:path, https:// or file:// URL"
_HELPER = re.compile(r"^[A-Za-z0-9+.-]+::")  # git's `<transport>::<address>` (remote helpers)
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:\[\]]+)@)?(?P<host>\[[^\]/]+\]|[^@/:\[\]]+):(?P<path>.*)$")
_HOST = re.compile(r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.-]+)?\])$")
_USER = re.compile(r"^[A-Za-z0-9_.+~][A-Za-z0-9_.+~-]*$")
_SCHEMES: dict[str, Transport] = {"ssh": "ssh", "git+ssh": "ssh", "ssh+git": "ssh", "https": "https",
                                  "http": "http", "file": "file"}


def _fail(reason: str) -> ResourceError:
    return ResourceError(f"{WHERE}: {reason}")


def _check_host(host: str) -> str:
    if host.startswith("-"):
        raise _fail("the host must not begin with '-'")
    if not _HOST.match(host):
        raise _fail("not a valid host name or address")
    return host.strip("[]")


def _check_user(user: str, what: str) -> None:
    if user.startswith("-"):
        raise _fail(f"the {what} must not begin with '-'")
    if not _USER.match(user):
        raise _fail(f"the {what} holds characters that are not allowed in a login name")


def _check_path(path: str) -> None:
    if path.startswith("-"):
        raise _fail("the path must not begin with '-'")


@dataclass(frozen=True)
class RemoteUrl:
    """The backup repository's URL, split into what git may see and the credentials it must not."""

    url: str  # credential-free: passed to git, shown in logs and errors
    transport: Transport
    host: str | None
    username: str | None = None
    password: str | None = None
    port: int | None = None

    @property
    def origin(self) -> str | None:
        """`scheme://host[:port]` as git names it in a credential request (HTTP(S) only)."""
        if self.transport not in ("http", "https") or self.host is None:
            return None
        netloc = urllib.parse.urlsplit(self.url).netloc.rsplit("@", 1)[-1]
        return f"{self.transport}://{netloc.lower()}"

    @classmethod
    def parse(cls, uri: str) -> RemoteUrl:
        text = uri.strip()
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
            raise _fail("contains a control character (a newline or the like)")
        if not text:
            raise _fail("must not be empty")
        if _HELPER.match(text):
            raise _fail("a `<transport>::address` URL makes git run a program; " + _EXPECTED)
        if text.startswith("-"):
            raise _fail("must not begin with '-'; " + _EXPECTED)
        if "://" in text:
            return cls._parse_url(text)
        if text.startswith("/"):
            return cls(url=text, transport="file", host=None)
        match = _SCP_LIKE.match(text)
        if match is None or not match.group("path"):
            raise _fail(_EXPECTED)
        if match.group("user") is not None:
            _check_user(match.group("user"), "user")
        host = _check_host(match.group("host"))
        _check_path(match.group("path"))
        return cls(url=text, transport="ssh", host=host)

    @classmethod
    def _parse_url(cls, text: str) -> RemoteUrl:
        scheme_text = text.split("://", 1)[0].lower()
        transport = _SCHEMES.get(scheme_text)
        if transport is None:
            if scheme_text == "git":
                raise _fail("git:// has neither authentication nor encryption; use ssh:// or https://")
            shown = scheme_text if len(scheme_text) <= 20 and scheme_text.isprintable() else scheme_text[:20] + "…"
            raise _fail(f"unsupported scheme {shown!r} ({_EXPECTED[9:]})")
        try:
            parts = urllib.parse.urlsplit(text)
            port = parts.port
        except ValueError:
            raise _fail("not a valid URL (its host or port cannot be read)") from None
        raw_host = parts.netloc.rsplit("@", 1)[-1]
        if port is not None:
            raw_host = raw_host.rsplit(":", 1)[0]
        username = urllib.parse.unquote(parts.username) if parts.username else None
        password = urllib.parse.unquote(parts.password) if parts.password is not None else None
        if transport == "file":
            if raw_host not in ("", "localhost") or username or password is not None:
                raise _fail("a file:// URL names a local path only (file:///srv/backups.git)")
            _check_path(parts.path)
            return cls(url=urllib.parse.urlunsplit(("file", "", parts.path, "", "")), transport="file", host=None)
        if not raw_host:
            raise _fail("the URL names no host")
        host = _check_host(raw_host)
        _check_path(parts.path.lstrip("/"))
        netloc = raw_host + (f":{port}" if port is not None else "")
        if transport == "ssh":
            if password is not None:
                raise _fail("an ssh:// URL cannot carry a password; use source.backup.private_key")
            if parts.username:
                _check_user(username or "", "user")
                netloc = f"{parts.username}@{netloc}"  # the SSH login name is no secret
            username = None
        elif username is not None:
            _check_credential(username, "user name")
        if password is not None:
            _check_credential(password, "password")
        clean = urllib.parse.urlunsplit((parts.scheme.lower(), netloc, parts.path, parts.query, ""))
        return cls(url=clean, transport=transport, host=host, username=username, password=password, port=port)


def _check_credential(value: str, what: str) -> None:
    """Git's credential protocol is line-based: a newline or NUL in a credential cannot be passed."""
    if "\n" in value or "\r" in value or "\x00" in value:
        raise ResourceError(f"source.backup: the {what} contains a line break or NUL")
