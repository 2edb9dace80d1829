"""The audit trail: an append-only table whose rows are chained by a keyed hash.

Each row's hash covers its own fields and the previous row's hash, keyed with the
installation's hash key (`hash_key.py`), so a row that is edited, removed or inserted breaks
the chain where it happened, and someone holding only the database cannot forge a new chain.
The anchor row holds the last link (so removing the newest rows shows too) and where
retention cut the chain's start (so purging old rows does not).

Entries are appended in the transaction of the change they describe: both or neither. On
PostgreSQL the anchor row is locked for the append, so writers form one chain in commit order.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from smsdesk.domain.audit import Actor
from smsdesk.store.tables import audit_anchor, audit_log

ANCHOR_ID = 1


def _canonical(values: Mapping[str, Any]) -> str:
    return json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _link_hash(key: bytes, entry: Mapping[str, Any], prev_hash: str) -> str:
    fields = {
        "id": entry["id"],
        "at": repr(float(entry["at"])),
        "actor_kind": entry["actor_kind"],
        "actor_id": entry["actor_id"],
        "actor_name": entry["actor_name"],
        "address": entry["address"],
        "action": entry["action"],
        "target_kind": entry["target_kind"],
        "target_id": entry["target_id"],
        "details": entry["details"],
        "prev_hash": prev_hash,
    }
    return hmac.new(key, _canonical(fields).encode(), hashlib.sha256).hexdigest()


def _lock_anchor(conn: Connection) -> Row[Any]:
    query = sa.select(audit_anchor).where(audit_anchor.c.id == ANCHOR_ID)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:  # a database restored without it: start a fresh anchor
        conn.execute(
            audit_anchor.insert().values(
                id=ANCHOR_ID, last_id=0, last_hash="", purged_through_id=0, purged_through_hash=""
            )
        )
        row = conn.execute(query).first()
        assert row is not None
    return row


def append(
    conn: Connection,
    key: bytes,
    actor: Actor,
    action: str,
    at: float,
    *,
    target_kind: str | None = None,
    target_id: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> int:
    """Add one entry in the caller's transaction; its id.

    Call it after the transaction's other writes: the anchor's lock is then always the last
    lock taken, so two transactions cannot wait on each other (PostgreSQL), and it is held only
    until the commit.
    """
    anchor = _lock_anchor(conn)
    entry: dict[str, Any] = {
        "at": float(at),
        "actor_kind": actor.kind,
        "actor_id": actor.id,
        "actor_name": actor.name[:100],
        "address": actor.address[:64] if actor.address else None,
        "action": action,
        "target_kind": target_kind,
        "target_id": None if target_id is None else str(target_id)[:64],
        "details": _canonical(details or {}),
        "prev_hash": anchor.last_hash,
        "hash": "",
    }
    inserted = conn.execute(audit_log.insert().values(**entry)).inserted_primary_key
    assert inserted is not None
    entry_id = int(inserted[0])
    entry["id"] = entry_id
    digest = _link_hash(key, entry, anchor.last_hash)
    conn.execute(audit_log.update().where(audit_log.c.id == entry["id"]).values(hash=digest))
    conn.execute(
        audit_anchor.update()
        .where(audit_anchor.c.id == ANCHOR_ID)
        .values(last_id=entry_id, last_hash=digest)
    )
    return entry_id


class AuditTrail:
    """Appends entries for a store: the installation's key is fetched once, when first needed."""

    def __init__(self, key: Callable[[], bytes], clock: Callable[[], float]) -> None:
        self._key = key
        self.clock = clock

    @property
    def key(self) -> bytes:
        return self._key()

    def record(
        self,
        conn: Connection,
        actor: Actor,
        action: str,
        *,
        target_kind: str | None = None,
        target_id: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """One entry in `conn`'s transaction (which must be a write transaction)."""
        return append(
            conn,
            self.key,
            actor,
            action,
            self.clock(),
            target_kind=target_kind,
            target_id=target_id,
            details=details,
        )


@dataclass(slots=True)
class Verification:
    """What `verify` found: rows checked and each break in the chain, in words."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(conn: Connection, key: bytes, batch: int = 5000) -> Verification:
    """Walk the chain from where retention cut it to the anchor's last link.

    Entries appended while the walk runs are left for the next walk: only rows up to the
    anchor's last id as read at the start are checked (appends hold the anchor's lock, so every
    row up to that id was committed before the anchor said so).
    """
    result = Verification()
    anchor = conn.execute(sa.select(audit_anchor).where(audit_anchor.c.id == ANCHOR_ID)).first()
    if anchor is None:
        result.problems.append("The audit anchor row is missing.")
        return result
    expected_prev = anchor.purged_through_hash
    last_id = anchor.purged_through_id
    previous_id: int | None = None
    while True:
        rows = conn.execute(
            sa.select(audit_log)
            .where(audit_log.c.id > last_id, audit_log.c.id <= anchor.last_id)
            .order_by(audit_log.c.id)
            .limit(batch)
        ).all()
        for row in rows:
            entry = dict(row._mapping)
            result.checked += 1
            if row.prev_hash != expected_prev:
                after = f"entry {previous_id}" if previous_id else "the start of the trail"
                result.problems.append(
                    f"Entry {row.id} does not follow {after}: an entry before it was removed "
                    "or altered."
                )
            if not hmac.compare_digest(_link_hash(key, entry, row.prev_hash), row.hash):
                result.problems.append(f"Entry {row.id} was altered after it was written.")
            expected_prev = row.hash
            previous_id = row.id
            last_id = row.id
        if len(rows) < batch:
            break
    if anchor.last_id > anchor.purged_through_id and previous_id != anchor.last_id:
        result.problems.append(
            f"The trail ends at entry {previous_id or 'none'} but its last entry was "
            f"{anchor.last_id}: newer entries were removed."
        )
    elif previous_id is not None and expected_prev != anchor.last_hash:
        result.problems.append(f"The last entry ({previous_id}) is not the one last written.")
    _check_tail(conn, result)
    return result


def _check_tail(conn: Connection, result: Verification) -> None:
    """Rows after the last link written: added behind smsdesk's back. (The anchor is read after
    the rows, and an append moves it in the transaction that adds the row.)"""
    newest = conn.execute(sa.select(sa.func.max(audit_log.c.id))).scalar()
    last_id = conn.execute(
        sa.select(audit_anchor.c.last_id).where(audit_anchor.c.id == ANCHOR_ID)
    ).scalar()
    if newest is not None and last_id is not None and newest > last_id:
        result.problems.append(
            f"Entry {newest} comes after the last entry written ({last_id}): it was added "
            "outside smsdesk."
        )


def purge_before(conn: Connection, cutoff: float, limit: int) -> int:
    """Remove up to `limit` of the oldest entries written before `cutoff`, moving the cut."""
    anchor = _lock_anchor(conn)
    rows = conn.execute(
        sa.select(audit_log.c.id, audit_log.c.hash, audit_log.c.at)
        .where(audit_log.c.id > anchor.purged_through_id)
        .order_by(audit_log.c.id)
        .limit(limit)
    ).all()
    doomed = _leading(list(rows), cutoff)
    if not doomed:
        return 0
    conn.execute(audit_log.delete().where(audit_log.c.id <= doomed[-1].id))
    conn.execute(
        audit_anchor.update()
        .where(audit_anchor.c.id == ANCHOR_ID)
        .values(purged_through_id=doomed[-1].id, purged_through_hash=doomed[-1].hash)
    )
    return len(doomed)


def _leading(rows: list[Any], cutoff: float) -> list[Any]:
    """The oldest rows before the cutoff, stopping at the first newer one (the chain is cut
    only at its start)."""
    out = []
    for row in rows:
        if row.at >= cutoff:
            break
        out.append(row)
    return out


@dataclass(frozen=True, slots=True)
class AuditFilter:
    action: str | None = None  # exact, or a prefix ending in '.' (e.g. 'user.')
    actor: str | None = None  # actor name
    actor_kind: str | None = None
    target_id: str | None = None
    since: float | None = None
    until: float | None = None


def list_entries(
    conn: Connection, where: AuditFilter, *, before_id: int | None = None, limit: int = 100
) -> list[Row[Any]]:
    """Newest first; page with `before_id` (the last id of the previous page)."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if where.action:
        if where.action.endswith("."):
            query = query.where(audit_log.c.action.startswith(where.action, autoescape=True))
        else:
            query = query.where(audit_log.c.action == where.action)
    if where.actor:
        query = query.where(audit_log.c.actor_name == where.actor)
    if where.actor_kind:
        query = query.where(audit_log.c.actor_kind == where.actor_kind)
    if where.target_id:
        query = query.where(audit_log.c.target_id == where.target_id)
    if where.since is not None:
        query = query.where(audit_log.c.at >= where.since)
    if where.until is not None:
        query = query.where(audit_log.c.at < where.until)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    return list(conn.execute(query).all())


def count_before(conn: Connection, cutoff: float) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count()).select_from(audit_log).where(audit_log.c.at < cutoff)
        ).scalar_one()
    )
