"""A mailing recipient keeps its message's last status, provider code and status time, so the
mailing's statistics survive the purge of old messages, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.domain.ids import new_id
from smsdesk.store.mailing_stats import mirror_messages
from smsdesk.store.mailing_tables import mailing_recipients, mailings
from smsdesk.store.retention import id_before, purge_outbound
from smsdesk.store.tables import messages

NOW = 1_800_000_000.0


def message(status: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": new_id(),
        "module": "simulator",
        "recipient": "+31612345678",
        "sender": "smsdesk",
        "body": "hello",
        "encoding": "gsm7",
        "segments": 1,
        "priority": 3,
        "status": status,
        "created_at": NOW,
        "updated_at": NOW + 1,
        "next_attempt_at": NOW,
        "expires_at": NOW + 3600,
        "attempts": 1,
        "status_code": None,
        "sent_at": None,
        "final_at": None,
        **extra,
    }


def add_mailing(conn: sa.Connection, message_ids: list[str | None]) -> str:
    mailing_id = new_id()
    conn.execute(
        mailings.insert().values(
            id=mailing_id,
            name="m",
            status="sending",
            text="hello",
            priority=3,
            tags="[]",
            replies="request",
            override_consent=False,
            created_at=NOW,
            updated_at=NOW,
        )
    )
    conn.execute(
        mailing_recipients.insert(),
        [
            {
                "mailing_id": mailing_id,
                "line": i + 1,
                "given": f"+3161234{i:04d}",
                "number": f"+3161234{i:04d}",
                "check_result": "valid",
                "message_id": mid,
                "status": "queued" if mid else None,
            }
            for i, mid in enumerate(message_ids)
        ],
    )
    return mailing_id


def mirrored(conn: sa.Connection, mailing_id: str) -> list[tuple[Any, ...]]:
    r = mailing_recipients.c
    return [
        tuple(row)
        for row in conn.execute(
            sa.select(r.message_id, r.status, r.status_code, r.status_at)
            .where(r.mailing_id == mailing_id)
            .order_by(r.id)
        )
    ]


def test_each_recipient_gets_its_messages_status_code_and_time(engine: Engine) -> None:
    """Delivered takes the report's time, sent the send time, queued the last change; a message
    outside any mailing and a recipient not yet queued are left alone."""
    delivered = message("delivered", status_code="DELIVRD", sent_at=NOW + 5, final_at=NOW + 9)
    sent = message("sent", sent_at=NOW + 5)
    waiting = message("queued")
    failed = message("failed", status_code="E21", final_at=None)
    alone = message("delivered", final_at=NOW + 9)
    with engine.begin() as conn:
        conn.execute(messages.insert(), [delivered, sent, waiting, failed, alone])
        ids = [m["id"] for m in (delivered, sent, waiting, failed)]
        mailing_id = add_mailing(conn, [*ids, None])

        updated = mirror_messages(conn, [*ids, alone["id"], "NOPE"])

        assert updated == 4
        assert mirrored(conn, mailing_id) == [
            (delivered["id"], "delivered", "DELIVRD", NOW + 9),
            (sent["id"], "sent", None, NOW + 5),
            (waiting["id"], "queued", None, NOW + 1),
            (failed["id"], "failed", "E21", NOW + 1),
            (None, None, None, None),
        ]


def test_many_messages_are_mirrored_in_batches(engine: Engine) -> None:
    """More ids than one statement takes are all mirrored."""
    rows = [message("delivered", final_at=NOW + 2) for _ in range(1203)]
    with engine.begin() as conn:
        conn.execute(messages.insert(), rows)
        mailing_id = add_mailing(conn, [m["id"] for m in rows])

        assert mirror_messages(conn, [m["id"] for m in rows]) == 1203
        assert {row[1] for row in mirrored(conn, mailing_id)} == {"delivered"}


def test_retention_mirrors_a_mailings_messages_before_deleting_them(engine: Engine) -> None:
    """Purged messages of a mailing leave their final status and code on the recipients;
    the messages themselves are gone."""
    day = 86400.0
    old = NOW - 400 * day
    rows = [
        message("delivered", status_code="DELIVRD", final_at=old + 60)
        | {"id": id_before(old)[:10] + f"{i:016d}", "created_at": old, "updated_at": old}
        for i in range(3)
    ]
    rows[2]["status"] = "undelivered"
    rows[2]["status_code"] = "UNDELIV"
    with engine.begin() as conn:
        conn.execute(messages.insert(), rows)
        mailing_id = add_mailing(conn, [m["id"] for m in rows])
        conn.execute(
            mailing_recipients.update()
            .where(mailing_recipients.c.mailing_id == mailing_id)
            .values(status="sent")
        )
    cursor: Any = None
    while True:
        with engine.begin() as conn:
            _, cursor = purge_outbound(conn, NOW - 365 * day, cursor, 2)
        if cursor is None:
            break
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(messages)).scalar() == 0
        assert [row[1:] for row in mirrored(conn, mailing_id)] == [
            ("delivered", "DELIVRD", old + 60),
            ("delivered", "DELIVRD", old + 60),
            ("undelivered", "UNDELIV", old + 60),
        ]
