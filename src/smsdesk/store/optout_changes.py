"""Opt-outs changed by a person (screen, API, command line), with their audit entry.

The number is personal data and the audit trail cannot be edited, so the entry names the number
only by its keyed hash (`hash_key.keyed_hash`): whoever holds the number and the installation's
key can find its entries; the trail alone does not reveal it, and erasing the customer leaves
nothing readable behind.
"""

from __future__ import annotations

from sqlalchemy.engine import Connection

from smsdesk.domain.audit import Actor
from smsdesk.events import EventSink
from smsdesk.store import optouts
from smsdesk.store.audit import AuditTrail
from smsdesk.store.hash_key import keyed_hash


def change_by_person(
    conn: Connection,
    trail: AuditTrail,
    actor: Actor,
    number: str,
    *,
    opted_out: bool,
    source: str,
    now: float,
    events: EventSink,
) -> bool:
    """Add (`opted_out`) or remove the number; True if that changed the list."""
    changed = optouts.set_opt_out_by_administrator(
        conn, number, opted_out=opted_out, source=source, now=now, events=events
    )
    if changed:
        trail.record(
            conn,
            actor,
            "optout.added" if opted_out else "optout.removed",
            target_kind="number",
            target_id=keyed_hash(trail.key, number),
            details={"source": source},
        )
    return bool(changed)
