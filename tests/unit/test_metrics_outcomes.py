"""`smsdesk_messages_total` counts every message of a batch, grouped by module and status."""

from __future__ import annotations

from smsdesk import metrics
from smsdesk.domain.message import Status
from smsdesk.store.messages import Outcome, Recorded
from smsdesk.store.reports import ReportTally


def counted(module: str, status: str) -> float:
    """The series' value as /metrics shows it."""
    for family in metrics.OUTCOMES.collect():
        for sample in family.samples:
            if sample.name == "smsdesk_messages_total" and sample.labels == {
                "module": module,
                "status": status,
            }:
                return sample.value
    return 0.0


def test_a_recorded_batch_counts_each_message_under_its_status() -> None:
    """Three sent and one failed of module `cm`, and two reports of `twilio` that had waited
    for their sends: each lands in its own series, once."""
    before = {
        key: counted(*key) for key in (("cm", "sent"), ("cm", "failed"), ("twilio", "delivered"))
    }
    outcomes = tuple(Outcome(f"m{i}", Status.SENT) for i in range(3))
    early = ReportTally(applied=2, statuses=("delivered", "delivered"))
    metrics.count_recorded(
        "cm", Recorded((*outcomes, Outcome("m9", Status.FAILED)), (("twilio", early),))
    )
    assert counted("cm", "sent") - before["cm", "sent"] == 3
    assert counted("cm", "failed") - before["cm", "failed"] == 1
    assert counted("twilio", "delivered") - before["twilio", "delivered"] == 2


def test_a_batch_of_reports_counts_each_status_it_applied() -> None:
    before = {s: counted("kannel", s) for s in ("delivered", "undelivered")}
    statuses = ("delivered", "undelivered", "delivered", "delivered")
    metrics.count_reports("kannel", ReportTally(applied=4, statuses=statuses))
    assert counted("kannel", "delivered") - before["delivered"] == 3
    assert counted("kannel", "undelivered") - before["undelivered"] == 1
