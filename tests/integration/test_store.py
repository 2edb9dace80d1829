"""The outbox tables on SQLite and PostgreSQL: claiming, outcomes, reports."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.engine import Engine

from smsdesk.crypto import SecretBox
from smsdesk.domain.ids import new_id
from smsdesk.domain.message import Status
from smsdesk.domain.sms import StatusReport
from smsdesk.providers.registry import get_module
from smsdesk.store import lease_expiry
from smsdesk.store import messages as repo
from smsdesk.store.configuration import ConfigurationStore
from smsdesk.store.db import write_transaction
from smsdesk.store.reports import apply_reports
from smsdesk.store.tables import messages, unmatched_reports

NOW = 1_800_000_000.0


def make_row(
    priority: int = 2,
    *,
    module: str = "simulator",
    at: float = NOW,
    due: float | None = None,
    expires: float | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "module": module,
        "recipient": "+31612345678",
        "sender": "smsdesk",
        "body": "hello",
        "encoding": "gsm7",
        "segments": 1,
        "priority": priority,
        "status": "queued",
        "created_at": at,
        "updated_at": at,
        "next_attempt_at": due if due is not None else at,
        "expires_at": expires if expires is not None else at + 3600,
        "scheduled_at": None,
        "attempts": 0,
        "reference": None,
        "api_key_id": None,
        "is_test": False,
        "delivery_report": True,
    }


def write(engine: Engine, job: Any) -> Any:
    with write_transaction(engine) as conn, conn.begin():
        return job(conn)


def insert(engine: Engine, rows: list[dict[str, Any]]) -> None:
    write(engine, lambda c: repo.insert_messages(c, rows, "test"))


def claim(engine: Engine, limit: int = 100, owner: str = "w1", now: float = NOW) -> list[Any]:
    rows: list[Any] = write(
        engine,
        lambda c: repo.claim_due(
            c, module="simulator", owner=owner, limit=limit, now=now, lease_until=now + 60
        ),
    )
    return rows


def status_of(engine: Engine, message_id: str) -> str:
    with engine.connect() as conn:
        status: str = conn.execute(
            sa.select(messages.c.status).where(messages.c.id == message_id)
        ).scalar_one()
        return status


def test_claims_by_priority_then_age(engine: Engine) -> None:
    """Priority 1 goes before 3 even when submitted later; within a priority, oldest first."""
    low_old = make_row(3)
    normal = make_row(2)
    high_new = make_row(1)
    high_newer = make_row(1)
    insert(engine, [low_old, normal, high_new, high_newer])
    claimed = claim(engine, limit=3)
    assert [r.id for r in claimed] == [high_new["id"], high_newer["id"], normal["id"]]
    assert all(r.status == "sending" and r.lease_owner == "w1" for r in claimed)
    assert [r.id for r in claim(engine)] == [low_old["id"]]


def test_scheduled_and_retrying_messages_wait(engine: Engine) -> None:
    """A message whose next attempt lies in the future is not claimed until then."""
    later = make_row(due=NOW + 30)
    insert(engine, [later])
    assert claim(engine) == []
    assert [r.id for r in claim(engine, now=NOW + 31)] == [later["id"]]


def test_expired_lease_is_taken_up_again(engine: Engine) -> None:
    """A dispatcher that died holding messages loses them to the next one after the lease."""
    row = make_row()
    insert(engine, [row])
    claim(engine, owner="dead")
    assert write(engine, lambda c: lease_expiry.release_expired_leases(c, NOW + 30)) == 0
    assert write(engine, lambda c: lease_expiry.release_expired_leases(c, NOW + 61)) == 1
    again = claim(engine, owner="alive", now=NOW + 61)
    assert [r.id for r in again] == [row["id"]] and again[0].attempts == 2
    with engine.connect() as conn:
        details = [e.detail for e in repo.get_timeline(conn, row["id"])]
    assert "lease expired; taken up again" in details


def test_outcome_from_a_lost_lease_is_ignored(engine: Engine) -> None:
    """A slow dispatcher whose lease was taken over cannot overwrite the new owner's work."""
    row = make_row()
    insert(engine, [row])
    claim(engine, owner="slow")
    write(engine, lambda c: lease_expiry.release_expired_leases(c, NOW + 61))
    claim(engine, owner="fast", now=NOW + 61)
    stale = repo.Outcome(row["id"], Status.FAILED, "X", "late answer")
    assert write(engine, lambda c: repo.record_outcomes(c, "slow", [stale], NOW + 62)) == 0
    assert status_of(engine, row["id"]) == "sending"


def test_reports_are_idempotent_and_order_safe(engine: Engine) -> None:
    """delivered then a duplicate then a late 'sent': the message stays delivered."""
    row = make_row()
    insert(engine, [row])
    claim(engine)
    sent = repo.Outcome(row["id"], Status.SENT, "0", "ok", provider_message_id="P1")
    write(engine, lambda c: repo.record_outcomes(c, "w1", [sent], NOW))
    reports = [
        StatusReport("P1", Status.DELIVERED, "DELIVRD"),
        StatusReport("P1", Status.DELIVERED, "DELIVRD"),
        StatusReport("P1", Status.SENT, "ENROUTE"),
    ]
    tally = write(engine, lambda c: apply_reports(c, "simulator", reports, NOW + 1))
    assert (tally.applied, tally.duplicate, tally.stale) == (1, 1, 1)
    assert status_of(engine, row["id"]) == "delivered"
    with engine.connect() as conn:
        events = repo.get_timeline(conn, row["id"])
    assert [(e.status, e.applied) for e in events][-2:] == [("delivered", True), ("sent", False)]
    assert events[-1].code == "ENROUTE"


def test_report_before_send_result_is_matched_later(engine: Engine) -> None:
    """A report that overtakes the provider's answer is kept and applied once the id is known."""
    row = make_row()
    insert(engine, [row])
    claim(engine)
    early = [StatusReport("P9", Status.DELIVERED, "DELIVRD")]
    tally = write(engine, lambda c: apply_reports(c, "simulator", early, NOW))
    assert tally.unmatched == 1
    sent = repo.Outcome(row["id"], Status.SENT, "0", "ok", provider_message_id="P9")
    write(engine, lambda c: repo.record_outcomes(c, "w1", [sent], NOW + 1))
    assert status_of(engine, row["id"]) == "delivered"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(unmatched_reports)).scalar() == 0


def test_queued_messages_expire_with_a_reason(engine: Engine) -> None:
    """A message whose validity ends in the queue becomes expired and says why."""
    row = make_row(expires=NOW + 10)
    insert(engine, [row])
    assert write(engine, lambda c: repo.expire_overdue(c, NOW + 11)) == 1
    with engine.connect() as conn:
        stored = repo.get_message(conn, row["id"])
    assert stored is not None and stored.status == "expired" and "validity" in stored.error


def test_listing_pages_newest_first_with_filters(engine: Engine) -> None:
    """Pages follow a cursor without repeats; filters narrow by status and priority."""
    rows = [make_row(priority=1 + i % 3) for i in range(7)]
    insert(engine, rows)
    seen: list[str] = []
    cursor = None
    with engine.connect() as conn:
        while True:
            page = repo.list_messages(conn, repo.MessageFilter(), before_id=cursor, limit=3)
            seen += [r.id for r in page]
            if len(page) < 3:
                break
            cursor = page[-1].id
        ones = repo.list_messages(conn, repo.MessageFilter(priority=1), before_id=None, limit=50)
    assert seen == sorted((r["id"] for r in rows), reverse=True)
    assert {r.id for r in ones} == {r["id"] for r in rows if r["priority"] == 1}


@pytest.mark.postgres
def test_concurrent_claims_never_overlap_on_postgres(pg_engine: Engine) -> None:
    """Four dispatchers claiming at once on PostgreSQL each get distinct messages (SKIP LOCKED)."""
    engine = pg_engine
    rows = [make_row() for _ in range(400)]
    insert(engine, rows)
    claimed: dict[str, list[str]] = {}
    barrier = threading.Barrier(4)

    def worker(name: str) -> None:
        barrier.wait()
        mine: list[str] = []
        while batch := claim(engine, limit=7, owner=name):
            mine += [r.id for r in batch]
        claimed[name] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [i for ids in claimed.values() for i in ids]
    assert len(every) == len(set(every)) == 400
    assert sum(1 for ids in claimed.values() if ids) >= 2


def test_a_claim_never_takes_more_than_its_limit(engine: Engine) -> None:
    """Right after a large insert (no planner statistics yet) a claim of 25 takes 25."""
    insert(engine, [make_row() for _ in range(2000)])
    assert len(claim(engine, limit=25)) == 25
    with engine.connect() as conn:
        sending = conn.execute(
            sa.select(sa.func.count()).where(messages.c.status == Status.SENDING.value)
        ).scalar_one()
    assert sending == 25


def test_processes_starting_together_agree_on_the_callback_secret(engine: Engine) -> None:
    """Eight first starts at once make one callback secret, and none of them fails."""
    box = SecretBox(Fernet.generate_key())
    results: list[str] = []
    failures: list[BaseException] = []
    barrier = threading.Barrier(8)

    def first_start() -> None:
        store = ConfigurationStore(engine, box, lambda name: get_module(name).settings_model)
        barrier.wait()
        try:
            results.append(store.callback_secret())
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=first_start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(results) == 8 and len(set(results)) == 1


def test_migrations_build_exactly_the_declared_schema(engine: Engine) -> None:
    """Alembic sees nothing to add or change between the migrated database and tables.py."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from smsdesk.store.tables import metadata

    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
