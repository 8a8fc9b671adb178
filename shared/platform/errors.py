"""Domain errors the stores raise; the HTTP layer (shared/web/http.py) maps each to its status.

Storage code knows what went wrong (no such click, a conflicting reward, an offer not in the
slate), never which HTTP status says so.
"""


class DomainError(Exception):
    """A request the domain refuses: a message for the client and the field at fault."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(DomainError):
    """What the request refers to does not exist (an unknown click, customer or episode)."""


class Conflict(DomainError):
    """The request contradicts what was already recorded (a different reward for a rewarded click)."""


class Invalid(DomainError):
    """The request is well-formed but not valid against what is stored (an offer not in the slate)."""
