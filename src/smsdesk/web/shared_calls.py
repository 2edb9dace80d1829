"""Blocking look-ups shared by the requests that need them at the same moment.

A burst of requests that all miss a cache (the first requests with a new API key, every
request in the instant the opt-out list is looked at again) would each take a thread of
Starlette's pool for the same answer: a burst of 128 made the pool start 40 threads, which
stay, with their stacks and allocator arenas, for the life of the process. One call runs per
key; the others wait for its answer on the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool

T = TypeVar("T")

_running: dict[Hashable, asyncio.Future[Any]] = {}


async def shared_call(key: Hashable, function: Callable[[], T]) -> T:
    """`function()` in a thread, or the answer of the call for `key` already under way.

    A caller that is cancelled (its client went away) does not cancel the call the others
    wait for. `key` must name everything the answer depends on (the store object and the
    value asked about)."""
    loop = asyncio.get_running_loop()
    running = _running.get(key)
    if running is None or running.get_loop() is not loop:
        running = asyncio.ensure_future(run_in_threadpool(function))
        _running[key] = running
        running.add_done_callback(lambda done: _forget(key, done))
    answer: T = await asyncio.shield(running)
    return answer


def _forget(key: Hashable, done: asyncio.Future[Any]) -> None:
    if _running.get(key) is done:
        del _running[key]
    if not done.cancelled():
        done.exception()  # retrieved: a failure reaches every waiter, and is not logged again
