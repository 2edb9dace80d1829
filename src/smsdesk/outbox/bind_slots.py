"""Bind slots: at most `count` processes of the installation bound to one SMPP account at once.

Slot `i` of a connection is the lock `smpp-bind:<connection>:<i>` (`store/leadership.py`: a
PostgreSQL advisory lock on a session of its own, or a lock file beside a SQLite database).
A process takes the first free slot, tries again every `interval` seconds while all are held,
and holds its slot while it is bound; when its lock session is lost the slot is lost with it
and the SMPP session unbinds, and the slot of a process that dies is free at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from smsdesk.store.leadership import JobLocks

log = logging.getLogger(__name__)


class BindSlots:
    """One process's claim on a slot of one connection (the `BindPermit` of an SMPP session)."""

    def __init__(
        self,
        open_locks: Callable[[], JobLocks],
        connection_id: str,
        count: int,
        *,
        interval: float = 2.0,
    ) -> None:
        self.open_locks = open_locks
        self.connection_id = connection_id
        self.count = count
        self.interval = interval
        self.slot: int | None = None
        self._locks: JobLocks | None = None

    def _name(self, slot: int) -> str:
        return f"smpp-bind:{self.connection_id}:{slot}"

    def _try_take(self) -> int | None:
        """Take the first free slot (blocking: run in a thread)."""
        if self._locks is None:
            self._locks = self.open_locks()
        for slot in range(self.count):
            if self._locks.take(self._name(slot)):
                return slot
        return None

    async def acquire(self) -> int:
        while self.slot is None:
            try:
                self.slot = await asyncio.to_thread(self._try_take)
            except Exception as exc:
                log.warning("cannot take an SMPP bind slot; trying again: %s", exc)
                await self._forget()
            if self.slot is None:
                await asyncio.sleep(self.interval)
        return self.slot

    async def until_lost(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            locks = self._locks
            if locks is None or not await asyncio.to_thread(locks.alive):
                log.warning(
                    "SMPP bind slot %s of %s lost with its lock session",
                    self.slot,
                    self.connection_id,
                )
                await self._forget()
                return

    async def release(self) -> None:
        await self._forget()

    def held(self) -> bool:
        return self.slot is not None

    async def _forget(self) -> None:
        locks, self._locks, self.slot = self._locks, None, None
        if locks is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(locks.close)
