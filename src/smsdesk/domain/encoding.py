"""GSM 03.38 and UCS-2: which encoding a text needs and how it splits into SMS parts.

A text that uses only the GSM 03.38 basic and extension tables goes as GSM-7 (160 septets in
one SMS, 153 per part when concatenated; extension characters take two septets). Anything else
goes as UCS-2 (70 UTF-16 code units, 67 per part). A part never ends between the escape and
its character, nor inside a surrogate pair.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from smsdesk.domain.errors import InvalidText
from smsdesk.domain.text import check_outgoing

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = {
    "\f": 0x0A,
    "^": 0x14,
    "{": 0x28,
    "}": 0x29,
    "\\": 0x2F,
    "[": 0x3C,
    "~": 0x3D,
    "]": 0x3E,
    "|": 0x40,
    "€": 0x65,
}
ESC = 0x1B
_BASIC_CODE = {char: code for code, char in enumerate(GSM7_BASIC) if code != ESC}
_BASIC_CHAR = {code: char for char, code in _BASIC_CODE.items()}
_EXT_CHAR = {code: char for char, code in GSM7_EXTENSION.items()}
_SEPTETS = {**{c: 1 for c in _BASIC_CODE}, **{c: 2 for c in GSM7_EXTENSION}}
_GSM7 = frozenset(_SEPTETS)
_EXTENSION = frozenset(GSM7_EXTENSION)

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67

_TYPOGRAPHIC = {
    "“": '"',
    "”": '"',
    "„": '"',
    "‟": '"',
    "«": '"',
    "»": '"',
    "″": '"',
    "‘": "'",
    "’": "'",
    "‚": "'",
    "‛": "'",
    "′": "'",
    "`": "'",
    "´": "'",
    "–": "-",
    "—": "-",
    "‒": "-",
    "―": "-",
    "−": "-",
    "‐": "-",
    "‑": "-",
    "…": "...",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
    "\u2007": " ",
    "•": "-",
    "\t": " ",
}


class Encoding(enum.StrEnum):
    GSM7 = "gsm7"
    UCS2 = "ucs2"


@dataclass(frozen=True, slots=True)
class SegmentedText:
    """A text, the encoding it needs and its parts as they will be sent."""

    text: str
    encoding: Encoding
    parts: tuple[str, ...]
    units: int
    ucs2_characters: tuple[str, ...]

    @property
    def segments(self) -> int:
        return len(self.parts)


def _ucs2_units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def ucs2_characters(text: str) -> tuple[str, ...]:
    """The distinct characters, in order of appearance, that GSM-7 cannot carry."""
    return tuple(dict.fromkeys(c for c in text if c not in _SEPTETS))


def _split(
    text: str, cost: dict[str, int] | None, single: int, part: int
) -> tuple[tuple[str, ...], int]:
    """Greedy split by unit cost; a character is never cut, so pairs stay whole."""
    costs = [cost[c] if cost is not None else _ucs2_units(c) for c in text]
    total = sum(costs)
    if total <= single:
        return ((text,) if text else ()), total
    parts: list[str] = []
    start, used = 0, 0
    for index, units in enumerate(costs):
        if used + units > part:
            parts.append(text[start:index])
            start, used = index, 0
        used += units
    parts.append(text[start:])
    return tuple(parts), total


def analyse(text: str) -> SegmentedText:
    """Classify a text as GSM-7 or UCS-2 and split it into the parts that will be sent.

    Most texts fit one SMS: their units are counted with set and string operations (C speed),
    and only a text longer than one SMS is walked character by character to split it."""
    chars = set(text)
    if chars <= _GSM7:
        extended = chars & _EXTENSION
        units = len(text) + sum(text.count(c) for c in extended)
        if units <= GSM7_SINGLE:
            return SegmentedText(text, Encoding.GSM7, (text,) if text else (), units, ())
        parts, units = _split(text, _SEPTETS, GSM7_SINGLE, GSM7_PART)
        return SegmentedText(text, Encoding.GSM7, parts, units, ())
    offenders = ucs2_characters(text)
    if len(text) <= UCS2_SINGLE and max(text) <= "\uffff":  # no surrogate pairs: a unit each
        return SegmentedText(text, Encoding.UCS2, (text,), len(text), offenders)
    parts, units = _split(text, None, UCS2_SINGLE, UCS2_PART)
    return SegmentedText(text, Encoding.UCS2, parts, units, offenders)


def check_text(text: str, max_segments: int) -> SegmentedText:
    """Analyse a text for sending; refuse it when it shows nothing, carries a control character
    (`domain.text`) or is longer than `max_segments`."""
    check_outgoing(text)
    result = analyse(text)
    if result.segments > max_segments:
        hint = ""
        if result.encoding is Encoding.UCS2:
            shown = " ".join(result.ucs2_characters[:10])
            hint = (
                f" It is sent as UCS-2 (70 characters per SMS) because of: {shown}; "
                "replacing those with plain characters makes room for more text."
            )
        raise InvalidText(
            f"The text needs {result.segments} SMS parts but at most {max_segments} are allowed"
            f" ({result.encoding.value}, {len(text)} characters).{hint} Shorten the text or "
            "raise the maximum number of segments in the SMS configuration."
        )
    return result


def gsm7_suggestion(text: str) -> str:
    """The text with typographic quotes, dashes and spaces replaced by GSM-7 ones."""
    return "".join(_TYPOGRAPHIC.get(c, c) for c in text)


def to_gsm7_septets(text: str) -> bytes:
    """Unpacked GSM-7: one byte per septet, ESC before extension characters."""
    out = bytearray()
    for char in text:
        code = _BASIC_CODE.get(char)
        if code is not None:
            out.append(code)
        elif char in GSM7_EXTENSION:
            out += bytes((ESC, GSM7_EXTENSION[char]))
        else:
            raise ValueError(f"{char!r} has no GSM-7 encoding")
    return bytes(out)


def from_gsm7_septets(data: bytes) -> str:
    """Decode unpacked GSM-7; an unknown escape falls back to the basic character."""
    chars: list[str] = []
    escaped = False
    for byte in data:
        if escaped:
            chars.append(_EXT_CHAR.get(byte, _BASIC_CHAR.get(byte, "?")))
            escaped = False
        elif byte == ESC:
            escaped = True
        else:
            chars.append(_BASIC_CHAR.get(byte & 0x7F, "?"))
    return "".join(chars)
