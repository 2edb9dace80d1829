"""The circuit breaker of a connection: pure transitions over its health, on a fake clock."""

from __future__ import annotations

from smsdesk.domain.connections import Health
from smsdesk.outbox.breaker import CLOSED, after_result, after_results, half_open, may_send, verdict
from smsdesk.providers.base import (
    AuthenticationError,
    PermanentError,
    RateLimitedError,
    TemporaryError,
)
from smsdesk.testing import FakeClock

THRESHOLD = 3
COOL_DOWN = 60.0


def fail(h: Health, clock: FakeClock, times: int = 1) -> Health:
    for _ in range(times):
        h = after_result(h, False, clock(), THRESHOLD, error="connection refused")
    return h


def test_closed_opens_after_threshold_consecutive_failures() -> None:
    """N-1 counted failures keep the circuit closed; the Nth opens it at that moment."""
    clock = FakeClock()
    h = fail(CLOSED, clock, THRESHOLD - 1)
    assert (h.state, h.consecutive_failures) == ("closed", THRESHOLD - 1)
    assert may_send(h, clock(), COOL_DOWN) == "yes"
    clock.advance(5)
    h = fail(h, clock)
    assert (h.state, h.opened_at, h.last_error) == ("open", clock(), "connection refused")
    assert may_send(h, clock(), COOL_DOWN) == "no"


def test_a_success_resets_the_count() -> None:
    """Failures must be consecutive: one accepted send in between starts the count again."""
    clock = FakeClock()
    h = fail(CLOSED, clock, THRESHOLD - 1)
    h = after_result(h, True, clock(), THRESHOLD)
    assert h == CLOSED
    h = fail(h, clock, THRESHOLD - 1)
    assert h.state == "closed"


def test_open_allows_one_probe_after_the_cool_down() -> None:
    """An open circuit sends nothing until the cool-down has passed, then a probe."""
    clock = FakeClock()
    h = fail(CLOSED, clock, THRESHOLD)
    clock.advance(COOL_DOWN - 0.001)
    assert may_send(h, clock(), COOL_DOWN) == "no"
    clock.advance(0.001)
    assert may_send(h, clock(), COOL_DOWN) == "probe"
    probing = half_open(h)
    assert probing.state == "half_open"
    assert may_send(probing, clock(), COOL_DOWN) == "probe"


def test_probe_success_closes_and_failure_opens_again() -> None:
    """Half-open: a good probe closes the circuit; a failed one opens it for a new cool-down."""
    clock = FakeClock()
    probing = half_open(fail(CLOSED, clock, THRESHOLD))
    assert after_result(probing, True, clock(), THRESHOLD) == CLOSED
    clock.advance(COOL_DOWN + 1)
    reopened = fail(probing, clock)
    assert (reopened.state, reopened.opened_at) == ("open", clock())
    assert may_send(reopened, clock(), COOL_DOWN) == "no"
    clock.advance(COOL_DOWN)
    assert may_send(reopened, clock(), COOL_DOWN) == "probe"


def test_results_of_sends_started_before_opening_do_not_close_it() -> None:
    """A late success while open leaves it open; only the probe decides."""
    clock = FakeClock()
    h = fail(CLOSED, clock, THRESHOLD)
    assert after_result(h, True, clock(), THRESHOLD) == h
    assert after_results(h, [(False, "x"), (True, None)], clock(), THRESHOLD).state == "open"


def test_which_results_count() -> None:
    """Not-taken and connection-level failures count; message refusals show the line works;
    ambiguous failures say nothing."""
    assert verdict(None) == "ok"
    assert verdict(TemporaryError("refused", not_taken=True)) == "failure"
    assert verdict(AuthenticationError("bad key")) == "failure"
    assert verdict(RateLimitedError("slow down")) == "failure"
    assert verdict(PermanentError("no credit", connection_level=True)) == "failure"
    assert verdict(PermanentError("invalid number")) == "ok"
    assert verdict(TemporaryError("read timeout")) == "unknown"
