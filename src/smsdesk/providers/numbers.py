"""Phone numbers as providers write them in callbacks, brought back to E.164."""

from __future__ import annotations

import re

_LAYOUT = re.compile(r"[\s\-().]")


def from_provider(raw: str, *, short_code_digits: int = 6) -> str:
    """A sender or recipient from a callback as '+E.164' where it is an international number.

    Providers write the same number as '+4741000000', '004741000000' or '4741000000'. Bare
    digits count as international unless they are a short code (at most `short_code_digits`)
    or a national number (leading 0), which have no country code to add and stay as they are,
    like alphanumeric senders.
    """
    compact = _LAYOUT.sub("", raw.strip())
    if compact.startswith("+") and compact[1:].isdigit():
        return compact
    if compact.startswith("00") and compact[2:].isdigit():
        return "+" + compact[2:]
    if compact.isdigit():
        international = not compact.startswith("0") and len(compact) > short_code_digits
        return "+" + compact if international else compact
    return raw.strip()
