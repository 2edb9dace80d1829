"""Sent messages whose delivery report never came: taking those due for a question.

The reconciler asks providers about such messages. Taking them is one transaction that skips
rows locked by another process and pushes each taken message's next question back (in
`next_attempt_at`, unused once a message is sent), so several processes never ask about the
same message at once and a message is not asked about on every run. When the next question
is due is the caller's policy, passed in as `next_ask`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, bindparam

from smsdesk.domain.message import Status
from smsdesk.store.tables import messages as m


@dataclass(frozen=True, slots=True)
class Unreported:
    """A sent message still waiting for its final status."""

    message_id: str
    provider_message_id: str
    sent_at: float


def take_unreported(
    conn: Connection,
    *,
    module: str,
    sent_before: float,
    sent_after: float,
    now: float,
    limit: int,
    next_ask: Callable[[float], float],
    connection_id: str | None = None,
    unassigned: bool = False,
) -> list[Unreported]:
    """Take up to `limit` sent messages due for a question; push each one's next back.

    Taken are messages of `module` sent in (`sent_after`, `sent_before`], asked for a delivery
    report and due at `now`; `next_ask(sent_at)` says when each may be asked about again.
    With `connection_id`, only those sent through that connection (and, if `unassigned`,
    those of the module sent before connections existed).
    """
    whose: Any = m.c.module == module
    if connection_id is not None:
        mine: Any = m.c.connection_id == connection_id
        if unassigned:
            mine = sa.or_(mine, m.c.connection_id.is_(None))
        whose = sa.and_(whose, mine)
    rows = conn.execute(
        sa.select(m.c.id, m.c.provider_message_id, m.c.sent_at)
        .where(
            m.c.status == Status.SENT.value,
            whose,
            m.c.delivery_report.is_(sa.true()),
            m.c.provider_message_id.is_not(None),
            m.c.sent_at <= sent_before,
            m.c.sent_at > sent_after,
            m.c.next_attempt_at <= now,
        )
        .order_by(m.c.next_attempt_at, m.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not rows:
        return []
    conn.execute(
        m.update()
        .where(m.c.id == bindparam("mid"), m.c.status == Status.SENT.value)
        .values(next_attempt_at=bindparam("nat")),
        [{"mid": r.id, "nat": next_ask(r.sent_at)} for r in rows],
    )
    return [Unreported(r.id, r.provider_message_id, r.sent_at) for r in rows]
