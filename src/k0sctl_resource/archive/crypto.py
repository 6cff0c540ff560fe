"""age encryption of backup archives, with pyrage.

- Encryption goes to every recipient of `encryption.recipients` (age `age1…`, `ssh-ed25519 …`,
  `ssh-rsa …`), or uses `encryption.passphrase` (age's scrypt recipient). Files stream from disk to
  disk for recipients and identities (memory flat in the archive's size); pyrage (1.4) has no
  streaming form for a passphrase, only bytes in and bytes out, so that one holds the archive in
  memory twice, and scrypt needs 2^logN KiB while it runs (in a forked child, see `runtime.forked`);
  rage picks log N by timing the machine (15 to 20 seen on a loaded 2-core machine: 32 MiB to 1 GiB;
  docs/performance.md).
- Decryption uses `encryption.identities` (age identities and/or OpenSSH private keys, several in one
  string) or the passphrase, whichever the archive's header asks for.
- Errors name the problem, never the key material.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import pyrage
from pyrage import passphrase as age_passphrase
from pyrage import ssh as age_ssh
from pyrage import x25519

from k0sctl_resource.config.models import Encryption
from k0sctl_resource.runtime.errors import ResourceError
from k0sctl_resource.runtime.forked import run_forked
from k0sctl_resource.runtime.workspace import open_private

AGE_MAGIC = b"age-encryption.org/v1\n"
ARMOR_BEGIN = b"-----BEGIN AGE ENCRYPTED FILE-----"
_PEM_BLOCK = re.compile(r"-----BEGIN (?P<kind>[A-Z0-9 ]*PRIVATE KEY)-----.*?-----END (?P=kind)-----", re.S)
HEADER_LIMIT = 64 * 1024


def parse_recipients(recipients: tuple[str, ...]) -> list[Any]:
    """pyrage recipient objects for `encryption.recipients`; an error names the bad entry's index."""
    parsed: list[Any] = []
    for i, text in enumerate(recipients):
        value = text.strip()
        try:
            if value.startswith("age1"):
                parsed.append(x25519.Recipient.from_str(value))
            else:
                # pyrage wants "type base64" (a trailing comment is dropped first)
                fields = value.split()
                parsed.append(age_ssh.Recipient.from_str(" ".join(fields[:2])))
        except (pyrage.RecipientError, ValueError, IndexError):
            raise ResourceError(f"source.encryption.recipients[{i}]: not a valid age or SSH public key") from None
    return parsed


def parse_identities(text: str) -> list[Any]:
    """pyrage identities from `encryption.identities`: any mix of age identity lines and SSH private keys."""
    identities: list[Any] = []
    for n, match in enumerate(_PEM_BLOCK.finditer(text), start=1):
        block = match.group(0)
        if "ENCRYPTED" in block or "Proc-Type: 4,ENCRYPTED" in block:
            raise ResourceError(f"source.encryption.identities: SSH key #{n} is protected by a passphrase; "
                                "give an unencrypted key")
        try:
            identities.append(age_ssh.Identity.from_buffer((block + "\n").encode()))
        except (pyrage.IdentityError, ValueError) as exc:
            detail = "protected by a passphrase" if "encrypt" in str(exc).lower() else "not a usable key"
            raise ResourceError(f"source.encryption.identities: SSH key #{n} is {detail}") from None
    rest = _PEM_BLOCK.sub("", text)
    for n, raw_line in enumerate(rest.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if not line.upper().startswith("AGE-SECRET-KEY-"):
            raise ResourceError(f"source.encryption.identities: line {n} is neither an age identity "
                                "(AGE-SECRET-KEY-1…) nor part of an SSH private key")
        try:
            identities.append(x25519.Identity.from_str(line))
        except (pyrage.IdentityError, ValueError):
            raise ResourceError(f"source.encryption.identities: line {n} is not a valid age identity") from None
    if not identities:
        raise ResourceError("source.encryption.identities: no identity found")
    return identities


def check_can_encrypt(enc: Encryption) -> None:
    """Fail early (before k0sctl runs) when archives cannot be encrypted as configured."""
    if enc.recipients:
        parse_recipients(enc.recipients)


def _private_open(path: Path) -> int:
    return open_private(path)


def encrypt_file(src: Path, dst: Path, enc: Encryption) -> None:
    """Encrypt `src` to `dst` for the recipients (or the passphrase) of `enc`."""
    if enc.recipients:
        recipients = parse_recipients(enc.recipients)
        os.close(_private_open(dst))
        try:
            pyrage.encrypt_file(str(src), str(dst), recipients)
        except (pyrage.EncryptError, OSError) as exc:
            raise ResourceError(f"encrypting the archive failed: {exc.__class__.__name__}") from None
        return
    if enc.passphrase is not None:
        passphrase = enc.passphrase
        run_forked(lambda: _encrypt_passphrase(src, dst, passphrase), "encrypting the archive")
        return
    raise ResourceError("no encryption.recipients and no encryption.passphrase: cannot encrypt")


@dataclass(frozen=True)
class AgeHeader:
    armored: bool
    stanzas: tuple[str, ...]  # recipient types: "X25519", "ssh-ed25519", "ssh-rsa", "scrypt", …

    @property
    def passphrase(self) -> bool:
        return "scrypt" in self.stanzas


def read_header(path: Path) -> AgeHeader:
    """The recipient stanza types of an age file, or an error when it is no age file."""
    with path.open("rb") as handle:
        head = handle.read(HEADER_LIMIT)
    if head.startswith(ARMOR_BEGIN):
        return AgeHeader(armored=True, stanzas=())
    if not head.startswith(AGE_MAGIC):
        raise ResourceError("the stored archive is not an age-encrypted file")
    stanzas: list[str] = []
    for line in head[len(AGE_MAGIC):].split(b"\n"):
        if line.startswith(b"---"):
            break
        if line.startswith(b"-> "):
            fields = line[3:].split()
            if fields:
                stanzas.append(fields[0].decode("ascii", errors="replace"))
    return AgeHeader(armored=False, stanzas=tuple(stanzas))


class _HashingWriter:
    """Where pyrage writes the plaintext: the file, and its sha256 and size on the way."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def decrypt_file(src: Path, dst: Path, enc: Encryption) -> tuple[str, int]:
    """Decrypt the age file `src` into `dst` (mode 0600) with the identities or passphrase of `enc`;
    return the sha256 (hex) and size of the plaintext written.

    Identities stream (memory flat in the archive's size); pyrage's passphrase form takes and returns
    bytes, so a passphrase archive is held in memory twice (ciphertext and plaintext). A partially
    written `dst` is removed when decryption fails (age authenticates every chunk, so a tampered file
    fails here).
    """
    header = read_header(src)
    try:
        if header.passphrase or (header.armored and enc.passphrase is not None and not enc.identities):
            if enc.passphrase is None:
                raise ResourceError("this archive was encrypted with a passphrase; set source.encryption.passphrase")
            passphrase = enc.passphrase
            return run_forked(lambda: _decrypt_passphrase(src, dst, passphrase), "decrypting the archive")
        if not enc.identities:
            raise ResourceError("this archive is encrypted to recipients; set source.encryption.identities "
                                "to decrypt it")
        identities = parse_identities(enc.identities)
        try:
            with src.open("rb") as sealed, os.fdopen(_private_open(dst), "wb") as handle:
                writer = _HashingWriter(handle)
                pyrage.decrypt_io(sealed, writer, identities)
        except pyrage.DecryptError as exc:
            raise ResourceError(_decrypt_reason(str(exc), passphrase=False)) from None
        except OSError as exc:
            if exc.errno is None:  # pyrage reports a failed chunk (bad MAC, truncation) as a bare OSError
                raise ResourceError(_decrypt_reason(str(exc), passphrase=False)) from None
            raise ResourceError(f"decrypting the archive failed: {exc.strerror}") from None
        return writer.digest.hexdigest(), writer.size
    except BaseException:
        dst.unlink(missing_ok=True)
        raise


# pyrage's passphrase form holds the interpreter for seconds (scrypt): it runs in a forked child, so
# that an abort is acted on at once (`runtime.forked`).

def _encrypt_passphrase(src: Path, dst: Path, passphrase: str) -> None:
    data = src.read_bytes()
    try:
        sealed = age_passphrase.encrypt(data, passphrase)
    except (pyrage.EncryptError, ValueError) as exc:
        raise ResourceError(f"encrypting the archive failed: {exc.__class__.__name__}") from None
    del data
    with os.fdopen(_private_open(dst), "wb") as handle:
        handle.write(sealed)


def _decrypt_passphrase(src: Path, dst: Path, passphrase: str) -> tuple[str, int]:
    try:
        plain = age_passphrase.decrypt(src.read_bytes(), passphrase)
    except pyrage.DecryptError as exc:
        raise ResourceError(_decrypt_reason(str(exc), passphrase=True)) from None
    with os.fdopen(_private_open(dst), "wb") as handle:
        handle.write(plain)
    return hashlib.sha256(plain).hexdigest(), len(plain)


def _decrypt_reason(message: str, *, passphrase: bool) -> str:
    lowered = message.lower()
    if "no matching keys" in lowered:
        return "no identity in source.encryption.identities matches this archive"
    if passphrase and "decryption failed" in lowered:
        return "source.encryption.passphrase does not decrypt this archive (wrong passphrase or damaged file)"
    return f"the archive cannot be decrypted: it is damaged or was tampered with ({message.strip()[:120]})"
