"""The outbox export's header line is in the user's language (English keeps the column keys)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

from tests.support.harness import Harness
from tests.support.webui import create_user, log_in


async def test_a_dutch_user_gets_dutch_column_names(harness: Harness) -> None:
    """Bericht-ID, Aangemaakt, ... Berichttekst: one name per column, the rows unchanged."""
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()  # stays queued
    sent = await harness.post(
        "/api/v1/messages", {"to": "+31612345678", "text": "Hallo", "scheduled_at": later}
    )
    assert sent.status_code == 201, sent.text
    create_user(harness.service, "anna", "agent", language="nl")
    create_user(harness.service, "bob", "agent", language="en")
    async with harness.browser() as dutch, harness.browser() as english:
        await log_in(dutch, "anna")
        await log_in(english, "bob")
        nl = list(csv.reader(io.StringIO((await dutch.get("/outbox.csv")).text.lstrip("\ufeff"))))
        en = list(csv.reader(io.StringIO((await english.get("/outbox.csv")).text.lstrip("\ufeff"))))
    assert nl[0][:3] == ["Bericht-ID", "Aangemaakt", "Status"] and nl[0][-1] == "Berichttekst"
    assert en[0][:3] == ["id", "created_at", "status"] and len(en[0]) == len(nl[0])
    assert nl[1:] == en[1:] and nl[1][0] == sent.json()["id"]
