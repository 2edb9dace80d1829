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
    unmatched reports, two years of audit entries, closed requests forever, at 03:00 UTC."""
    settings = SmsConfiguration().retention
    assert {kind: settings.days(kind) for kind in KINDS} == {
        "requests": 0,
        "outbound": 365,
        "inbound": 365,
        "timelines": 90,
        "webhook_deliveries": 30,
        "unmatched_reports": 30,
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
