"""Each valid recipient's estimate (segments, cost and currency, or the outbox's refusal),
stored once and summed in SQL, so a 100,000-recipient summary is a GROUP BY, not 100,000
renders.

Estimates hold for one *basis*: a fingerprint of everything they depend on (the mailing's text,
sender, connection, priority, validity and tag, and the SMS configuration with its routes),
made by `mailings.estimates`. The basis is kept per mailing in the `settings` table; writing
estimates of another basis first clears the mailing's old ones, so a summary never adds up
estimates made for different texts or configurations.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from smsdesk.domain.mailing_checks import Check
from smsdesk.store.mailing_tables import mailing_recipients as mr
from smsdesk.store.tables import customers, settings

_KEY = "mailing_estimates:"  # + the mailing's id: its basis
_UNESTIMATED = sa.and_(mr.c.segments.is_(None), mr.c.refusal.is_(None))


def _key(mailing_id: str) -> str:
    return _KEY + mailing_id


def stored_basis(conn: Connection, mailing_id: str) -> str | None:
    """The basis the mailing's stored estimates were made for."""
    found = conn.execute(
        sa.select(settings.c.value).where(settings.c.key == _key(mailing_id))
    ).scalar()
    return None if found is None else str(found)


def invalidate(conn: Connection, mailing_id: str) -> None:
    """Forget every estimate of the mailing (its text or settings changed)."""
    conn.execute(
        mr.update()
        .where(mr.c.mailing_id == mailing_id, ~_UNESTIMATED)
        .values(segments=None, cost=None, currency=None, refusal=None)
    )


def forget_basis(conn: Connection, mailing_id: str) -> None:
    """Drop the mailing's basis (the draft is deleted)."""
    conn.execute(settings.delete().where(settings.c.key == _key(mailing_id)))


def use_basis(conn: Connection, mailing_id: str, basis: str, now: float) -> bool:
    """Make `basis` the mailing's; when it was another, clear the old estimates first. True
    when they were cleared."""
    if stored_basis(conn, mailing_id) == basis:
        return False
    invalidate(conn, mailing_id)
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(settings).values(
        key=_key(mailing_id), value=basis, version=1, updated_at=now
    )
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[settings.c.key],
            set_={"value": insert.excluded.value, "updated_at": insert.excluded.updated_at},
        )
    )
    return True


def unestimated(
    conn: Connection, mailing_id: str, *, after: int = 0, upto: int | None = None, limit: int
) -> list[sa.Row[Any]]:
    """Valid recipients without an estimate, by id after `after` (and at most `upto`): id,
    number, customer_id, variables, customer_name."""
    query = (
        sa.select(
            mr.c.id,
            mr.c.number,
            mr.c.customer_id,
            mr.c.variables,
            customers.c.name.label("customer_name"),
        )
        .select_from(mr.outerjoin(customers, customers.c.id == mr.c.customer_id))
        .where(
            mr.c.mailing_id == mailing_id,
            mr.c.check_result == Check.VALID.value,
            mr.c.id > after,
            _UNESTIMATED,
        )
        .order_by(mr.c.id)
        .limit(limit)
    )
    if upto is not None:
        query = query.where(mr.c.id <= upto)
    return list(conn.execute(query))


def save_estimates(
    conn: Connection, mailing_id: str, basis: str, estimates: Sequence[dict[str, Any]], now: float
) -> None:
    """Store estimates made for `basis` (dicts of id, segments, cost, currency, refusal)."""
    use_basis(conn, mailing_id, basis, now)
    if estimates:
        conn.execute(
            mr.update()
            .where(mr.c.id == sa.bindparam("rid"), mr.c.mailing_id == mailing_id)
            .values(
                segments=sa.bindparam("seg"),
                cost=sa.bindparam("amount"),
                currency=sa.bindparam("cur"),
                refusal=sa.bindparam("why"),
            ),
            [
                {
                    "rid": e["id"],
                    "seg": e["segments"],
                    "amount": e["cost"],
                    "cur": e["currency"],
                    "why": e["refusal"],
                }
                for e in estimates
            ],
        )


def estimate_totals(conn: Connection, mailing_id: str) -> list[sa.Row[Any]]:
    """The valid recipients' estimates summed: one row per (refusal, currency, missing), with
    recipients, segments and cost. `missing` rows count the recipients not estimated yet; a
    row with neither refusal nor currency counts messages whose route has no price (an
    estimate's currency is stored only with its cost)."""
    missing = mr.c.segments.is_(None) & mr.c.refusal.is_(None)
    return list(
        conn.execute(
            sa.select(
                mr.c.refusal,
                mr.c.currency,
                missing.label("missing"),
                sa.func.count().label("recipients"),
                sa.func.coalesce(sa.func.sum(mr.c.segments), 0).label("segments"),
                sa.func.sum(mr.c.cost).label("cost"),
            )
            .where(mr.c.mailing_id == mailing_id, mr.c.check_result == Check.VALID.value)
            .group_by(mr.c.refusal, mr.c.currency, missing)
        )
    )
