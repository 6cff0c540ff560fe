"""The folder a get writes (and that `restore_from` of apply and drill reads): its file names."""

from __future__ import annotations

METADATA_FILE = "metadata.json"
PLAIN_FILE = "backup.tar.gz"
ENCRYPTED_FILE = "backup.tar.gz.age"
