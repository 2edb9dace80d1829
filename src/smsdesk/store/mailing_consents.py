"""Customers' consent to mailings: given or withdrawn, with when and where it came from.

One row per customer that ever said; no row means no consent. A STOP reply withdraws it (the
inbound pipeline calls `withdraw_for_number` where it records the opt-out), so a customer who
texts START again is back on the SMS list but still needs to consent to mailings anew.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from smsdesk.store.mailing_tables import mailing_consents as mc
from smsdesk.store.tables import customer_numbers

GIVEN = "given"
WITHDRAWN = "withdrawn"
_CHUNK = 500


def _upsert(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    dialect: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(mc)
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[mc.c.customer_id],
            set_={
                "state": insert.excluded.state,
                "source": insert.excluded.source,
                "changed_at": insert.excluded.changed_at,
            },
        ),
        rows,
    )


def set_consents(
    conn: Connection, customer_ids: Iterable[str], *, given: bool, source: str, now: float
) -> None:
    """Record that these customers gave (or withdrew) consent to mailings."""
    state = GIVEN if given else WITHDRAWN
    rows = [
        {"customer_id": cid, "state": state, "source": source, "changed_at": now}
        for cid in dict.fromkeys(customer_ids)
    ]
    for start in range(0, len(rows), _CHUNK):
        _upsert(conn, rows[start : start + _CHUNK])


def consent_of(conn: Connection, customer_id: str) -> sa.Row[Any] | None:
    """The customer's consent row (state, source, changed_at), or None if never given."""
    return conn.execute(sa.select(mc).where(mc.c.customer_id == customer_id)).first()


def consents_of(conn: Connection, customer_ids: Iterable[str]) -> dict[str, bool]:
    """customer id -> whether consent is given, for those of `customer_ids` that have a row."""
    wanted = sorted(set(customer_ids))
    found: dict[str, bool] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(
            sa.select(mc.c.customer_id, mc.c.state).where(
                mc.c.customer_id.in_(wanted[start : start + _CHUNK])
            )
        )
        found.update({cid: state == GIVEN for cid, state in rows})
    return found


def withdraw_for_number(conn: Connection, number: str, *, source: str, now: float) -> bool:
    """Withdraw the consent of the customer `number` belongs to (a STOP reply); True if it
    had given consent. A customer who never consented gets no row: no row is no consent."""
    owner = sa.select(customer_numbers.c.customer_id).where(customer_numbers.c.number == number)
    changed = conn.execute(
        mc.update()
        .where(mc.c.customer_id.in_(owner.scalar_subquery()), mc.c.state == GIVEN)
        .values(state=WITHDRAWN, source=source, changed_at=now)
    ).rowcount
    return bool(changed)
