"""A delivery report that comes while another process records the send it reports on.

On PostgreSQL the API process (taking reports) and a worker (recording sends) write at the same
time. The report's transaction does not see the uncommitted send, so it keeps the report aside;
the send's transaction looks for kept-aside reports before that one is committed. Found by
the kill test (bench/kill_test.py): 9-23 of 200 messages stayed *sent* with their *delivered*
report kept aside, with no process killed at all. Both now take an advisory lock per provider
id (`store/reports.py:lock_provider_ids`), so the second waits for the first.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.domain.message import Status
from smsdesk.domain.sms import StatusReport
from smsdesk.store import messages as repo
from smsdesk.store.reports import ReportTally, apply_reports
from smsdesk.store.tables import unmatched_reports
from tests.integration.test_store import NOW, claim, insert, make_row, status_of


@pytest.mark.postgres
def test_a_report_that_comes_while_its_send_is_recorded_is_applied(pg_engine: Engine) -> None:
    """The worker has stored the provider's answer but not committed; the report comes then.
    It waits for the worker's commit and is applied: the message ends delivered, no report
    left aside."""
    row = make_row()
    insert(pg_engine, [row])
    claim(pg_engine, owner="w1")
    sent = repo.Outcome(row["id"], Status.SENT, "0", "accepted", provider_message_id=row["id"])
    report = StatusReport(row["id"], Status.DELIVERED, "1")
    with pg_engine.connect() as worker:
        worker.begin()
        repo.record_send_outcomes(worker, "w1", [sent], NOW + 1)
        with ThreadPoolExecutor(1) as pool:
            applied = pool.submit(apply_in_own_transaction, pg_engine, report)
            wait_until_waiting_for_a_lock(pg_engine)
            assert not applied.done()
            worker.commit()
            tally = applied.result(timeout=30)
    assert (tally.applied, tally.unmatched) == (1, 0)
    assert (status_of(pg_engine, row["id"]), kept_aside(pg_engine)) == ("delivered", 0)


@pytest.mark.postgres
def test_a_report_committed_just_before_its_send_is_recorded_is_applied(
    pg_engine: Engine,
) -> None:
    """The report's transaction is first: the recording waits for it and finds it kept."""
    row = make_row()
    insert(pg_engine, [row])
    claim(pg_engine, owner="w1")
    sent = repo.Outcome(row["id"], Status.SENT, "0", "accepted", provider_message_id=row["id"])
    report = StatusReport(row["id"], Status.DELIVERED, "1")
    with pg_engine.connect() as api:
        api.begin()
        apply_reports(api, "simulator", [report], NOW + 1)
        with ThreadPoolExecutor(1) as pool:
            recorded = pool.submit(record_in_own_transaction, pg_engine, sent)
            wait_until_waiting_for_a_lock(pg_engine)
            api.commit()
            recorded.result(timeout=30)
    assert (status_of(pg_engine, row["id"]), kept_aside(pg_engine)) == ("delivered", 0)


def apply_in_own_transaction(engine: Engine, report: StatusReport) -> ReportTally:
    with engine.connect() as conn, conn.begin():
        return apply_reports(conn, "simulator", [report], NOW + 1)


def record_in_own_transaction(engine: Engine, outcome: repo.Outcome) -> None:
    with engine.connect() as conn, conn.begin():
        repo.record_send_outcomes(conn, "w1", [outcome], NOW + 1)


def wait_until_waiting_for_a_lock(engine: Engine, timeout: float = 10.0) -> None:
    """Until another session of the test waits for a lock (pg_locks shows it not granted)."""
    deadline = time.monotonic() + timeout
    with engine.connect() as conn:
        while not conn.execute(sa.text("SELECT count(*) FROM pg_locks WHERE NOT granted")).scalar():
            assert time.monotonic() < deadline, "the second transaction never waited"
            conn.rollback()
            time.sleep(0.005)


def kept_aside(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(sa.select(sa.func.count()).select_from(unmatched_reports)).scalar_one()
        )
