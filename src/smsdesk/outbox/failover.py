"""Failing over: where a message goes after a send through one connection of its route plan.

A message's route plan is the ordered list of connections fixed when it was accepted; its
`plan_index` says which one it is on. After a send, `next_step` decides:

- accepted → **sent**;
- refused for a reason of the message (a PermanentError not about the connection) → **fail**;
- the provider may have taken it (not `not_taken`, not a connection-level refusal) → **retry
  on the same connection** with backoff, never elsewhere: another account cannot recognise a
  message it never saw, so a second connection could only send it twice;
- the provider certainly did not take it, or refused for a reason of the connection or account
  (a PermanentError with `connection_level`, e.g. no credit) → **fail over** at once to the next
  healthy connection of the plan;
- the plan has no healthy connection left → **retry** from the first healthy connection of the
  plan (or its first) after the backoff; a connection-level refusal with nowhere else to go
  fails as it did before connections existed;
- whichever retry would come after the end of the validity period → **expire**.

Pure: the caller gives the health of the connections and the clock.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from smsdesk.domain.connections import Health
from smsdesk.outbox.breaker import healthy
from smsdesk.outbox.retry import RetryPolicy, delay_for
from smsdesk.providers.base import PermanentError, ProviderError

StepKind = Literal["sent", "retry_same", "failover", "fail", "expire"]

# Why a message left its connection: the `code` of its timeline's failover line.
NOT_TAKEN = "not_taken"  # the provider certainly did not take it
CONNECTION_REFUSED = "connection_refused"  # refused for a reason of the connection or account
CIRCUIT_OPEN = "circuit_open"  # the connection's circuit is open: not even tried
PLAN_EXHAUSTED = "plan_exhausted"  # back to the start of the plan after the backoff


class Claimed(Protocol):
    """What `next_step` reads of a claimed message row."""

    @property
    def connection_id(self) -> str | None: ...
    @property
    def plan_index(self) -> int | None: ...
    @property
    def attempts(self) -> int: ...
    @property
    def expires_at(self) -> float: ...


ACCEPTED = "accepted by the provider"  # the detail of a message the provider took


@dataclass(frozen=True, slots=True)
class Step:
    """The next step of one message: its kind, the connection it is on then, and when."""

    kind: StepKind
    connection_id: str | None
    retry_at: float | None = None
    reason: str = ""  # a code: NOT_TAKEN, CONNECTION_REFUSED, …, or the error's code
    detail: str = ""  # the provider's words
    plan_index: int = 0


def position(row: Claimed, plan: Sequence[str]) -> int:
    """The index of the message's current connection in its plan."""
    index = row.plan_index or 0
    if 0 <= index < len(plan) and plan[index] == row.connection_id:
        return index
    if row.connection_id in plan:
        return plan.index(row.connection_id)
    return index


def next_healthy(plan: Sequence[str], start: int, health: Mapping[str, Health]) -> int | None:
    """The index of the first connection from `start` on whose circuit is closed."""
    for index in range(max(start, 0), len(plan)):
        if healthy(health.get(plan[index])):
            return index
    return None


def next_step(
    row: Claimed,
    error: ProviderError | None,
    plan: Sequence[str],
    health: Mapping[str, Health],
    now: float,
    policy: RetryPolicy,
    rng: random.Random,
) -> Step:
    """What becomes of a message after a send through its current connection."""
    here = position(row, plan)
    current = row.connection_id
    if error is None:
        return Step("sent", current, None, "", ACCEPTED, here)
    code = error.code or type(error).__name__
    permanent = isinstance(error, PermanentError)
    if permanent and not error.connection_level:
        return Step("fail", current, None, code, error.message, here)
    if not (error.not_taken or permanent):
        return _later(row, error, current, here, now, policy, rng, code)
    reason = CONNECTION_REFUSED if permanent else NOT_TAKEN
    onward = next_healthy(plan, here + 1, health)
    if onward is not None:
        if now >= row.expires_at:
            return Step("expire", current, None, code, _expired(error), here)
        return Step("failover", plan[onward], now, reason, error.message, onward)
    if permanent and len(plan) <= 1:
        return Step("fail", current, None, code, error.message, here)
    first = next_healthy(plan, 0, health)
    index = first if first is not None else (0 if plan else here)
    target = plan[index] if plan else current
    if target == current:
        return _later(row, error, current, index, now, policy, rng, code)
    retry_at = now + delay_for(error, row.attempts, policy, rng)
    if retry_at >= row.expires_at:
        return Step("expire", current, None, code, _expired(error), here)
    return Step("failover", target, retry_at, PLAN_EXHAUSTED, error.message, index)


def _later(
    row: Claimed,
    error: ProviderError,
    current: str | None,
    index: int,
    now: float,
    policy: RetryPolicy,
    rng: random.Random,
    code: str,
) -> Step:
    """Retry on the same connection after the backoff, or expire if that is too late."""
    retry_at = now + delay_for(error, row.attempts, policy, rng)
    if retry_at >= row.expires_at:
        return Step("expire", current, None, code, _expired(error), index)
    return Step("retry_same", current, retry_at, code, error.message, index)


def _expired(error: ProviderError) -> str:
    return f"validity period ends before the next try (last error: {error.message})"


def off_open_circuit(
    row: Claimed, plan: Sequence[str], health: Mapping[str, Health], now: float
) -> Step | None:
    """Where a queued message waiting on an open circuit goes at once, if anywhere."""
    here = position(row, plan)
    onward = next_healthy(plan, here + 1, health)
    if onward is None or now >= row.expires_at:
        return None
    return Step("failover", plan[onward], now, CIRCUIT_OPEN, "", onward)
