"""Retention: each kind of data goes at its cut-off and nothing younger, on both databases."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.lifecycle.retention import DAY, LeaseHeld, next_run
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store import audit, db, jobs
from smsdesk.store.retention import id_before
from smsdesk.store.tables import (
    idempotency_keys,
    inbound_messages,
    login_failures,
    message_events,
    messages,
    request_messages,
    requests,
    unmatched_reports,
    webhook_deliveries,
)
from smsdesk.testing import FakeClock
from tests.conftest import database_url

NOW = 1_800_000_000.0  # a FakeClock's start: 2027-01-15 08:00 UTC
_serial = itertools.count(1)


def make_service(tmp_path: Path, engine: Engine, clock: FakeClock, name: str = "") -> Service:
    config = AppConfig(
        data_dir=tmp_path / f"data{name}", database_url=database_url(engine), worker_id=name or "a"
    )
    config.data_dir.mkdir(parents=True, exist_ok=True)
    return Service(config, clock=clock)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def service(tmp_path: Path, engine: Engine, clock: FakeClock) -> Iterator[Service]:
    svc = make_service(tmp_path, engine, clock)
    try:
        yield svc
    finally:
        svc.close()


def an_id(at: float) -> str:
    """A message id made at `at`, unique in the test."""
    return id_before(at)[:10] + f"{next(_serial):016d}"


def add_message(
    engine: Engine, days_old: float, status: str = "delivered", *, now: float = NOW, **extra: Any
) -> str:
    at = now - days_old * DAY
    mid = an_id(at)
    final = status in ("delivered", "undelivered", "failed", "expired", "cancelled")
    row = {
        "id": mid,
        "module": "simulator",
        "recipient": "+31612345678",
        "sender": "smsdesk",
        "body": "hello",
        "encoding": "GSM7",
        "segments": 1,
        "priority": 2,
        "status": status,
        "created_at": at,
        "updated_at": at,
        "next_attempt_at": at,
        "expires_at": at + 2 * DAY,
        "attempts": 1,
        "final_at": at if final else None,
        "sent_at": at if status != "queued" else None,
        **extra,
    }
    with engine.begin() as conn:
        conn.execute(messages.insert().values(row))
        conn.execute(
            message_events.insert().values(
                message_id=mid, at=at, status=status, applied=True, source="test"
            )
        )
    return mid


def add_inbound(engine: Engine, days_old: float, state: str = "deleted", **extra: Any) -> str:
    at = NOW - days_old * DAY
    iid = an_id(at)
    with engine.begin() as conn:
        conn.execute(
            inbound_messages.insert().values(
                id=iid,
                module="simulator",
                provider_message_id=iid,
                sender="+31612345678",
                recipient="smsdesk",
                body="hi",
                received_at=at,
                state=state,
                **extra,
            )
        )
    return iid


def add_request(engine: Engine, days_idle: float, status: str = "closed") -> str:
    at = NOW - days_idle * DAY
    rid = an_id(at)
    with engine.begin() as conn:
        conn.execute(
            requests.insert().values(
                id=rid,
                title="Question",
                status=status,
                category="SMS",
                priority="normal",
                language="en",
                customer_id="C1",
                session_key=rid,
                created_at=at,
                updated_at=at,
                last_activity_at=at,
            )
        )
        conn.execute(
            request_messages.insert().values(request_id=rid, direction="in", body="hi", at=at)
        )
    return rid


def add_delivery(engine: Engine, days_old: float, status: str) -> str:
    at = NOW - days_old * DAY
    did = an_id(at)
    with engine.begin() as conn:
        conn.execute(
            webhook_deliveries.insert().values(
                id=did,
                subscription_id="S1",
                event_type="message.status",
                event_id=did,
                payload="{}",
                status=status,
                attempts=1,
                next_attempt_at=at,
                created_at=at,
            )
        )
    return did


def ids(engine: Engine, table: sa.Table) -> set[Any]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(table.c.id)).scalars())


def configure(service: Service, **retention: int) -> None:
    from smsdesk.sms_configuration import validate_configuration

    service.settings.save(validate_configuration({"retention": retention}, service.settings.load()))


def test_each_kind_goes_at_its_cut_off_and_nothing_younger(service: Service) -> None:
    """Old final messages, processed inbound SMS, finished deliveries and unmatched reports go;
    the same a day younger than their cut-off stay."""
    engine = service.engine
    configure(service, requests_days=30)
    old_msg, young_msg = add_message(engine, 366), add_message(engine, 364)
    old_in, young_in = add_inbound(engine, 366), add_inbound(engine, 364)
    old_dead, young_done = add_delivery(engine, 31, "dead"), add_delivery(engine, 29, "delivered")
    old_req, young_req = add_request(engine, 31), add_request(engine, 29)
    with engine.begin() as conn:
        for days in (31, 29):
            conn.execute(
                unmatched_reports.insert().values(
                    module="simulator",
                    provider_message_id=f"p{days}",
                    status="delivered",
                    received_at=NOW - days * DAY,
                )
            )
    result = service.retention.run()
    assert result.purged["outbound"] == 1 and ids(engine, messages) == {young_msg}
    assert ids(engine, inbound_messages) == {young_in}
    assert ids(engine, webhook_deliveries) == {young_done}
    assert ids(engine, requests) == {young_req} and result.purged["requests"] == 1
    with engine.connect() as conn:
        left = conn.execute(sa.select(request_messages.c.request_id)).scalars().all()
        reports = conn.execute(sa.select(unmatched_reports.c.provider_message_id)).scalars()
        assert left == [young_req] and list(reports) == ["p29"]
        events = conn.execute(sa.select(message_events.c.message_id)).scalars().all()
    assert old_msg not in events and old_in and old_dead and old_req


def test_timelines_go_after_their_days_and_messages_keep_their_status(service: Service) -> None:
    """A finished message older than the timeline cut-off loses its history, not its status."""
    engine = service.engine
    old, young = add_message(engine, 91, "undelivered"), add_message(engine, 89)
    waiting = add_message(engine, 91, "sent", expires_at=NOW + DAY)
    result = service.retention.run()
    assert result.purged["timelines"] == 1
    with engine.connect() as conn:
        events = set(conn.execute(sa.select(message_events.c.message_id)).scalars())
        status = conn.execute(sa.select(messages.c.status).where(messages.c.id == old)).scalar()
    assert events == {young, waiting}
    assert status == "undelivered"


def test_messages_of_a_request_and_unfinished_messages_are_kept(service: Service) -> None:
    """A message of an existing request, a queued one, one still sending and one sent whose
    report may still come stay, however old; an old sent one past its validity goes."""
    engine = service.engine
    request_id = add_request(engine, 400, status="open")
    in_request = add_message(engine, 400, request_id=request_id)
    inbound_in_request = add_inbound(engine, 400, state="request", request_id=request_id)
    queued = add_message(engine, 400, "queued", expires_at=NOW + DAY)
    sending = add_message(engine, 400, "sending", expires_at=NOW + DAY)
    reportable = add_message(engine, 400, "sent", expires_at=NOW - 0.5 * DAY)
    long_over = add_message(engine, 400, "sent")
    pending_inbound = add_inbound(engine, 400, state="pending")
    orphan = add_message(engine, 400, request_id="GONE")
    service.retention.run()
    kept = ids(engine, messages)
    assert kept == {in_request, queued, sending, reportable}
    assert long_over not in kept and orphan not in kept
    assert ids(engine, inbound_messages) == {inbound_in_request, pending_inbound}


def test_a_purged_request_lets_its_messages_go(service: Service) -> None:
    """Once the closed request itself is purged, its old messages follow it."""
    engine = service.engine
    configure(service, requests_days=30)
    request_id = add_request(engine, 400)
    message = add_message(engine, 400, request_id=request_id)
    result = service.retention.run()
    assert result.purged["requests"] == 1 and message not in ids(engine, messages)


def test_pending_webhook_deliveries_are_kept(service: Service) -> None:
    """A delivery still being tried is never purged, however old."""
    engine = service.engine
    pending = add_delivery(engine, 100, "pending")
    add_delivery(engine, 100, "delivered")
    service.retention.run()
    assert ids(engine, webhook_deliveries) == {pending}


def test_zero_days_keeps_forever(service: Service) -> None:
    """0 days keeps a kind whatever its age."""
    engine = service.engine
    configure(service, outbound_days=0, inbound_days=0, timelines_days=0)
    message, inbound = add_message(engine, 3000), add_inbound(engine, 3000)
    result = service.retention.run()
    assert ids(engine, messages) == {message} and ids(engine, inbound_messages) == {inbound}
    assert result.cutoffs["outbound"] is None and result.purged["timelines"] == 0


def test_audit_chain_still_verifies_after_purging(service: Service, clock: FakeClock) -> None:
    """Old audit entries go through the chain's own purge: verify still passes, and the run
    leaves one retention.purged entry with its counts."""
    start = clock.now
    for n in range(5):
        clock.now = start - (800 - n) * DAY
        service.audit(service_actor(), "configuration.changed", details={"fields": [str(n)]})
    clock.now = start - 10 * DAY
    service.audit(service_actor(), "configuration.changed", details={"fields": ["recent"]})
    clock.now = start
    add_message(service.engine, 400)
    result = service.retention.run()
    assert result.purged["audit"] == 5
    with service.engine.connect() as conn:
        verification = audit.verify(conn, service.hash_key)
        assert verification.intact, verification.problems
        entries = audit.list_entries(conn, audit.AuditFilter(action="retention.purged"))
    assert len(entries) == 1 and '"outbound":1' in entries[0].details.replace(" ", "")


def service_actor() -> Any:
    from smsdesk.domain.audit import Actor

    return Actor.cli()


def test_housekeeping_removes_expired_rows(service: Service) -> None:
    """Old failed logins and Idempotency-Key answers past their week go; recent ones stay."""
    engine = service.engine
    with engine.begin() as conn:
        for age in (2 * DAY, 3600):
            conn.execute(
                login_failures.insert().values(address="1.2.3.4", username="a", at=NOW - age)
            )
        for key, age in (("old", 8 * DAY), ("new", DAY)):
            conn.execute(
                idempotency_keys.insert().values(
                    api_key_id="K",
                    key=key,
                    request_hash="h",
                    response="{}",
                    status_code=201,
                    created_at=NOW - age,
                )
            )
    result = service.retention.run()
    assert result.housekeeping["login_failures"] == 1
    assert result.housekeeping["idempotency_keys"] == 1
    with engine.connect() as conn:
        assert conn.execute(sa.select(idempotency_keys.c.key)).scalars().all() == ["new"]


def test_batches_are_small_and_the_result_is_recorded(service: Service) -> None:
    """A purge larger than one batch deletes everything in several; the run's counts are
    kept in cluster_jobs for the dashboard and the API."""
    service.retention.batch = 7
    made = {add_message(service.engine, 400 + n / 100) for n in range(30)}
    keep = add_message(service.engine, 10)
    result = service.retention.run()
    assert result.purged["outbound"] == 30 and ids(service.engine, messages) == {keep}
    assert made.isdisjoint(ids(service.engine, messages))
    state = service.retention.state()
    assert state.owner is None and state.last_result is not None
    assert state.last_result["purged"]["outbound"] == 30


def test_only_one_of_two_processes_runs_the_job(
    tmp_path: Path, engine: Engine, clock: FakeClock
) -> None:
    """Two processes claiming the lease at once: one wins; the other is told who holds it,
    and can take it once the lease has run out."""
    first = make_service(tmp_path, engine, clock, "one")
    second = make_service(tmp_path, engine, clock, "two")
    try:
        with engine.begin() as conn:
            assert jobs.claim(conn, "retention", "one", NOW, 300)
        with engine.begin() as conn:
            assert not jobs.claim(conn, "retention", "two", NOW, 300)
        with pytest.raises(LeaseHeld) as held:
            second.retention.run()
        assert held.value.owner == "one"
        clock.advance(301)
        assert second.retention.run().complete
        with engine.begin() as conn:
            assert not jobs.renew(conn, "retention", "one", clock.now, 300)
    finally:
        first.close()
        second.close()


def test_two_claimers_racing_never_both_win(engine: Engine) -> None:
    """Two processes' connections claiming the same job at the same moment: exactly one wins,
    every time."""
    for round_number in range(20):
        name = f"race{round_number}"
        barrier = threading.Barrier(2)

        def claim(owner: str, name: str = name, barrier: threading.Barrier = barrier) -> bool:
            barrier.wait()
            with db.write_transaction(engine) as conn, conn.begin():
                return jobs.claim(conn, name, owner, NOW, 300)

        with ThreadPoolExecutor(2) as pool:
            wins = list(pool.map(claim, ["one", "two"]))
        assert sorted(wins) == [False, True], round_number


def test_the_schedule_waits_for_the_configured_hour(service: Service, clock: FakeClock) -> None:
    """A fresh installation waits for the hour; after a run, the next is due a day later."""
    settings = service.settings.load().retention
    assert not service.retention.due(clock.now)  # 08:00, the purge hour is 03:00
    upcoming = next_run(settings, clock.now)
    assert upcoming == (NOW // DAY) * DAY + DAY + 3 * 3600
    clock.now = upcoming
    assert service.retention.due(clock.now)
    service.retention.run()
    clock.advance(3600)
    assert not service.retention.due(clock.now)
    clock.now = upcoming + DAY + 60
    assert service.retention.due(clock.now)


def test_preview_counts_what_a_run_deletes(service: Service) -> None:
    """The preview's counts are what the run then deletes, with the cut-off dates."""
    for days in (400, 380, 10):
        add_message(service.engine, days)
    preview = {plan.kind: (plan.cutoff, count) for plan, count in service.retention.preview()}
    assert preview["outbound"] == (NOW - 365 * DAY, 2)
    assert service.retention.run().purged["outbound"] == 2
