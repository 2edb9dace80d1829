"""Sender IDs: a name of up to 11 characters, or a number of up to 15 digits."""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from smsdesk.domain.errors import InvalidSender

_ALPHANUMERIC = re.compile(r"^[A-Za-z0-9 \-+_&.,]{1,11}$")
_ALLOWED_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 -+_&.,")


class SenderKind(enum.StrEnum):
    ALPHANUMERIC = "alphanumeric"
    NUMERIC = "numeric"


@dataclass(frozen=True, slots=True)
class Sender:
    value: str
    kind: SenderKind


def validate_sender(raw: str) -> Sender:
    """Check a sender the way providers do; say what to change when they would refuse it."""
    value = raw.strip()
    if not value:
        raise InvalidSender(
            "Enter a sender: a name of up to 11 letters or digits, "
            "or a phone number of up to 15 digits."
        )
    digits = value.replace(" ", "").removeprefix("+")
    if digits.isascii() and digits.isdigit():
        if len(digits) > 15:
            raise InvalidSender(
                f"The sender number has {len(digits)} digits; a number may have at most 15."
            )
        return Sender(digits, SenderKind.NUMERIC)
    if len(value) > 11:
        raise InvalidSender(
            f"The sender '{value}' has {len(value)} characters; a name may "
            "have at most 11 (or use a phone number of up to 15 digits)."
        )
    bad = sorted({c for c in value if c not in _ALLOWED_CHARS})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        raise InvalidSender(
            f"The sender '{value}' contains {shown}, which providers do not "
            "accept; use letters A-Z, digits, spaces and - + _ & . ,"
        )
    if not _ALPHANUMERIC.match(value):
        raise InvalidSender(f"The sender '{value}' is not a valid name.")
    if not any(c.isalpha() for c in value):
        raise InvalidSender(
            f"The sender '{value}' has no letter; a name needs at least one letter A-Z "
            "(or use a phone number of up to 15 digits)."
        )
    return Sender(value, SenderKind.ALPHANUMERIC)
