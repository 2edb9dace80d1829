"""smsdesk against Kannel on this machine, side by side, with the same lean load client.

Each run starts both systems fresh, one after the other (the order alternates between runs):

  Kannel   bearerbox + smsbox + Debian's fakesmsc (tests/support/kannel.py), sendsms GETs with
           dlr-mask=1 and a dlr-url on a loopback receiver process of the bench; bearerbox's
           fake SMSC driver makes the delivered report for each message.
  smsdesk  one `smsdesk serve` (dispatcher and report handling in the same process, as users
           run it), the simulator module with report delay 0, so each report comes back over
           HTTP; SQLite in a temporary directory, or a PostgreSQL the bench starts.

For each, C keep-alive connections first send one warm-up message each (its report is
awaited), then N single-message requests. Per run and system:

  accepted/s     N / time from the first request to the last answer
  delivered/s    N / time from the first request until the N-th delivered report was applied:
                 Kannel, the receiver got it (its clock); smsdesk, the largest `updated_at` of
                 the delivered messages, polled read-only in the database
  p50 / p99      accept latency of the N requests
  peak RSS       VmHWM summed over the server processes (bearerbox+smsbox+fakesmsc | serve)
  CPU            utime+stime from /proc/<pid>/stat per server process, from the first request
                 until the N-th report; per message over all of them; the client's own CPU
                 (time.process_time while it sends) and the DLR receiver's are printed apart

A table per C gives the medians over the runs and the ratio smsdesk ÷ Kannel.

With --stored N (default 0) smsdesk's database already holds N finished messages with their
timelines when serve starts (bench/_prefill.py; filled once, each run starts from a copy).
A list such as --stored 0,1000000 measures smsdesk with each count in every run (Kannel once)
and adds a table of accepted/s and p99 per count with the ratio to the first count: issue 17's
"cost as work grows" (within 10 % of an empty database).

    python bench/vs_kannel.py                       # N=10,000, C=128, 3 runs, SQLite
    python bench/vs_kannel.py -n 2000 --runs 1      # a smoke test
    python bench/vs_kannel.py -c 32,128,256
    python bench/vs_kannel.py --database postgres --processes 2
    python bench/vs_kannel.py --only smsdesk --json /tmp/vs.json
    python bench/vs_kannel.py --only smsdesk --stored 0,1000000     # cost as work grows
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _lean_client import LeanClient, LoadResult, percentile
from _vs_systems import (
    StoredMessages,
    System,
    cpu_seconds,
    peak_rss_kib,
    running_kannel,
    running_postgres,
    running_smsdesk,
    serve_supports_processes,
    tree_cpu_seconds,
    wait_for_reports,
)

Figures = dict[str, Any]
SYSTEMS = ("kannel", "smsdesk")
SHOWN = {"kannel": "Kannel", "smsdesk": "smsdesk"}


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def load_average() -> float:
    return round(os.getloadavg()[0], 2)


def starter(name: str, stored: int, opts: argparse.Namespace) -> AbstractContextManager[System]:
    if name == "kannel":
        return running_kannel()
    return running_smsdesk(
        postgres=opts.postgres,
        processes=opts.serve_processes,
        log_level=opts.log_level,
        stored=stored,
        cache=opts.cache,
    )


def cpu_of(pids: dict[str, int], tree: bool = False) -> dict[str, float]:
    read = tree_cpu_seconds if tree else cpu_seconds
    return {name: read(pid) for name, pid in pids.items()}


def measure(
    name: str, stored: int, n: int, c: int, opts: argparse.Namespace, runner: asyncio.Runner
) -> Figures:
    """One fresh system: warm up, send N, wait for N reports; what it cost."""
    load = load_average()
    with starter(name, stored, opts) as system:
        client = LeanClient(system.host, system.port, c)
        try:
            runner.run(client.open())
            warm = runner.run(client.run(system.requests(0, c)))
            warm_ok = accepted(warm)
            baseline, _ = wait_for_reports(system, warm_ok, timeout=60)
            requests = system.requests(c, n)
            pids, helpers = system.processes(), system.helpers()
            cpu_before, helpers_before = cpu_of(pids), cpu_of(helpers, tree=True)
            result = runner.run(client.run(requests))
            ok = accepted(result)
            count, last_at = wait_for_reports(system, baseline + ok, timeout=max(120, n / 20))
            cpu_after, helpers_after = cpu_of(pids), cpu_of(helpers, tree=True)
            rss = {process: peak_rss_kib(pid) for process, pid in pids.items()}
        finally:
            client.close()
    helpers_cpu = {k: round(helpers_after[k] - helpers_before[k], 3) for k in helpers}
    return figures(result, ok, count - baseline, last_at, cpu_before, cpu_after, rss) | {
        "warm_up_errors": c - warm_ok,
        "helpers_cpu_s": helpers_cpu,
        "helpers_cpu_ms_per_msg": (
            round(1000 * sum(helpers_cpu.values()) / n, 4) if helpers_cpu else None
        ),
        "load_before": load,
        "stored": stored,
    }


def accepted(result: LoadResult) -> int:
    return sum(count for status, count in result.statuses.items() if 200 <= status < 300)


def figures(
    result: LoadResult,
    ok: int,
    reported: int,
    last_at: float,
    cpu_before: dict[str, float],
    cpu_after: dict[str, float],
    rss: dict[str, int],
) -> Figures:
    n = result.requests
    ms = [1000 * s for s in result.latencies]
    cpu = {k: round(cpu_after[k] - cpu_before[k], 3) for k in cpu_before}
    until_reports = last_at - result.started_wall
    return {
        "requests": n,
        "accepted": ok,
        "errors": {str(k): v for k, v in result.statuses.items() if not 200 <= k < 300},
        "error_sample": result.errors[:1],
        "accept_s": round(result.seconds, 3),
        "accepted_per_s": round(ok / result.seconds, 1),
        "reports": reported,
        "all_reported": reported >= ok,
        "reports_s": round(until_reports, 3),
        "delivered_per_s": round(reported / until_reports, 1) if until_reports > 0 else None,
        "p50_ms": round(percentile(ms, 0.50), 2),
        "p99_ms": round(percentile(ms, 0.99), 2),
        "peak_rss_mib": round(sum(rss.values()) / 1024, 1),
        "peak_rss_mib_by_process": {k: round(v / 1024, 1) for k, v in rss.items()},
        "cpu_s": cpu,
        "cpu_ms_per_msg": round(1000 * sum(cpu.values()) / n, 3),
        "client_cpu_s": round(result.cpu_seconds, 3),
        "client_cpu_ms_per_msg": round(1000 * result.cpu_seconds / n, 4),
    }


def describe(f: Figures) -> str:
    cpu = ", ".join(f"{k} {v:.2f}" for k, v in f["cpu_s"].items())
    helpers = "".join(f", {k} {v:.2f} s" for k, v in f["helpers_cpu_s"].items())
    missing = "" if f["all_reported"] else f" (ONLY {f['reports']} reports)"
    line = (
        f"accepted {f['accepted_per_s']:,.0f}/s, delivered {f['delivered_per_s'] or 0:,.0f}/s"
        f"{missing}, "
        f"p50/p99 {f['p50_ms']:.1f}/{f['p99_ms']:.1f} ms, peak RSS {f['peak_rss_mib']} MiB, "
        f"CPU s: {cpu} = {f['cpu_ms_per_msg']:.3f} ms/msg; "
        f"client {f['client_cpu_s']:.2f} s ({f['client_cpu_ms_per_msg']:.3f} ms/msg){helpers}; "
        f"load before {f['load_before']}"
    )
    if f["errors"] or f["warm_up_errors"]:
        line += f"; ERRORS {f['errors']} warm-up {f['warm_up_errors']} {f['error_sample']}"
    return line


def median_of(runs: list[Figures], key: str) -> float | None:
    values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
    return statistics.median(values) if values else None


def median_by_process(runs: list[Figures], key: str) -> dict[str, float]:
    names = {name for r in runs for name in r[key]}
    return {n: statistics.median([r[key].get(n, 0.0) for r in runs]) for n in sorted(names)}


def summary(runs: list[Figures]) -> Figures:
    keys = ("accepted_per_s", "delivered_per_s", "p50_ms", "p99_ms", "peak_rss_mib")
    out: Figures = {k: median_of(runs, k) for k in keys}
    for key in ("cpu_ms_per_msg", "client_cpu_ms_per_msg", "helpers_cpu_ms_per_msg"):
        out[key] = median_of(runs, key)
    out["cpu_s"] = median_by_process(runs, "cpu_s")
    out["all_reported"] = all(r["all_reported"] for r in runs)
    out["errors"] = sum(sum(r["errors"].values()) + r["warm_up_errors"] for r in runs)
    return out


def _num(value: float | None, unit: str = "", digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}{unit}"


def _ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}×" if ours is not None and theirs else ""  # noqa: RUF001


def table(c: int, n: int, results: dict[str, list[Figures]], stored: int = 0) -> list[str]:
    """The issue's table: medians per system and smsdesk ÷ Kannel."""
    s = {name: summary(runs) for name, runs in results.items() if runs}
    k, d = s.get("kannel", {}), s.get("smsdesk", {})
    loads = "; ".join(
        f"{SHOWN[name]} {', '.join(str(r['load_before']) for r in runs)}"
        for name, runs in results.items()
    )
    rows = [
        ("accepted per second", "accepted_per_s", "", 0),
        ("accept → delivery report applied, per second", "delivered_per_s", "", 0),
        ("peak RSS (server processes)", "peak_rss_mib", " MiB", 0),
        ("CPU per message (server processes)", "cpu_ms_per_msg", " ms", 3),
        ("load client's CPU per message", "client_cpu_ms_per_msg", " ms", 3),
        ("CPU per message of the DLR receiver (Kannel), PostgreSQL (smsdesk)",
         "helpers_cpu_ms_per_msg", " ms", 3),
    ]  # fmt: skip
    lines = [
        "",
        f"C={c}, N={n:,}, smsdesk with {stored:,} messages stored, median of "
        f"{max(map(len, results.values()))} run(s); 1-minute load average before each run: "
        f"{loads}",
        "",
        "| figure | Kannel | smsdesk | smsdesk ÷ Kannel |",
        "|---|---|---|---|",
    ]
    for label, key, unit, digits in rows:
        kv, dv = k.get(key), d.get(key)
        ratio = _ratio(dv, kv) if key != "helpers_cpu_ms_per_msg" else ""
        lines.append(f"| {label} | {_num(kv, unit, digits)} | {_num(dv, unit, digits)} | {ratio} |")
    lat = [f"{_num(x.get('p50_ms'), '', 0)} / {_num(x.get('p99_ms'), ' ms', 0)}" for x in (k, d)]
    lines.insert(7, f"| p50 / p99 accept latency | {lat[0]} | {lat[1]} | |")
    cpu = [", ".join(f"{p} {v:.2f}" for p, v in x.get("cpu_s", {}).items()) for x in (k, d)]
    lines.append(f"| CPU seconds per process | {cpu[0] or 'n/a'} | {cpu[1] or 'n/a'} | |")
    lines.append("")
    lines.append(targets(k, d))
    for name, x in s.items():
        if not x["all_reported"] or x["errors"]:
            lines.append(f"WARNING {name}: errors {x['errors']}, all reported {x['all_reported']}")
    return lines


GROWTH_BOUND = 0.10  # issue 17: within 10 % of an empty database


def growth_table(c: int, n: int, by_stored: dict[int, list[Figures]]) -> list[str]:
    """smsdesk's medians per stored count and the ratio to the first count (empty, usually)."""
    s = {stored: summary(runs) for stored, runs in by_stored.items() if runs}
    if len(s) < 2:
        return []
    first = next(iter(s))
    base = s[first]
    lines = [
        "",
        f"Cost as work grows: smsdesk, C={c}, N={n:,}, median of "
        f"{max(map(len, by_stored.values()))} run(s); ratios to {first:,} stored",
        "",
        "| stored messages | accepted/s | ratio | p99 accept | ratio | delivered/s | p50 accept |",
        "|---|---|---|---|---|---|---|",
    ]
    checks = []
    for stored, x in s.items():
        accepted = _share(x, base, "accepted_per_s")
        p99 = _share(x, base, "p99_ms")
        lines.append(
            f"| {stored:,} | {_num(x['accepted_per_s'])} | {_num(accepted, '', 3)} | "
            f"{_num(x['p99_ms'], ' ms', 1)} | {_num(p99, '', 3)} | "
            f"{_num(x['delivered_per_s'])} | {_num(x['p50_ms'], ' ms', 1)} |"
        )
        if stored != first and accepted is not None and p99 is not None:
            met = accepted >= 1 - GROWTH_BOUND and p99 <= 1 + GROWTH_BOUND
            checks.append(
                f"{stored:,} stored: {'met' if met else 'MISSED'} "
                f"(accepted ×{accepted:.3f}, p99 ×{p99:.3f})"  # noqa: RUF001
            )
    lines += ["", "issue 17 within 10 % of an empty database: " + "; ".join(checks)]
    return lines


def targets(kannel: Figures, smsdesk: Figures) -> str:
    """Issue 17's targets for smsdesk, met or missed by these medians."""
    checks = []
    for what, value, bound, at_most in (
        ("accepted ≥ 0.8 of Kannel's", _share(smsdesk, kannel, "accepted_per_s"), 0.8, False),
        ("delivered ≥ 0.5 of Kannel's", _share(smsdesk, kannel, "delivered_per_s"), 0.5, False),
        ("p99 < 50 ms", smsdesk.get("p99_ms"), 50, True),
        ("RSS < 120 MiB", smsdesk.get("peak_rss_mib"), 120, True),
        ("CPU ≤ 0.4 ms/message", smsdesk.get("cpu_ms_per_msg"), 0.4, True),
    ):
        if value is not None:
            met = value <= bound if at_most else value >= bound
            checks.append(f"{what}: {'met' if met else 'MISSED'} ({value:,.2f})")
    return "issue 17 targets: " + ("; ".join(checks) or "n/a")


def _share(ours: Figures, theirs: Figures, key: str) -> float | None:
    a, b = ours.get(key), theirs.get(key)
    return a / b if a is not None and b else None


def machine() -> Figures:
    kannel = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "kannel"], capture_output=True, text=True
    ).stdout
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "kannel": kannel or "not installed",
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("-n", type=int, default=10_000, help="single-message requests per run (N)")
    p.add_argument(
        "-c",
        default="128",
        help="keep-alive connections (C); a list such as 32,128,256 measures each",
    )
    p.add_argument("--runs", type=int, default=3, help="runs per C; medians are printed")
    p.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    p.add_argument(
        "--processes",
        type=int,
        help="passed to `smsdesk serve --processes` if serve has that option",
    )
    p.add_argument("--only", choices=SYSTEMS, help="measure only this system")
    p.add_argument(
        "--log-level",
        default="INFO",
        help="smsdesk's SMSDESK_LOG_LEVEL (INFO, its default, as users run it; Kannel logs\n"
        "at its launcher's level 1, info, likewise a line per message)",
    )
    p.add_argument(
        "--stored",
        default="0",
        help="finished messages in smsdesk's database before serve starts; a list such as\n"
        "0,1000000 measures each in every run and compares them (bench/_prefill.py)",
    )
    p.add_argument("--json", type=Path, help="also write every figure to this file")
    opts = p.parse_args(argv)
    opts.stored_counts = [int(s.replace("_", "")) for s in opts.stored.split(",")]
    opts.cache = None
    opts.concurrencies = [int(c) for c in opts.c.split(",")]
    opts.systems = [opts.only] if opts.only else list(SYSTEMS)
    opts.serve_processes = None
    opts.postgres = None
    return opts


def order(run: int, systems: list[tuple[str, int]]) -> Iterator[tuple[str, int]]:
    """Alternate which system (and stored count) goes first, so drift in the machine's load
    hits all alike."""
    return iter(systems if run % 2 == 0 else systems[::-1])


def entries(opts: argparse.Namespace) -> list[tuple[str, int]]:
    """(system, stored count) measured in each run: Kannel once, smsdesk per count."""
    out: list[tuple[str, int]] = []
    for name in opts.systems:
        out += [(name, 0)] if name == "kannel" else [(name, s) for s in opts.stored_counts]
    return out


def fill_stored(opts: argparse.Namespace) -> None:
    """Fill each stored count's database before the first run, not during one."""
    for stored in opts.stored_counts:
        if stored:
            print(f"# filling {stored:,} messages ...", flush=True)
            print(f"# {opts.cache.ensure(stored).describe()}", flush=True)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.processes is not None and "smsdesk" in opts.systems:
        if serve_supports_processes():
            opts.serve_processes = opts.processes
        else:
            print(f"# `smsdesk serve --processes` does not exist yet: --processes {opts.processes}"
                  " is skipped, one serve process is measured")  # fmt: skip
    report: Figures = {"machine": machine(), "options": {}, "results": {}}
    report["options"] = {k: str(v) for k, v in vars(opts).items()}
    print(
        f"# vs Kannel on {report['machine']}; N={opts.n:,}, C={opts.concurrencies}, "
        f"runs={opts.runs}, database={opts.database}, serve processes="
        f"{opts.serve_processes or 1}, smsdesk log level={opts.log_level}, stored messages="
        f"{', '.join(f'{s:,}' for s in opts.stored_counts)}, load {load_average()}",
        flush=True,
    )
    tables: list[str] = []
    ok = True
    with ExitStack() as stack, asyncio.Runner(loop_factory=loop_factory()) as runner:
        if opts.database == "postgres" and "smsdesk" in opts.systems:
            opts.postgres = stack.enter_context(running_postgres())
        if "smsdesk" in opts.systems and any(opts.stored_counts):
            opts.cache = StoredMessages(opts.postgres)
            stack.callback(opts.cache.close)
            fill_stored(opts)
        for c in opts.concurrencies:
            runs: dict[tuple[str, int], list[Figures]] = {e: [] for e in entries(opts)}
            for run in range(opts.runs):
                for name, stored in order(run, entries(opts)):
                    f = measure(name, stored, opts.n, c, opts, runner)
                    runs[name, stored].append(f)
                    ok = ok and f["all_reported"] and not f["errors"]
                    shown = f"{name} ({stored:,} stored)" if name == "smsdesk" else name
                    print(f"C={c} run {run + 1}/{opts.runs} {shown:8} {describe(f)}", flush=True)
            lines = []
            for stored in opts.stored_counts if "smsdesk" in opts.systems else [0]:
                results = {
                    name: runs[name, 0 if name == "kannel" else stored] for name in opts.systems
                }
                lines += table(c, opts.n, results, stored)
            lines += growth_table(
                c,
                opts.n,
                {s: runs["smsdesk", s] for s in opts.stored_counts if ("smsdesk", s) in runs},
            )
            tables += lines
            print("\n".join(lines), flush=True)
            report["results"][str(c)] = {
                (
                    name
                    if name == "kannel" or len(opts.stored_counts) == 1
                    else f"{name} stored={s}"
                ): r
                for (name, s), r in runs.items()
            }
    if len(opts.concurrencies) > 1:
        print("\n# all tables again\n" + "\n".join(tables))
    if opts.json:
        opts.json.write_text(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
