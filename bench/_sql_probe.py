"""`smsdesk` with the wall time of each SQL statement and commit added up, for bench/sql_times.py.

Run as `python bench/_sql_probe.py serve ...`. SQLAlchemy's cursor events time every statement
(grouped by its text, with runs of placeholders folded), and the dialect's commit is timed as
COMMIT. Times are wall time on the calling thread, so they include waiting for the interpreter
lock after SQLite lets go of it. SIGUSR1 starts the count afresh; on SIGUSR2 the totals are
written as JSON to the file named by SMSDESK_PROBE_REPORT.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from collections import defaultdict
from types import FrameType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, default

_totals: dict[str, list[float]] = defaultdict(lambda: [0, 0.0, 0])  # calls, seconds, rows
_lock = threading.Lock()
_commit = default.DefaultDialect.do_commit
PLACEHOLDER_RUNS = re.compile(r"\(\?(, \?)*\)(, \(\?(, \?)*\))*")


def _key(statement: str, many: bool) -> str:
    text = PLACEHOLDER_RUNS.sub("(?…)", " ".join(statement.split()))
    return ("many: " if many else "") + text[:100]


def _add(key: str, seconds: float, rows: int) -> None:
    with _lock:
        entry = _totals[key]
        entry[0] += 1
        entry[1] += seconds
        entry[2] += rows


def _before(conn: sa.Connection, *_: Any) -> None:
    conn.info.setdefault("probe_started", []).append(time.perf_counter())


def _after(
    conn: sa.Connection, _cursor: Any, statement: str, parameters: Any, _ctx: Any, many: bool
) -> None:
    seconds = time.perf_counter() - conn.info["probe_started"].pop()
    _add(_key(statement, many), seconds, len(parameters) if many else 1)


def _timed_commit(self: default.DefaultDialect, dbapi_connection: Any) -> None:
    started = time.perf_counter()
    _commit(self, dbapi_connection)  # type: ignore[no-untyped-call]
    _add("COMMIT", time.perf_counter() - started, 1)


def _reset(signum: int, frame: FrameType | None) -> None:
    with _lock:
        _totals.clear()


def _report(signum: int, frame: FrameType | None) -> None:
    with _lock:
        rows = sorted(_totals.items(), key=lambda item: -item[1][1])
    summary = [
        {"sql": key, "calls": int(calls), "ms": round(1000 * seconds, 1), "rows": int(count)}
        for key, (calls, seconds, count) in rows
    ]
    with open(os.environ["SMSDESK_PROBE_REPORT"], "w") as out:
        json.dump(summary, out, indent=1)


if __name__ == "__main__":
    sa.event.listen(Engine, "before_cursor_execute", _before)
    sa.event.listen(Engine, "after_cursor_execute", _after)
    default.DefaultDialect.do_commit = _timed_commit  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, _reset)
    signal.signal(signal.SIGUSR2, _report)
    from smsdesk.cli import main

    sys.argv = ["smsdesk", *sys.argv[1:]]
    main()
