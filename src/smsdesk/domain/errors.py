"""Errors raised when input breaks a domain rule.

Each error names the field it concerns and says what is wrong and how to fix it, so the API,
the CLI and the web UI can show it next to the field without translating exceptions.
"""

from __future__ import annotations


class DomainError(ValueError):
    """Input that breaks a rule of the domain; `field` names the offending input."""

    field: str = "value"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if field is not None:
            self.field = field


class InvalidNumber(DomainError):
    """A recipient or sender number that cannot be turned into a valid mobile E.164 number."""

    field = "to"


class InvalidSender(DomainError):
    """A sender that no provider would accept."""

    field = "sender"


class InvalidText(DomainError):
    """A message text that is empty or longer than the allowed number of segments."""

    field = "text"


class InvalidStatusTransition(DomainError):
    """A status change the message lifecycle does not allow (e.g. delivered → sent)."""

    field = "status"
