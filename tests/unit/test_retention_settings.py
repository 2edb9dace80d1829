"""The retention section of the SMS configuration and the nightly schedule, without a database."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from smsdesk.domain.retention_settings import KINDS, RetentionSettings
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.lifecycle.retention import DAY, last_slot, next_run, plan

MIDNIGHT = 1_800_000_000.0 // DAY * DAY


def test_defaults_are_the_documented_days() -> None:
    """A year of messages and inbound SMS, 90 days of timelines, 30 of deliveries and
    unmatched reports, a year of finished mailings, two years of audit entries, closed
    requests forever, at 03:00 UTC."""
    settings = SmsConfiguration().retention
    assert {kind: settings.days(kind) for kind in KINDS} == {
        "requests": 0,
        "outbound": 365,
        "inbound": 365,
        "timelines": 90,
        "webhook_deliveries": 30,
        "unmatched_reports": 30,
        "mailings": 365,
        "audit": 730,
    }
    assert settings.hour == 3


@pytest.mark.parametrize("value", [True, False, -1, 1.5, "soon", 36_501])
def test_days_must_be_a_whole_number_from_zero(value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        RetentionSettings.model_validate({"audit_days": value})
    assert refused.value.errors()[0]["loc"] == ("audit_days",)


def test_text_numbers_from_forms_and_files_are_read() -> None:
    assert RetentionSettings.model_validate({"outbound_days": "30", "hour": "23"}).hour == 23


def test_zero_days_has_no_cut_off() -> None:
    """0 keeps a kind forever: it gets no cut-off at all."""
    cutoffs = {p.kind: p.cutoff for p in plan(RetentionSettings(inbound_days=0), MIDNIGHT)}
    assert cutoffs["inbound"] is None and cutoffs["requests"] is None
    assert cutoffs["outbound"] == MIDNIGHT - 365 * DAY


def test_next_run_is_the_coming_purge_hour() -> None:
    settings = RetentionSettings(hour=3)
    assert next_run(settings, MIDNIGHT + 3600) == MIDNIGHT + 3 * 3600
    assert next_run(settings, MIDNIGHT + 3 * 3600) == MIDNIGHT + DAY + 3 * 3600
    assert last_slot(settings, MIDNIGHT + 3600) == MIDNIGHT - DAY + 3 * 3600


def test_a_purge_batch_shrinks_at_once_when_it_held_the_database_too_long() -> None:
    from smsdesk.lifecycle.retention import SMALLEST_BATCH, next_batch_size

    assert next_batch_size(400, busy=0.016, hold=0.004, largest=500) == 100
    assert next_batch_size(400, busy=10.0, hold=0.004, largest=500) == SMALLEST_BATCH


def test_a_purge_batch_grows_by_half_when_it_was_quick_up_to_the_largest() -> None:
    from smsdesk.lifecycle.retention import next_batch_size

    assert next_batch_size(100, busy=0.001, hold=0.004, largest=500) == 150
    assert next_batch_size(400, busy=0.001, hold=0.004, largest=500) == 500
    assert next_batch_size(1, busy=0.0, hold=0.004, largest=500) == 2
    assert next_batch_size(100, busy=0.003, hold=0.004, largest=500) == 100
