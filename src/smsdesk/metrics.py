"""Prometheus metrics: message counts per module, queue depth per priority, send latency, per
connection what sends gave, failovers and whether its circuit is open, and for the cluster this
process's role, the jobs it leads and their runs, its leased messages and the shared buckets."""

from __future__ import annotations

import os
import time
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

disable_created_metrics()  # type: ignore[no-untyped-call]

# prometheus_client's own variable: set before it is imported, each process keeps its figures
# in files there (`commands/serve_processes.again_with_shared_metrics`). A gauge's
# `multiprocess_mode` says how /metrics combines the live processes' values, "livesum" their
# sum and "livemax" the highest, so each series has the same labels as in one process.
SHARED_DIRECTORY = "PROMETHEUS_MULTIPROC_DIR"

ACCEPTED = Counter(
    "smsdesk_messages_accepted", "Messages accepted for sending.", ["module"], registry=None
)
OUTCOMES = Counter(
    "smsdesk_messages",
    "Messages that reached a status, by module.",
    ["module", "status"],
    registry=None,
)
REPORTS = Counter(
    "smsdesk_delivery_reports",
    "Delivery reports received, by outcome.",
    ["module", "outcome"],
    registry=None,
)
SEND_LATENCY = Histogram(
    "smsdesk_send_latency_seconds",
    "Time a provider took to answer a send request.",
    ["module"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=None,
)

CONNECTION_SENDS = Counter(
    "smsdesk_connection_sends",
    "Messages tried through a connection, by result (accepted, not_taken, ambiguous, refused).",
    ["connection", "result"],
    registry=None,
)
CONNECTION_FAILOVERS = Counter(
    "smsdesk_connection_failovers",
    "Messages that left a connection for the next one of their route plan.",
    ["connection"],
    registry=None,
)
CONNECTION_CIRCUIT = Gauge(
    "smsdesk_connection_circuit_open",
    "1 while a connection's circuit is open or half-open (as this process last saw it).",
    ["connection"],
    registry=None,
    multiprocess_mode="livemax",
)

JOB_LEADER = Gauge(
    "smsdesk_job_leader",
    "1 while this process (under serve --processes, one of its processes) leads the job.",
    ["job"],
    registry=None,
    multiprocess_mode="livesum",
)
JOB_RUNS = Counter(
    "smsdesk_job_runs", "Runs of a once-per-cluster job in this process.", ["job"], registry=None
)
PROCESS_ROLE = Gauge(
    "smsdesk_process_role",
    "Processes in each role: api (web only), worker (dispatcher only) or both.",
    ["role"],
    registry=None,
    multiprocess_mode="livesum",
)


@cache
def leased_messages() -> Gauge:
    """Made on first use: a metric without labels holds its value from the start, and in a
    process with SHARED_DIRECTORY set that value is a file there. Made at import, every
    command would write one, before `serve` could say the directory is missing."""
    return Gauge(
        "smsdesk_leased_messages",
        "Messages this process (under serve --processes, all its processes) holds leased for "
        "sending, as of the last heartbeat.",
        registry=None,
        multiprocess_mode="livesum",
    )


LIMITER_TOKENS = Gauge(
    "smsdesk_limiter_tokens",
    "Tokens in a connection's shared rate-limit bucket (PostgreSQL; as of the last heartbeat).",
    ["connection"],
    registry=None,
    multiprocess_mode="livemax",
)
LIMITER_PAUSED_UNTIL = Gauge(
    "smsdesk_limiter_paused_until",
    "Until when (epoch seconds) a connection's shared bucket is paused after throttling.",
    ["connection"],
    registry=None,
    multiprocess_mode="livemax",
)


def set_limiter_state(buckets: Iterable[dict[str, Any]]) -> None:
    """The shared buckets as `store.rate_limits.limiter_state` reads them."""
    for bucket in buckets:
        LIMITER_TOKENS.labels(bucket["connection_id"]).set(bucket["tokens"])
        LIMITER_PAUSED_UNTIL.labels(bucket["connection_id"]).set(bucket["paused_until"])


def count_connection_sends(connection: str, results: dict[str, int], failovers: int) -> None:
    """What a batch through a connection gave, and how many of its messages failed over."""
    for result, count in results.items():
        if count:
            CONNECTION_SENDS.labels(connection, result).inc(count)
    if failovers:
        CONNECTION_FAILOVERS.labels(connection).inc(failovers)


def set_circuit(connection: str, state: str) -> None:
    CONNECTION_CIRCUIT.labels(connection).set(0 if state == "closed" else 1)


def count_recorded(module: str, recorded: Any) -> None:
    """Statuses a recorded send set, and those of reports that had waited for it (`Recorded`).

    Those reports were counted as received (unmatched) when they came; the status each one
    applies is counted here, once, when the send is recorded.
    """
    _count_outcomes(module, (str(outcome.status) for outcome in recorded.outcomes))
    for report_module, tally in recorded.reports:
        _count_outcomes(report_module, tally.statuses)


def count_reports(module: str, tally: Any) -> None:
    _count_outcomes(module, tally.statuses)
    REPORTS.labels(module, "applied").inc(tally.applied)
    REPORTS.labels(module, "duplicate").inc(tally.duplicate)
    REPORTS.labels(module, "stale").inc(tally.stale)
    REPORTS.labels(module, "unmatched").inc(tally.unmatched)


def _count_outcomes(module: str, statuses: Iterable[str]) -> None:
    """One increment per status of a batch, not per message: a label lookup and the
    counter's lock cost as much as the rest of a message's bookkeeping."""
    for status, count in Tally(statuses).items():
        OUTCOMES.labels(module, status).inc(count)


class QueueDepth(Collector):
    """Reads queued messages per priority at scrape time (cached for a second)."""

    def __init__(self, read: Callable[[], dict[int, int]]) -> None:
        self.read = read
        self._cache: tuple[float, dict[int, int]] = (0.0, {})

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if time.monotonic() - self._cache[0] > 1.0:
            self._cache = (time.monotonic(), self.read())
        family = GaugeMetricFamily(
            "smsdesk_queue_depth", "Queued messages by SMS priority.", labels=["priority"]
        )
        for priority in (1, 2, 3):
            family.add_metric([str(priority)], self._cache[1].get(priority, 0))
        yield family


def shared_directory() -> str | None:
    """Where the processes of a `serve --processes N` keep their figures, if this is one."""
    return os.environ.get(SHARED_DIRECTORY)


def forget_process(pid: int) -> None:
    """An ended process's gauges no longer count; its counters stay counted."""
    if shared_directory():
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def registry_for(read_queue_depth: Callable[[], dict[int, int]]) -> CollectorRegistry:
    """This process's metrics, or, in a `serve --processes N`, those of every live process
    combined: counters and histograms summed (an ended process's counts included), gauges
    summed or their highest (`multiprocess_mode`)."""
    registry = CollectorRegistry(auto_describe=True)
    if shared_directory():
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(QueueDepth(read_queue_depth))
        return registry
    for collector in (
        ACCEPTED,
        OUTCOMES,
        REPORTS,
        SEND_LATENCY,
        CONNECTION_SENDS,
        CONNECTION_FAILOVERS,
        CONNECTION_CIRCUIT,
        JOB_LEADER,
        JOB_RUNS,
        PROCESS_ROLE,
        leased_messages(),
        LIMITER_TOKENS,
        LIMITER_PAUSED_UNTIL,
    ):
        registry.register(collector)
    registry.register(QueueDepth(read_queue_depth))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
