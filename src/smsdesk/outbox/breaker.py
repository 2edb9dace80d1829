"""The circuit breaker of a connection, as pure functions over its `Health`.

::

    closed ──N consecutive counted failures──▶ open ──cool-down passed──▶ half_open (one probe)
      ▲                                         ▲                            │
      └──────────────── probe succeeded ────────┼────────────────────────────┤
                                                └──────── probe failed ──────┘

A *counted* failure is one about the connection (`connection_level`) or one the provider
certainly did not take (`not_taken`). A send the provider answered (accepted, or refused for a
reason of the message itself) shows the connection works and resets the count. An ambiguous
failure (the provider may have taken the message) says nothing either way and is not reported
here. Where the state is kept, and the one-probe lease, is `store/connection_health.py`.
"""

from __future__ import annotations

from typing import Literal

from smsdesk.domain.connections import Health
from smsdesk.providers.base import PermanentError, ProviderError

Permission = Literal["yes", "probe", "no"]
Verdict = Literal["ok", "failure", "unknown"]

CLOSED = Health(state="closed", consecutive_failures=0, opened_at=None, last_error=None)


def verdict(error: ProviderError | None) -> Verdict:
    """What a send's result says about its connection: works, failed (counted), or nothing."""
    if error is None:
        return "ok"
    if error.connection_level or error.not_taken:
        return "failure"
    if isinstance(error, PermanentError):
        return "ok"  # refused for a reason of the message: the connection answered
    return "unknown"


def after_result(
    h: Health, ok: bool, now: float, threshold: int, *, error: str | None = None
) -> Health:
    """The health after one counted result of a send through the connection."""
    if ok:
        if h.state == "open":
            return h  # a send that started before the circuit opened proves little
        return CLOSED
    failures = h.consecutive_failures + 1
    last = error if error is not None else h.last_error
    if h.state == "half_open" or (h.state == "closed" and failures >= max(threshold, 1)):
        return Health(state="open", consecutive_failures=failures, opened_at=now, last_error=last)
    return Health(
        state=h.state, consecutive_failures=failures, opened_at=h.opened_at, last_error=last
    )


def after_results(
    h: Health, verdicts: list[tuple[bool, str | None]], now: float, threshold: int
) -> Health:
    """The health after several counted results, in the order they came."""
    for ok, error in verdicts:
        h = after_result(h, ok, now, threshold, error=error)
    return h


def may_send(h: Health, now: float, cool_down: float) -> Permission:
    """Whether messages may go through the connection: all, one probe, or none."""
    if h.state == "closed":
        return "yes"
    if h.state == "half_open":
        return "probe"
    if h.opened_at is None or now >= h.opened_at + cool_down:
        return "probe"
    return "no"


def half_open(h: Health) -> Health:
    """The health once a process takes the probe of an open circuit."""
    return Health(
        state="half_open",
        consecutive_failures=h.consecutive_failures,
        opened_at=h.opened_at,
        last_error=h.last_error,
    )


def healthy(h: Health | None) -> bool:
    """Whether the connection takes messages now (a missing health reads as closed)."""
    return h is None or h.state == "closed"
