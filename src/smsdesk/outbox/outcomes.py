"""What a batch's answers mean: each message's outcome, the breaker's results, the figures.

`failover.next_step` decides each message's step from its route plan and the connections'
health; this turns the steps into the outcomes `store/messages.py` records.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smsdesk.domain.connections import Connection, Health
from smsdesk.domain.message import Status
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.outbox.breaker import CLOSED, after_results, verdict
from smsdesk.outbox.failover import ACCEPTED, Step, next_step
from smsdesk.outbox.retry import RetryPolicy
from smsdesk.outbox.targets import HealthView, module_of, placed, plan_of
from smsdesk.providers.base import PermanentError, ProviderError, SendResult
from smsdesk.store import messages as repo
from smsdesk.store.connection_health import Tally

# The dispatcher's lines, named as they always were, so log filters keep working.
log = logging.getLogger("smsdesk.outbox.dispatcher")

_STATUS_OF_STEP = {
    "sent": Status.SENT,
    "retry_same": Status.QUEUED,
    "failover": Status.QUEUED,
    "fail": Status.FAILED,
    "expire": Status.EXPIRED,
}


def sent_outcome(row: Any, result: SendResult, tried: Connection) -> repo.Outcome:
    """The outcome of a message the provider took."""
    return repo.Outcome(
        row.id, Status.SENT, result.raw_code, ACCEPTED, result.provider_message_id, tried=tried.id
    )


def outcome_of_step(
    row: Any, result: SendResult, step: Step, tried: Connection, known: Mapping[str, Any]
) -> repo.Outcome:
    """The outcome to record for a message after `failover.next_step` decided its step."""
    status = _STATUS_OF_STEP[step.kind]
    if step.kind == "sent":
        return sent_outcome(row, result, tried)
    error = result.error
    code = (error.code or type(error).__name__) if error is not None else step.reason
    if step.kind != "failover" or step.connection_id is None:
        return repo.Outcome(
            row.id, status, code, step.detail, next_attempt_at=step.retry_at, tried=tried.id
        )
    return repo.Outcome(
        row.id,
        status,
        code,
        step.detail,
        next_attempt_at=step.retry_at,
        tried=tried.id,
        connection_id=step.connection_id,
        module=module_of(step.connection_id, known),
        plan_index=step.plan_index,
        failover_reason=step.reason,
    )


@dataclass(frozen=True, slots=True)
class Scan:
    """What one scan read: the configuration, the connections by id, their health."""

    config: SmsConfiguration
    known: dict[str, Connection]
    health: dict[str, Health]


@dataclass(slots=True)
class Judged:
    """A batch's outcomes, what it says about the connection, and its figures."""

    outcomes: list[repo.Outcome] = field(default_factory=list)
    counted: list[tuple[bool, str | None]] = field(default_factory=list)
    results: dict[str, int] = field(default_factory=dict)
    tally: Tally = field(default_factory=Tally)


def judge(
    connection: Connection,
    rows: Sequence[Any],
    results: Sequence[SendResult],
    scan: Scan,
    now: float,
    policy: RetryPolicy,
    rng: random.Random,
) -> Judged:
    """Each message's outcome after a batch through `connection`, and the breaker's results.

    A request that failed as a whole (one error for every message of the batch) is one
    failure of the connection, not one per message.
    """
    judged = Judged()
    errors_seen: set[int] = set()
    for result in results:
        seen = verdict(result.error)
        if seen == "unknown" or id(result.error) in errors_seen:
            continue
        if result.error is not None:
            errors_seen.add(id(result.error))
        error = result.error.message if result.error is not None else None
        judged.counted.append((seen == "ok", error))
    here = after_results(
        scan.health.get(connection.id, CLOSED), judged.counted, now, connection.failure_threshold
    )
    view = HealthView({**scan.health, connection.id: here}, scan.known)
    counts = {"accepted": 0, "not_taken": 0, "ambiguous": 0, "refused": 0}
    for row, result in zip(rows, results, strict=True):
        if result.error is None:  # taken: sent, whatever its plan (next_step's first case)
            judged.outcomes.append(sent_outcome(row, result, connection))
            counts["accepted"] += 1
            continue
        step = next_step(
            placed(row, connection.id),
            result.error,
            plan_of(row, connection.id),
            view,
            now,
            policy,
            rng,
        )
        judged.outcomes.append(outcome_of_step(row, result, step, connection, scan.known))
        counts[_result_name(result.error)] += 1
    failovers = sum(1 for o in judged.outcomes if o.failover_reason is not None)
    judged.results = counts
    judged.tally = Tally(
        attempts=len(rows),
        accepted=counts["accepted"],
        not_taken=counts["not_taken"],
        ambiguous=counts["ambiguous"],
        failovers=failovers,
    )
    return judged


def _result_name(error: ProviderError | None) -> str:
    """accepted; not_taken (certainly not taken); refused (a final refusal of the message or
    the account); ambiguous (the provider may have taken it)."""
    if error is None:
        return "accepted"
    if error.not_taken:
        return "not_taken"
    return "refused" if isinstance(error, PermanentError) else "ambiguous"


def log_sent(connection: Connection, outcomes: Sequence[repo.Outcome]) -> None:
    """One INFO line per batch sent, naming its messages: a line per SMS cost a tenth of the
    CPU spent on each message."""
    sent = [o.message_id for o in outcomes if o.status is Status.SENT]
    if sent and log.isEnabledFor(logging.INFO):
        log.info(
            "messages sent: %d",
            len(sent),
            extra={
                "sms_module": connection.module,
                "connection": connection.id,
                "message_ids": sent,
            },
        )


def log_outcome(connection: Connection, row: Any, outcome: repo.Outcome) -> None:
    """Each message sent at DEBUG (the batch's INFO line names them); any other at WARNING."""
    level = logging.DEBUG if outcome.status is Status.SENT else logging.WARNING
    if log.isEnabledFor(level):
        log.log(
            level,
            "message %s",
            outcome.status.value,
            extra={
                "message_id": row.id,
                "sms_module": connection.module,
                "connection": connection.id,
                "status": outcome.status.value,
                "code": outcome.code,
                "detail": outcome.detail,
                "provider_message_id": outcome.provider_message_id,
                "attempt": row.attempts,
                "failover_to": outcome.connection_id if outcome.failover_reason else None,
            },
        )
