"""What a get is told besides its source: its params. (A put's params belong to its command:
`k0sctl_resource.commands`.)

Names are the contract of README.md ("Behaviour"); `schema.from_json` enforces types and rejects unknown
keys.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GetParams:
    skip_download: bool = False
    decrypt: bool = True
