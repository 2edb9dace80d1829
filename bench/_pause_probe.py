"""`smsdesk` with a probe of its event loop's pauses, started by bench/loop_pauses.py.

Run as `python bench/_pause_probe.py serve ...`. Once uvicorn listens, a task on the event loop
sleeps 1 ms over and over and records how late it wakes up. A thread looks every 2 ms and,
while that task is more than 10 ms late, notes where each thread is (its innermost frames and
smsdesk's). The garbage collector's passes are timed per generation. SIGUSR1 starts the count
afresh; on SIGUSR2 the summary is written as JSON to the file named by SMSDESK_PROBE_REPORT.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict
from types import FrameType
from typing import Any

import uvicorn

STALLED = 0.010  # a pause this long is attributed
LOOK_EVERY = 0.002

_last_tick = float("inf")  # when the probe task last ran (inf until the server listens)
_lateness: list[float] = []
_where: Counter[str] = Counter()
_collections: dict[int, list[float]] = defaultdict(list)
_collection_started = 0.0
_loop_thread = threading.get_ident()


IDLE = ("threading.py", "queue.py")  # a thread waiting for work


def _place(frame: FrameType) -> str | None:
    stack = traceback.extract_stack(frame)
    innermost = stack[-1]
    if innermost.filename.endswith(IDLE) or innermost.name == "_worker":
        return None
    outer = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in stack[-2:]]
    ours = [
        f"{f.filename.split('/smsdesk/')[-1]}:{f.lineno} {f.name}"
        for f in stack
        if "/smsdesk/" in f.filename
    ]
    return " < ".join(reversed(outer)) + (f"  [{' < '.join(reversed(ours[-2:]))}]" if ours else "")


def _watch() -> None:
    me = threading.get_ident()
    while True:
        time.sleep(LOOK_EVERY)
        if time.perf_counter() - _last_tick < STALLED:
            continue
        names = {t.ident: t.name for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            if ident == me:
                continue
            who = "event loop" if ident == _loop_thread else names.get(ident, str(ident))
            place = _place(frame)
            if place is not None:
                _where[f"{who}: {place}"] += 1


async def _probe() -> None:
    global _last_tick
    while True:
        _last_tick = before = time.perf_counter()
        await asyncio.sleep(0.001)
        _lateness.append(time.perf_counter() - before - 0.001)


def _timed_collection(phase: str, info: dict[str, Any]) -> None:
    global _collection_started
    if phase == "start":
        _collection_started = time.perf_counter()
    elif _last_tick != float("inf"):
        _collections[info["generation"]].append(time.perf_counter() - _collection_started)


def _report(signum: int, frame: FrameType | None) -> None:
    late = sorted(_lateness)

    def at(share: float) -> float:
        return round(1000 * late[min(len(late) - 1, int(share * len(late)))], 2) if late else 0.0

    summary = {
        "samples": len(late),
        "late_ms": {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": at(1.0)},
        "pauses_over_10ms": sum(1 for x in late if x > STALLED),
        "collections": {
            f"generation {g}": {
                "count": len(times),
                "total_ms": round(1000 * sum(times), 1),
                "max_ms": round(1000 * max(times), 2),
            }
            for g, times in sorted(_collections.items())
        },
        "threshold": gc.get_threshold(),
        "where_ms": {k: round(v * LOOK_EVERY * 1000) for k, v in _where.most_common(40)},
    }
    with open(os.environ["SMSDESK_PROBE_REPORT"], "w") as out:
        json.dump(summary, out, indent=1)


def _reset(signum: int, frame: FrameType | None) -> None:
    """The measured load begins: forget the warm-up's figures."""
    _lateness.clear()
    _where.clear()
    _collections.clear()


def _install() -> None:
    started = uvicorn.Server.startup

    async def startup(self: uvicorn.Server, sockets: Any = None) -> None:
        await started(self, sockets)
        asyncio.get_running_loop().create_task(_probe())

    uvicorn.Server.startup = startup  # type: ignore[method-assign]
    gc.callbacks.append(_timed_collection)
    signal.signal(signal.SIGUSR1, _reset)
    signal.signal(signal.SIGUSR2, _report)
    threading.Thread(target=_watch, name="pause-probe", daemon=True).start()


if __name__ == "__main__":
    _install()
    from smsdesk.cli import main

    sys.argv = ["smsdesk", *sys.argv[1:]]
    main()
