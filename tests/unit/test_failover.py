"""Failing over: the next step of a message after a send, by how certain its failure is."""

from __future__ import annotations

import random
from dataclasses import dataclass

from smsdesk.domain.connections import Health
from smsdesk.outbox.failover import (
    CIRCUIT_OPEN,
    CONNECTION_REFUSED,
    NOT_TAKEN,
    PLAN_EXHAUSTED,
    next_step,
    off_open_circuit,
)
from smsdesk.outbox.retry import RetryPolicy
from smsdesk.providers.base import (
    AuthenticationError,
    PermanentError,
    RateLimitedError,
    TemporaryError,
)

NOW = 1_800_000_000.0
PLAN = ["cm-a", "cm-b", "link"]
POLICY = RetryPolicy(base=10, factor=2, cap=300)
OPEN = Health(state="open", consecutive_failures=5, opened_at=NOW, last_error="down")


@dataclass
class Row:
    connection_id: str | None = "cm-a"
    plan_index: int | None = 0
    attempts: int = 1
    expires_at: float = NOW + 3600


def test_accepted_is_sent_on_its_connection() -> None:
    """No error: sent, through the connection it was on."""
    s = next_step(Row(), None, PLAN, {}, NOW, POLICY, random.Random(1))
    assert (s.kind, s.connection_id, s.plan_index) == ("sent", "cm-a", 0)


def test_not_taken_fails_over_at_once_to_the_next_connection() -> None:
    """Refused connection, 5xx without id, bad credentials, 429: the next connection, now."""
    for error in (
        TemporaryError("connection refused", not_taken=True),
        TemporaryError("503", code="503", not_taken=True),
        AuthenticationError("401"),
        RateLimitedError("429", retry_after=30),
    ):
        s = next_step(Row(), error, PLAN, {}, NOW, POLICY, random.Random(1))
        assert (s.kind, s.connection_id, s.plan_index, s.retry_at, s.reason) == (
            "failover",
            "cm-b",
            1,
            NOW,
            NOT_TAKEN,
        ), error


def test_an_ambiguous_failure_retries_the_same_connection_and_never_fails_over() -> None:
    """A read timeout after the request went out: same connection, after the backoff."""
    error = TemporaryError("read timeout")
    s = next_step(Row(), error, PLAN, {}, NOW, POLICY, random.Random(1))
    assert (s.kind, s.connection_id, s.plan_index) == ("retry_same", "cm-a", 0)
    assert s.retry_at is not None and NOW + 5 <= s.retry_at <= NOW + 10


def test_a_message_refusal_fails_and_a_connection_refusal_fails_over() -> None:
    """An invalid number fails for good; no credit on the account goes to the next connection."""
    s = next_step(Row(), PermanentError("invalid number"), PLAN, {}, NOW, POLICY, random.Random())
    assert (s.kind, s.detail) == ("fail", "invalid number")
    credit = PermanentError("no credit", code="102", connection_level=True)
    s = next_step(Row(), credit, PLAN, {}, NOW, POLICY, random.Random())
    assert (s.kind, s.connection_id, s.reason) == ("failover", "cm-b", CONNECTION_REFUSED)


def test_open_circuits_are_skipped_when_failing_over() -> None:
    """The next connection whose circuit is closed takes the message."""
    error = TemporaryError("refused", not_taken=True)
    s = next_step(Row(), error, PLAN, {"cm-b": OPEN}, NOW, POLICY, random.Random(1))
    assert (s.kind, s.connection_id, s.plan_index) == ("failover", "link", 2)


def test_exhausted_plan_retries_from_the_first_healthy_connection_after_the_backoff() -> None:
    """On the last connection, a not-taken failure goes back to the first healthy one, later."""
    row = Row(connection_id="link", plan_index=2, attempts=3)
    error = TemporaryError("refused", not_taken=True)
    s = next_step(row, error, PLAN, {"cm-a": OPEN}, NOW, POLICY, random.Random(1))
    assert (s.kind, s.connection_id, s.plan_index, s.reason) == (
        "failover",
        "cm-b",
        1,
        PLAN_EXHAUSTED,
    )
    assert s.retry_at is not None and NOW + 20 <= s.retry_at <= NOW + 40


def test_exhausted_plan_expires_at_the_validity() -> None:
    """When the retry would come after the validity period, the message expires."""
    row = Row(connection_id="link", plan_index=2, attempts=3, expires_at=NOW + 5)
    s = next_step(row, TemporaryError("x", not_taken=True), PLAN, {}, NOW, POLICY, random.Random())
    assert s.kind == "expire"
    assert "validity period" in s.detail


def test_single_connection_keeps_todays_behaviour() -> None:
    """One connection: temporary failures retry it with backoff; no credit fails at once."""
    plan = ["default"]
    row = Row(connection_id="default")
    s = next_step(row, TemporaryError("x", not_taken=True), plan, {}, NOW, POLICY, random.Random())
    assert (s.kind, s.connection_id) == ("retry_same", "default")
    credit = PermanentError("no credit", connection_level=True)
    assert next_step(row, credit, plan, {}, NOW, POLICY, random.Random()).kind == "fail"
    auth = next_step(row, AuthenticationError("401"), plan, {}, NOW, POLICY, random.Random())
    assert auth.retry_at is not None and auth.retry_at >= NOW + POLICY.auth_delay


def test_queued_messages_leave_an_open_circuit_only_for_a_healthy_next_connection() -> None:
    """Skipping an open circuit moves a message on if its plan has somewhere to go."""
    s = off_open_circuit(Row(), PLAN, {"cm-a": OPEN}, NOW)
    assert s is not None and (s.connection_id, s.plan_index, s.reason) == ("cm-b", 1, CIRCUIT_OPEN)
    last = Row(connection_id="link", plan_index=2)
    assert off_open_circuit(last, PLAN, {"link": OPEN}, NOW) is None
