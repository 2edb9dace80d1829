"""A mailing's statistics, per-recipient rows, CSV export and deliveries over time, live from
the outbox and the same after its messages are purged, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.mailings import stats
from smsdesk.mailings.sender import MailingSender
from smsdesk.store.customers import insert_customers
from smsdesk.store.mailing_consents import set_consents
from smsdesk.store.mailing_stats import mirror_messages
from smsdesk.store.mailing_tables import mailing_recipients, mailing_replies
from smsdesk.store.optouts import add_opt_out
from smsdesk.store.tables import messages
from smsdesk.testing import FakeClock
from tests.conftest import database_url
from tests.support.harness import Harness, running_service

NOW = 1_781_000_000.0  # a Tuesday, 10:13 UTC
VALID = [f"+3162000{i:04d}" for i in range(7)]
OPTED_OUT = "+31620009999"
NO_CONSENT = "+31620008888"
OUTCOMES = {  # valid recipient -> (status, provider code, sent after s, settled after s)
    VALID[0]: ("delivered", "DELIVRD", 10, 70),
    VALID[1]: ("delivered", "DELIVRD", 10, 130),
    VALID[2]: ("undelivered", "UNDELIV", 10, 75),
    VALID[3]: ("failed", "E21", None, 20),
    VALID[4]: ("sent", None, 65, None),
    VALID[5]: ("sending", None, None, None),
}  # VALID[6] stays queued


@pytest.fixture
async def still(tmp_path: Path, engine: Engine) -> AsyncIterator[Harness]:
    """smsdesk on a fake clock without a dispatcher: queued messages stay queued."""
    clock = FakeClock(NOW)
    async with running_service(tmp_path, database_url(engine), dispatcher=False, clock=clock) as h:
        yield h


def add_customers(h: Harness, numbers: list[str], *, consent: bool) -> None:
    ids = [f"01STATCUST{n[-10:]:0>16}"[:26] for n in numbers]
    rows = [
        {
            "id": cid,
            "name": f"Customer {n[-4:]}",
            "language": "nl",
            "created_from_sms": False,
            "created_at": NOW,
            "updated_at": NOW,
        }
        for cid, n in zip(ids, numbers, strict=True)
    ]
    links = [{"number": n, "customer_id": cid} for cid, n in zip(ids, numbers, strict=True)]
    with h.service.engine.begin() as conn:
        insert_customers(conn, rows, links)
        set_consents(conn, ids, given=consent, source="test", now=NOW)


async def draft(h: Harness, numbers: list[str], **fields: Any) -> str:
    created = await h.post("/api/v1/mailings", {"name": "Notice", "text": "Hello", **fields})
    assert created.status_code == 201, created.text
    mailing_id: str = created.json()["id"]
    added = await h.post(f"/api/v1/mailings/{mailing_id}/recipients", {"numbers": numbers})
    assert added.status_code == 200, added.text
    return mailing_id


async def sent_mailing(h: Harness) -> str:
    """Seven valid recipients queued, then each SMS given its outcome; one invalid, one
    duplicate, one opted out, one without consent; two replies, one of them a STOP."""
    add_customers(h, [*VALID, OPTED_OUT], consent=True)
    add_customers(h, [NO_CONSENT], consent=False)
    with h.service.engine.begin() as conn:
        add_opt_out(conn, OPTED_OUT, keyword="STOP", source="sms", inbound_id=None, now=NOW)
    given = [*VALID, "=1+2", VALID[0], OPTED_OUT, NO_CONSENT]
    mailing_id = await draft(h, given)
    assert (await h.post(f"/api/v1/mailings/{mailing_id}/start")).status_code == 200
    MailingSender(h.service).step()
    r = mailing_recipients.c
    with h.service.engine.begin() as conn:
        ids = dict(
            conn.execute(
                sa.select(r.number, r.message_id).where(
                    r.mailing_id == mailing_id, r.message_id.is_not(None)
                )
            ).all()
        )
        assert set(ids) == set(VALID)
        for number, (status, code, sent, settled) in OUTCOMES.items():
            conn.execute(
                messages.update()
                .where(messages.c.id == ids[number])
                .values(
                    status=status,
                    status_code=code,
                    sent_at=None if sent is None else NOW + sent,
                    final_at=None if settled is None else NOW + settled,
                    updated_at=NOW + (settled or sent or 1),
                )
            )
        recipient = dict(conn.execute(sa.select(r.number, r.id)).all())
        conn.execute(
            mailing_replies.insert(),
            [
                {
                    "mailing_id": mailing_id,
                    "recipient_id": recipient[VALID[n]],
                    "inbound_id": f"IN{n}",
                    "opt_out": n == 1,
                    "received_at": NOW + 100,
                }
                for n in (0, 1)
            ],
        )
    return mailing_id


EXPECTED_STATUS = {
    "waiting": 0,
    "queued": 1,
    "sending": 1,
    "sent": 1,
    "delivered": 2,
    "undelivered": 1,
    "failed": 1,
    "expired": 0,
    "cancelled": 0,
}
EXPECTED_BLOCKED = {
    "invalid": 1,
    "duplicate": 1,
    "opted_out": 1,
    "no_consent": 1,
    "refused": 0,
}


def purge(h: Harness) -> None:
    """What retention does to the mailing's messages: mirror, then delete."""
    with h.service.engine.begin() as conn:
        ids = list(conn.execute(sa.select(messages.c.id)).scalars())
        mirror_messages(conn, ids)
        conn.execute(messages.delete())


async def test_statistics_count_each_status_block_reason_reply_and_opt_out(
    still: Harness,
) -> None:
    """Every status and block reason is counted, with the replies and the opt-out a reply
    caused; after the messages are purged the figures are the same."""
    h = still
    mailing_id = await sent_mailing(h)
    url = f"/api/v1/mailings/{mailing_id}/statistics"

    live = (await h.get(url)).json()

    assert live["status"] == EXPECTED_STATUS and live["blocked"] == EXPECTED_BLOCKED
    assert (live["recipients"], live["valid"]) == (11, 7)
    assert (live["replies"], live["opt_outs"]) == (2, 1)
    purge(h)
    assert (await h.get(url)).json() == live
    assert (await h.get("/api/v1/mailings/NOPE/statistics")).status_code == 404


async def test_recipients_show_status_code_and_times_and_filter(still: Harness) -> None:
    """Each row has its message's status, provider code and times; ?status= and ?check=
    choose rows; after the purge the mirrored status, code and time remain."""
    h = still
    mailing_id = await sent_mailing(h)
    url = f"/api/v1/mailings/{mailing_id}/recipients"

    rows = (await h.get(url, params={"status": "delivered"})).json()["recipients"]
    assert [r["number"] for r in rows] == VALID[:2]
    first = rows[0]
    assert (first["status"], first["status_code"]) == ("delivered", "DELIVRD")
    assert first["sent_at"] == "2026-06-09T10:13:30.000Z"
    assert first["delivered_at"] == "2026-06-09T10:14:30.000Z"
    invalid = (await h.get(url, params={"check": "invalid"})).json()["recipients"]
    assert [(r["given"], r["status"]) for r in invalid] == [("=1+2", None)]
    assert (await h.get(url, params={"status": "bogus"})).status_code == 422

    purge(h)
    after = (await h.get(url, params={"status": "undelivered"})).json()["recipients"]
    assert [(r["number"], r["status_code"], r["status_at"]) for r in after] == [
        (VALID[2], "UNDELIV", "2026-06-09T10:14:35.000Z")
    ]


async def test_every_recipient_is_exported_as_csv(still: Harness) -> None:
    """The CSV has a header and one row per recipient with its check, status and code; a
    value that would start a spreadsheet formula is quoted."""
    h = still
    mailing_id = await sent_mailing(h)

    response = await h.get(f"/api/v1/mailings/{mailing_id}/recipients.csv")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == list(stats.CSV_COLUMNS) and len(rows) == 11
    by_line = {int(r["line"]): r for r in rows}
    assert by_line[1]["status"] == "delivered" and by_line[1]["provider_code"] == "DELIVRD"
    assert by_line[8]["given"] == "'=1+2" and by_line[8]["check"] == "invalid"
    assert by_line[9]["check"] == "duplicate" and by_line[9]["given"] == VALID[0]


async def test_a_large_export_is_streamed_a_page_at_a_time(still: Harness) -> None:
    """2,500 recipients come as three pages of text, every row once."""
    h = still
    numbers = [f"+3163{i:07d}" for i in range(2500)]
    mailing_id = await draft(h, numbers, override_consent=True)

    chunks = list(stats.export_csv(h.service, mailing_id))

    assert len(chunks) == 3
    lines = "".join(chunks).splitlines()
    assert lines[0] == ",".join(stats.CSV_COLUMNS) and len(lines) == 2501
    assert lines[-1].startswith(f"2500,{numbers[-1]},{numbers[-1]},valid,")


async def test_deliveries_over_time_count_sends_and_reports_per_minute(
    still: Harness,
) -> None:
    """Sends counted in their send's minute, deliveries and failures in their report's, empty
    minutes included; the same after the purge for what the recipients keep."""
    h = still
    mailing_id = await sent_mailing(h)

    found = stats.delivery_over_time(h.service, mailing_id, buckets=10)

    start = NOW // 60 * 60  # 10:13
    assert found == [
        stats.DeliveryBucket(start, 3, 0, 1),  # 3 sent at +10 s; failed at +20 s
        stats.DeliveryBucket(start + 60, 1, 1, 1),  # sent +65, delivered +70, undelivered +75
        stats.DeliveryBucket(start + 120, 0, 1, 0),  # delivered +130
    ]
    answer = (await h.get(f"/api/v1/mailings/{mailing_id}/delivery")).json()
    assert answer["bucket_seconds"] == 60
    assert [b["delivered"] for b in answer["buckets"]] == [0, 1, 1]
    assert stats.bucket_width(NOW, NOW + 3 * 3600, 24) == 600


async def test_deliveries_over_time_of_a_mailing_not_sent_yet_are_empty(still: Harness) -> None:
    """Nothing sent yet: no buckets."""
    mailing_id = await draft(still, VALID[:1], override_consent=True)
    assert stats.delivery_over_time(still.service, mailing_id) == []
    assert (await still.get(f"/api/v1/mailings/{mailing_id}/delivery")).json()["buckets"] == []


async def test_a_drafts_recipients_are_removed_by_check_or_id(still: Harness) -> None:
    """?check=invalid removes the invalid rows, a body of ids those rows, no filter all of
    them; once the mailing is started removing is refused, in Dutch for a Dutch caller."""
    h = still
    mailing_id = await draft(h, [*VALID[:3], "nope", "12"], override_consent=True)
    url = f"/api/v1/mailings/{mailing_id}/recipients"

    invalid = await h.client.delete(url, params={"check": "invalid"}, headers=h.headers)
    assert invalid.status_code == 200, invalid.text
    assert invalid.json()["removed"] == 2 and invalid.json()["counts"]["total"] == 3
    first = (await h.get(url)).json()["recipients"][0]["id"]
    body = {"ids": [first, 999999]}
    by_id = await h.client.request("DELETE", url, json=body, headers=h.headers)
    assert by_id.json()["removed"] == 1
    assert [r["number"] for r in (await h.get(url)).json()["recipients"]] == VALID[1:3]

    assert (await h.post(f"/api/v1/mailings/{mailing_id}/start")).status_code == 200
    refused = await h.client.delete(url, headers={**h.headers, "Accept-Language": "nl"})
    assert refused.status_code == 422
    assert "alleen uit een concept" in refused.text
    assert len((await h.get(url)).json()["recipients"]) == 2
