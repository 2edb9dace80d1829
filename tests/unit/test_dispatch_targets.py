"""Which connections a dispatcher scan serves, and how the failover rules see them."""

from __future__ import annotations

import random
from types import SimpleNamespace

from smsdesk.domain.connections import Connection, Health
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.outbox.dispatcher import callback_url, connection_callback_url, status_url
from smsdesk.outbox.outcomes import Scan, judge
from smsdesk.outbox.retry import RetryPolicy
from smsdesk.outbox.targets import HealthView, by_id, owner_of, plan_of, targets
from smsdesk.providers.base import SendResult, TemporaryError

NOW = 1_800_000_000.0
DEFAULT = Connection("default", "default", "cm", is_default=True)
RESERVE = Connection("01RESERVE", "reserve", "linkmobility")
OFF = Connection("01OFF", "off", "cm", enabled=False)


def test_a_scan_serves_the_default_the_others_and_every_stand_in() -> None:
    """The default takes its module's messages without a connection; other modules' such
    messages go to their stand-ins; stored connections take only their own."""
    found = targets(SmsConfiguration(module="cm"), [DEFAULT, RESERVE, OFF])
    assert (found[0].connection.id, found[0].unassigned) == ("default", "cm")
    served = {t.connection.id: t.unassigned for t in found}
    assert served["01RESERVE"] is None and served["01OFF"] is None
    assert served["module:cm"] is None  # the default's module: the default takes those
    assert served["module:twilio"] == "twilio"


def test_before_any_connection_is_stored_the_selected_module_is_the_default() -> None:
    """A configuration without stored connections sends as before: the module selected."""
    found = targets(SmsConfiguration(module="simulator"), [])
    assert (found[0].connection.id, found[0].connection.module) == ("default", "simulator")


def test_disabled_and_unknown_connections_read_as_open() -> None:
    """The failover rules never pick a connection that is off or no longer exists."""
    known = by_id(targets(SmsConfiguration(module="cm"), [DEFAULT, RESERVE, OFF]))
    opened = Health("open", 5, 1.0, "down")
    view = HealthView({"01RESERVE": opened}, known)
    assert view["default"].state == "closed"
    assert view["01RESERVE"] == opened
    assert view["01OFF"].state == "open"
    assert view.get("01GONE") is not None and view["01GONE"].state == "open"


def test_reports_due_belong_to_the_connection_that_sent_while_it_has_that_module() -> None:
    """A connection that changed module since gives its earlier messages to the stand-in."""
    known = by_id(targets(SmsConfiguration(module="cm"), [DEFAULT, RESERVE]))
    assert owner_of("01RESERVE", "linkmobility", known, DEFAULT).id == "01RESERVE"
    assert owner_of("default", "smpp", known, DEFAULT).id == "module:smpp"
    assert owner_of(None, "cm", known, DEFAULT).id == "default"
    assert owner_of(None, "smpp", known, DEFAULT).id == "module:smpp"


def test_a_message_without_a_plan_has_just_its_connection() -> None:
    row = SimpleNamespace(route_plan=None, connection_id=None)
    assert plan_of(row, "default") == ["default"]
    row = SimpleNamespace(route_plan='["a", "b"]', connection_id="a")
    assert plan_of(row, "a") == ["a", "b"]


def test_only_the_default_keeps_its_modules_callback_url() -> None:
    """URLs already set at providers stay valid; other connections get their own."""
    base = "https://desk.example"
    assert status_url(base, DEFAULT, "s") == callback_url(base, "cm", "status", "s")
    assert status_url(base, RESERVE, "s") == connection_callback_url(
        base, "01RESERVE", "status", "s"
    )
    assert status_url(base, RESERVE, "s") == f"{base}/webhooks/connections/01RESERVE/status/s"


def test_a_request_that_failed_whole_counts_once_for_the_breaker() -> None:
    """A batch of three refused in one answer is one failure of the connection; each of the
    three still fails over on its own."""
    config = SmsConfiguration(module="cm")
    known = by_id(targets(config, [DEFAULT, RESERVE]))
    scan = Scan(config, known, {})
    rows = [
        SimpleNamespace(
            id=f"m{n}",
            connection_id="default",
            plan_index=0,
            attempts=1,
            expires_at=NOW + 3600,
            route_plan='["default", "01RESERVE"]',
        )
        for n in range(3)
    ]
    down = TemporaryError("connection refused", not_taken=True)
    results = [SendResult(row.id, error=down) for row in rows]
    judged = judge(DEFAULT, rows, results, scan, NOW, RetryPolicy(), random.Random(1))
    assert judged.counted == [(False, "connection refused")]
    assert [(o.connection_id, o.module, o.failover_reason) for o in judged.outcomes] == [
        ("01RESERVE", "linkmobility", "not_taken")
    ] * 3
    assert (judged.tally.attempts, judged.tally.not_taken, judged.tally.failovers) == (3, 3, 3)
