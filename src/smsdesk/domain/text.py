"""Which characters a text may carry: control characters and texts that show nothing.

A control character in an SMS is never meant (it is a copy-paste or encoding accident), some
databases cannot store NUL at all, and phones show the others as boxes or drop them. Outgoing
texts that carry one are refused with the character and its place; incoming ones cannot be
refused (the provider would retry forever), so the character is replaced and the SMS marked.
"""

from __future__ import annotations

import re
import unicodedata

from smsdesk.domain.errors import InvalidText

# C0 controls except TAB, LF and CR; DEL; the C1 controls.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
REPLACEMENT = "\ufffd"

_NAMES = {
    0x00: "NUL",
    0x07: "BEL",
    0x08: "backspace",
    0x0B: "vertical tab",
    0x0C: "form feed",
    0x1B: "escape",
    0x7F: "DEL",
}


def describe(char: str) -> str:
    """A character as a person can look it up: U+0000 (NUL)."""
    code = ord(char)
    name = _NAMES.get(code)
    return f"U+{code:04X}" + (f" ({name})" if name else "")


def forbidden_control(text: str) -> tuple[int, str] | None:
    """The first control character a text may not carry, with its 1-based position, or None."""
    found = _FORBIDDEN.search(text)
    if found is None:
        return None
    return found.start() + 1, found.group()


def shows_nothing(text: str) -> bool:
    """True when the text is only whitespace, controls and invisible format characters.

    Format characters (Unicode category Cf) include the zero-width space and joiners
    (U+200B to U+200D), the word joiner (U+2060) and the byte-order mark (U+FEFF).
    """
    for char in text:
        if not char.isspace() and unicodedata.category(char) not in ("Cc", "Cf"):
            return False
    return True


def check_outgoing(text: str) -> None:
    """Refuse a text to send that is empty, shows nothing, or carries a control character."""
    found = forbidden_control(text)
    if found is not None:
        position, char = found
        raise InvalidText(
            f"The text contains the control character {describe(char)} at position {position}; "
            "remove it. Only line breaks and tabs are allowed."
        )
    if not text.strip():
        raise InvalidText("The text is empty; write the message to send.")
    if shows_nothing(text):
        raise InvalidText(
            "The text shows nothing: it holds only spaces and invisible characters (such as "
            "the zero-width space U+200B); write the message to send."
        )


def clean_incoming(text: str) -> tuple[str, bool]:
    """The text with every forbidden control character replaced by U+FFFD, and whether any was."""
    cleaned, count = _FORBIDDEN.subn(REPLACEMENT, text)
    return cleaned, count > 0
