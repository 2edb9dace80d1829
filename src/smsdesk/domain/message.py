"""The message lifecycle: statuses, priorities and the transitions between them.

    queued ──► sending ──► sent ──► delivered
      ▲  │        │  │       │  └──► undelivered
      │  │        │  │       └─────► expired
      │  │        │  └─────────────► failed
      │  │        └────────────────► queued (retry), expired, delivered/undelivered (fast report)
      │  └──► cancelled, expired, failed
      └── resend (an operator's explicit action) from failed, expired, undelivered, cancelled

Final statuses never change by themselves: a late *sent* or *queued* report never replaces
*delivered*. Repeating the current status is not an error; it is a duplicate that changes nothing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from smsdesk.domain.errors import InvalidStatusTransition


class Status(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {Status.DELIVERED, Status.UNDELIVERED, Status.FAILED, Status.EXPIRED, Status.CANCELLED}
)

_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.QUEUED: frozenset({Status.SENDING, Status.CANCELLED, Status.EXPIRED, Status.FAILED}),
    Status.SENDING: frozenset(
        {
            Status.SENT,
            Status.QUEUED,
            Status.FAILED,
            Status.EXPIRED,
            Status.DELIVERED,
            Status.UNDELIVERED,
        }
    ),
    Status.SENT: frozenset({Status.DELIVERED, Status.UNDELIVERED, Status.EXPIRED}),
}

_RESENDABLE = frozenset({Status.FAILED, Status.EXPIRED, Status.UNDELIVERED, Status.CANCELLED})


class Priority(enum.IntEnum):
    """SMS priority as in the original product: 1 is sent first, 3 last."""

    HIGH = 1
    NORMAL = 2
    LOW = 3


class TransitionOutcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Transition:
    """The result of offering a new status to a message."""

    outcome: TransitionOutcome
    status: Status

    @property
    def applied(self) -> bool:
        return self.outcome is TransitionOutcome.APPLIED


def can_transition(current: Status, new: Status) -> bool:
    """Whether the lifecycle allows going from `current` to `new` on its own."""
    return new in _ALLOWED.get(current, frozenset())


def transition(current: Status, new: Status) -> Transition:
    """Decide what a reported status does to a message; never raises for provider reports.

    Reports arrive out of order and twice, so an illegal move is *stale* (ignored but kept in
    the timeline) rather than an error.
    """
    if new is current:
        return Transition(TransitionOutcome.DUPLICATE, current)
    if can_transition(current, new):
        return Transition(TransitionOutcome.APPLIED, new)
    return Transition(TransitionOutcome.STALE, current)


def require_transition(current: Status, new: Status) -> Status:
    """Check an operator's or the dispatcher's move, raising when the lifecycle forbids it."""
    if can_transition(current, new):
        return new
    raise InvalidStatusTransition(f"A message that is {current.value} cannot become {new.value}.")


def check_resend(current: Status) -> Status:
    """An operator may queue again a message that ended without reaching the phone."""
    if current in _RESENDABLE:
        return Status.QUEUED
    raise InvalidStatusTransition(
        f"Only failed, expired, undelivered or cancelled messages can be resent; "
        f"this one is {current.value}."
    )


def check_cancel(current: Status) -> Status:
    """Only a message still waiting in the outbox can be cancelled."""
    if current is Status.QUEUED:
        return Status.CANCELLED
    raise InvalidStatusTransition(
        f"Only queued messages can be cancelled; this one is {current.value}."
    )
