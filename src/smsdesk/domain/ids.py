"""Message ids: 26-character, time-ordered, unique without asking the database.

Generating ids in the application lets a batch of messages be inserted in one statement and
lets "oldest first" be an index scan on the primary key.
"""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every 10-bit value as its two Crockford base-32 characters: an id is 13 table look-ups.
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0
_last_prefix = ""


def _encode(value: int, length: int) -> str:
    """`value` in `length` (even) base-32 characters, most significant first."""
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in range(5 * length - 10, -1, -10)])


def new_id() -> str:
    """A ULID: 48 bits of milliseconds then 80 bits that increase within one millisecond."""
    global _last_ms, _last_rand, _last_prefix
    with _lock:
        now_ms = time.time_ns() // 1_000_000
        if now_ms <= _last_ms:
            _last_rand += 1
        else:
            _last_ms = now_ms
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1
            _last_prefix = _encode(now_ms, 10)
        prefix, rand = _last_prefix, _last_rand
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
