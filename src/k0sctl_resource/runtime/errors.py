"""The one exception type that reaches the user as a single clear line."""

from __future__ import annotations


class ResourceError(Exception):
    """A failure the user can act on. Its message is printed as one line on stderr.

    The message must never contain a secret value; callers pass text that is already safe,
    and the top level still runs it through the redactor before printing.
    """

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message
