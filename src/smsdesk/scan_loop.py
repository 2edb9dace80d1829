"""The loop of a background worker that scans a queue for due work.

A scan that claimed something is followed at once by another; one that claimed nothing waits
for `wake()` or `poll_interval` seconds. A failed scan is logged and the loop goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import ClassVar


class ScanLoop:
    """Mixin: `_scan_forever` runs `run_once` until `_stopping` is set."""

    scan_failed: ClassVar[str] = "scan failed; trying again"
    scan_log: ClassVar[logging.Logger] = logging.getLogger(__name__)
    poll_interval: float
    _wake: asyncio.Event
    _stopping: bool
    _loop: asyncio.AbstractEventLoop | None

    def wake(self) -> None:
        """New work arrived: scan now rather than at the next poll (callable from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def run_once(self) -> int:
        """Claim and start or do the due work; how many items were claimed."""
        raise NotImplementedError

    async def _scan_forever(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                claimed = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.scan_log.exception(self.scan_failed)
                claimed = 0
            if claimed:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)


async def cancel_and_wait(task: asyncio.Task[None]) -> None:
    """Cancel `task` and wait until it has ended, cancelling again if it lives on.

    In Python 3.11 `asyncio.wait_for` can swallow a cancellation that arrives as the awaited
    thing completes, and a loop around it would then run forever; asking again ends it.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=1.0)
    if not task.cancelled():
        with contextlib.suppress(Exception):
            task.result()
