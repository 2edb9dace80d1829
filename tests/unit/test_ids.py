"""Message ids: ULIDs that sort by creation within a process."""

from __future__ import annotations

import re
import sys
import threading
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


def test_ids_made_in_many_threads_at_once_never_repeat() -> None:
    """The dispatcher, the writer and the web app make ids at the same time; with the
    interpreter switching threads as often as it can, none repeats and each thread's ids
    still sort in the order it made them."""
    made: dict[int, list[str]] = {}
    start = threading.Barrier(8)

    def make(slot: int) -> None:
        start.wait()
        made[slot] = [new_id() for _ in range(5_000)]

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=make, args=(slot,)) for slot in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    every = [i for ids in made.values() for i in ids]
    assert len(set(every)) == len(every) == 40_000
    assert all(ids == sorted(ids) for ids in made.values())
