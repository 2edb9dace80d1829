"""Slowing down password guessing: after a few wrong passwords, a pause.

Counted per client address and user name, in this process's memory: enough to stop a script
from trying thousands of passwords, without letting a stranger lock a colleague out from
another address. A right password clears the count.
"""

from __future__ import annotations

import collections
import math
import threading

MAX_FAILURES = 5
WINDOW_SECONDS = 15 * 60
MAX_KEYS = 10_000


class LoginThrottle:
    def __init__(self) -> None:
        self._failures: dict[tuple[str, str], collections.deque[float]] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, address: str, username: str, now: float) -> int:
        """How long this address must wait before trying this user name again (0: go on)."""
        with self._lock:
            failures = self._recent((address, username.lower()), now)
            if len(failures) < MAX_FAILURES:
                return 0
            return max(1, math.ceil(failures[0] + WINDOW_SECONDS - now))

    def failed(self, address: str, username: str, now: float) -> None:
        with self._lock:
            if len(self._failures) >= MAX_KEYS:
                self._failures.clear()  # a flood of names: forget rather than grow
            key = (address, username.lower())
            self._recent(key, now).append(now)

    def succeeded(self, address: str, username: str) -> None:
        with self._lock:
            self._failures.pop((address, username.lower()), None)

    def _recent(self, key: tuple[str, str], now: float) -> collections.deque[float]:
        failures = self._failures.setdefault(key, collections.deque(maxlen=MAX_FAILURES))
        while failures and failures[0] <= now - WINDOW_SECONDS:
            failures.popleft()
        return failures
