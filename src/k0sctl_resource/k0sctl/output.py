"""k0sctl's screen output as it streams: every line shown live, except (on request) the error lines
that end a run, held back until the caller knows whether the failure is one it reports itself."""

from __future__ import annotations

from k0sctl_resource.k0sctl.transcript import failing
from k0sctl_resource.runtime import log


class HeldErrors:
    """Echoes k0sctl's lines as they come, but (with `hold`) keeps back a run of error lines until a
    normal line follows or the run ends, when the caller decides whether to show them."""

    def __init__(self, *, echo: bool, hold: bool) -> None:
        self.echo = echo
        self.hold = hold
        self.pending: list[str] = []

    def line(self, line: str) -> None:
        if not self.echo:
            return
        if self.hold and failing(line):
            self.pending.append(line)
            return
        self.flush()
        log.info(line)

    def flush(self) -> None:
        for line in self.pending:
            log.info(line)
        self.pending.clear()
