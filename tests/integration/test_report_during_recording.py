"""A delivery report that comes while another process records the send it reports on.

On PostgreSQL the API process (taking reports) and a worker (recording sends) write at the same
time. The report's transaction does not see the uncommitted send, so it keeps the report aside;
the send's transaction looks for kept-aside reports before that one is committed. Found by
the kill test (bench/kill_test.py): 9-23 of 200 messages stayed *sent* with their *delivered*
report kept aside, with no process killed at all.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.domain.message import Status
from smsdesk.domain.sms import StatusReport
from smsdesk.store import messages as repo
from smsdesk.store.reports import apply_reports
from smsdesk.store.tables import unmatched_reports
from tests.integration.test_store import NOW, claim, insert, make_row, status_of


@pytest.mark.postgres
@pytest.mark.xfail(
    strict=True,
    reason="the report and the send's recording miss each other under READ COMMITTED; "
    "remove this marker once store/reports.py and store/messages.py serialise them",
)
def test_a_report_committed_while_its_send_is_recorded_is_applied(pg_engine: Engine) -> None:
    """The worker has stored the provider's answer but not committed; the report comes and is
    committed first; then the worker commits. The message ends delivered, no report left aside.
    """
    row = make_row()
    insert(pg_engine, [row])
    claim(pg_engine, owner="w1")
    sent = repo.Outcome(row["id"], Status.SENT, "0", "accepted", provider_message_id=row["id"])
    report = StatusReport(row["id"], Status.DELIVERED, "1")
    with pg_engine.connect() as worker, pg_engine.connect() as api:
        worker.begin()
        repo.record_send_outcomes(worker, "w1", [sent], NOW + 1)
        with api.begin():
            apply_reports(api, "simulator", [report], NOW + 1)
        worker.commit()
    with pg_engine.connect() as conn:
        kept = conn.execute(sa.select(sa.func.count()).select_from(unmatched_reports)).scalar()
    assert (status_of(pg_engine, row["id"]), kept) == ("delivered", 0)
