"""Where `smsdesk serve`'s SQL time goes under bench/vs_kannel.py's load, by statement.

Starts smsdesk as vs_kannel.py does (simulator with report delay 0, SQLite), through
`_sql_probe.py`, which adds up the wall time of every statement and commit during the measured
load (not the warm-up). With `--stored`, the database holds that many finished messages
first, so the cost that grows with the data shows statement by statement. The probe's own work
slows the server down: compare its figures with each other, not with vs_kannel.py's.

    python bench/sql_times.py                     # N=10,000, C=128, an empty database
    python bench/sql_times.py --stored 1000000    # with 1,000,000 messages kept
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lean_client import percentile
from _vs_systems import probed_load

PROBE = Path(__file__).resolve().parent / "_sql_probe.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("-c", type=int, default=128)
    parser.add_argument("--stored", type=int, default=0, help="finished messages kept before")
    parser.add_argument("--top", type=int, default=20, help="statements to print")
    opts = parser.parse_args()
    result, statements = probed_load(PROBE, opts.n, opts.c, stored=opts.stored)
    assert isinstance(statements, list)
    ok = sum(n for status, n in result.statuses.items() if 200 <= status < 300)
    print(
        f"{opts.stored:,} stored: accepted {ok / result.seconds:,.0f}/s, p99 "
        f"{1000 * percentile(result.latencies, 0.99):.1f} ms (with the probe)"
    )
    total = sum(s["ms"] for s in statements)
    print(f"{total:,.0f} ms of SQL wall time in {sum(s['calls'] for s in statements):,} calls")
    print("      ms   calls     rows  statement")
    for s in statements[: opts.top]:
        print(f"{s['ms']:8.1f} {s['calls']:7,d} {s['rows']:8,d}  {s['sql']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
