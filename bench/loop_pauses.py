"""Where `smsdesk serve`'s event loop pauses under bench/vs_kannel.py's load, and for how long.

Starts smsdesk as vs_kannel.py does (simulator with report delay 0, SQLite), through
`_pause_probe.py`: a task on the event loop that measures how late a 1 ms sleep wakes up, a
thread that notes where every thread is while the loop is more than 10 ms late, and the
garbage collector's passes timed per generation. Prints the accept rate and latency the client
saw, then the probe's summary. The probe's thread costs CPU itself: compare its figures with
each other, not with vs_kannel.py's.

    python bench/loop_pauses.py                 # N=10,000, C=128
    python bench/loop_pauses.py --where 25      # more of the places
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lean_client import percentile
from _vs_systems import probed_load

PROBE = Path(__file__).resolve().parent / "_pause_probe.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000)
    parser.add_argument("-c", type=int, default=128)
    parser.add_argument("--where", type=int, default=12, help="places to print")
    opts = parser.parse_args()
    result, summary = probed_load(PROBE, opts.n, opts.c)
    assert isinstance(summary, dict)
    ok = sum(n for status, n in result.statuses.items() if 200 <= status < 300)
    print(
        f"accepted {ok / result.seconds:,.0f}/s, p50/p99 "
        f"{1000 * percentile(result.latencies, 0.5):.1f}/"
        f"{1000 * percentile(result.latencies, 0.99):.1f} ms (with the probe)"
    )
    late = summary["late_ms"]
    print(
        f"event loop late by: p50 {late['p50']} p90 {late['p90']} p99 {late['p99']} "
        f"max {late['max']} ms over {summary['samples']:,} sleeps; "
        f"{summary['pauses_over_10ms']} pauses over 10 ms"
    )
    print(f"garbage collector (thresholds {summary['threshold']}):")
    for generation, figures in summary["collections"].items():
        print(
            f"  {generation}: {figures['count']} passes, {figures['total_ms']} ms in all, "
            f"longest {figures['max_ms']} ms"
        )
    print("where each thread was while the loop was over 10 ms late (ms sampled):")
    for place, ms in list(summary["where_ms"].items())[: opts.where]:
        print(f"  {ms:5d}  {place}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
