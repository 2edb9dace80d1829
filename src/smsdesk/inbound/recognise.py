"""What an inbound SMS is: an opt-out or opt-in keyword, a message for this installation, or not.

Pure functions: the processor decides with them, the tests check them on wide inputs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# Punctuation and symbols people put around a keyword ("Stop!", "STOP.", "*stop*").
_AROUND = " \t\r\n.!?,;:*\"'()[]<>-_~"


class Kind(enum.Enum):
    MESSAGE = "message"
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    UNRECOGNISED = "unrecognised"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Recognised:
    kind: Kind
    content: str = ""  # the text without the endpoint code
    keyword: str | None = None
    reason: str | None = None


def strip_endpoint(text: str, code: str) -> str | None:
    """The text after the endpoint code, or None if the text does not start with it.

    The code matches case-insensitively and must be followed by whitespace or the end, so
    code HELP accepts "help me" and "HELP\\nme" but not "HELPDESK me".
    """
    if not code:
        return text.strip()
    stripped = text.lstrip()
    head = stripped[: len(code)]
    if head.casefold() != code.casefold():
        return None
    rest = stripped[len(code) :]
    if rest and not rest[0].isspace():
        return None
    return rest.strip()


def keyword_of(text: str) -> str:
    """The text as a keyword candidate: one word, upper case, without surrounding punctuation."""
    return text.strip(_AROUND).upper()


def recognise(text: str, code: str, opt_out: frozenset[str], opt_in: frozenset[str]) -> Recognised:
    """Classify an inbound text.

    A bare keyword ("STOP") counts with or without the endpoint code in front of it: people
    who want no more SMS rarely remember the code.
    """
    if not text.strip():
        return Recognised(Kind.INVALID, reason="The message is empty.")
    content = strip_endpoint(text, code)
    for candidate in (content, text):
        if candidate is None:
            continue
        word = keyword_of(candidate)
        if word in opt_out:
            return Recognised(Kind.OPT_OUT, content or "", keyword=word)
        if word in opt_in:
            return Recognised(Kind.OPT_IN, content or "", keyword=word)
    if content is None:
        return Recognised(
            Kind.UNRECOGNISED,
            reason=f"The message does not start with the SMS endpoint code '{code}'.",
        )
    return Recognised(Kind.MESSAGE, content)
