"""Message ids: ULIDs that sort by creation within a process."""

from __future__ import annotations

import re
import time

from smsdesk.domain.ids import new_id

_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + _ALPHABET.index(char)
    return value


def test_ids_are_ulids_stamped_with_the_current_millisecond() -> None:
    """26 Crockford base-32 characters whose first 10 are the creation time in milliseconds."""
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000
    assert _ULID.match(made)
    assert before <= _decode(made[:10]) <= after


def test_ids_sort_in_the_order_they_were_made() -> None:
    """Many ids in one millisecond still sort by creation, and none repeats."""
    made = [new_id() for _ in range(20_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
    randomness = [_decode(i[10:]) for i in made[:2]]
    assert randomness[0] < 2**80 and randomness[1] < 2**80
