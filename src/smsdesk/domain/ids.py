"""Message ids: 26-character, time-ordered, unique without asking the database.

Generating ids in the application lets a batch of messages be inserted in one statement and
lets "oldest first" be an index scan on the primary key.
"""

from __future__ import annotations

import itertools
import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as its two Crockford base-32 characters: an id is 13 table look-ups.
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]
# One number per id, in any thread: drawing it is a single call into C, so it needs no lock.
# With a lock, the event loop's thread waited whenever another thread had been switched out
# while holding it, and those waits were among the longest pauses in answering requests.
_turns = itertools.count()
_base = 0
# The latest millisecond stamped and its ten characters, replaced whole; ids never go back
# in time when the clock does.
_prefix = (0, "")


def _new_base() -> None:
    """78 random bits to count from, drawn once per process (and again in a forked child, so
    it does not repeat its parent's ids). Drawn once rather than every millisecond: asking
    the operating system lets go of the interpreter lock, and the event loop's thread then
    waited for another thread to hand it back."""
    global _base
    _base = (1 << 78) + int.from_bytes(os.urandom(10), "big") % (1 << 78)


_new_base()
os.register_at_fork(after_in_child=_new_base)


def _encode(value: int, length: int) -> str:
    """`value` in `length` (even) base-32 characters, most significant first."""
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(5 * length - 10, -1, -10)])


def new_id() -> str:
    """A ULID: 48 bits of milliseconds, then 80 bits counted up from a random start.

    No id repeats, and the ids one thread makes sort in the order it made them (two threads'
    ids of the same millisecond sort by which took its turn first). Processes differ by their
    random starts."""
    global _prefix
    turn = next(_turns)
    ms, prefix = _prefix
    now_ms = time.time_ns() // 1_000_000
    if now_ms > ms:
        prefix = _encode(now_ms, 10)
        _prefix = (now_ms, prefix)
    rand = _base + turn
    pairs = _PAIRS
    return (
        prefix
        + pairs[rand >> 70 & 1023]
        + pairs[rand >> 60 & 1023]
        + pairs[rand >> 50 & 1023]
        + pairs[rand >> 40 & 1023]
        + pairs[rand >> 30 & 1023]
        + pairs[rand >> 20 & 1023]
        + pairs[rand >> 10 & 1023]
        + pairs[rand & 1023]
    )
