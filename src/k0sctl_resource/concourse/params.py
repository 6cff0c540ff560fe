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
    decrypt: bool = False  # what a get writes lands in a volume and a worker cache: plain only when asked
