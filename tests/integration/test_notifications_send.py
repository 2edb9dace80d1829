"""Notifications reach agents: e-mails at a real SMTP server (aiosmtpd), SMS in the outbox,
retries while the mail server is down; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from smsdesk.notify.retry import NotifyPolicy
from smsdesk.notify.sender import NotificationSender
from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store.tables import messages, notifications, settings
from smsdesk.testing import FakeClock, free_port
from tests.conftest import database_url
from tests.support.harness import BASE_URL, Harness, running_service
from tests.support.smtp import SmtpInbox
from tests.support.webui import create_user, log_in

EVERYTHING = {
    "request.new_in_group": ["email"],
    "request.assigned": ["email"],
    "request.customer_answered": ["email"],
}


def choose(h: Harness, username: str, **values: Any) -> None:
    if "notify" in values:
        values["notify"] = json.dumps(values["notify"])
    h.service.users.set_contact(username, values)


async def use_smtp(h: Harness, port: int, **extra: Any) -> None:
    email = {"host": "127.0.0.1", "port": port, "security": "none", "sender": "desk@example.org"}
    await h.configure(email={**email, **extra})


def statuses(h: Harness) -> list[tuple[str, str, int, str | None]]:
    with h.service.engine.connect() as conn:
        rows = conn.execute(
            sa.select(
                notifications.c.event,
                notifications.c.status,
                notifications.c.attempts,
                notifications.c.last_error,
            ).order_by(notifications.c.created_at, notifications.c.id)
        ).all()
    return [tuple(r) for r in rows]


async def test_an_email_arrives_for_each_chosen_event_and_none_for_others(
    any_db_harness: Harness,
) -> None:
    """Anna chose every event by e-mail and gets three e-mails with a link to the request;
    Bram (Dutch) chose only new requests in his group and gets that one, in Dutch; Cees chose
    nothing and gets none."""
    h = any_db_harness
    with SmtpInbox() as inbox:
        await use_smtp(h, inbox.port)
        await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
        for name, language in (("anna", "en"), ("bram", "nl"), ("cees", "en")):
            create_user(h.service, name, "agent", language=language)
        choose(h, "anna", email="anna@example.org", notify=EVERYTHING)
        choose(h, "bram", email="bram@example.org", notify={"request.new_in_group": ["email"]})
        choose(h, "cees", email="cees@example.org", notify={})
        assert (await h.post("/api/v1/groups", {"name": "Billing"})).status_code == 201
        for name in ("anna", "bram", "cees"):
            await h.post("/api/v1/groups/Billing/members", {"user": name})
        rule = {"kind": "endpoint_code", "value": "help", "group": "Billing"}
        assert (await h.post("/api/v1/routing-rules", rule)).status_code == 201

        first = await h.receive("0612345678", "HELP where is my invoice")
        request_id = first["request_id"]
        await h.wait_until(lambda: len(inbox.received()) == 2, "two e-mails")
        assigned = await h.client.patch(
            f"/api/v1/requests/{request_id}", json={"owner": "anna"}, headers=h.headers
        )
        assert assigned.status_code == 200, assigned.text
        await h.wait_until(lambda: len(inbox.received()) == 3, "the assignment e-mail")
        await h.receive("0612345678", "HELP any news?")
        await h.wait_until(lambda: len(inbox.received()) == 4, "the answer e-mail")

    got = sorted((m.rcpt_tos[0], str(m.message["Subject"])) for m in inbox.received())
    assert got == [
        ("anna@example.org", "New request in Billing: where is my invoice"),
        ("anna@example.org", "Request assigned to you: where is my invoice"),
        ("anna@example.org", "The customer answered: where is my invoice"),
        ("bram@example.org", "Nieuwe aanvraag in Billing: where is my invoice"),
    ]
    link = f"{BASE_URL}/requests/{request_id}"
    dutch = next(m for m in inbox.received() if m.rcpt_tos == ["bram@example.org"])
    assert "Er is een nieuwe aanvraag binnengekomen in de groep Billing." in dutch.body
    assert "Open de aanvraag:" in dutch.body and link in dutch.body
    for mail in inbox.received():
        assert mail.mail_from == "desk@example.org" and link in mail.body
    await h.wait_until(lambda: {s for _, s, _, _ in statuses(h)} == {"sent"}, "all recorded")
    assert len(statuses(h)) == 4


async def test_the_sms_channel_queues_an_outbox_message_to_the_agents_number(
    any_db_harness: Harness,
) -> None:
    """An agent who chose SMS for assignments gets an SMS on their own number through the
    outbox, marked as a notification, sent even though that number opted out."""
    h = any_db_harness
    await h.configure(default_country_code="+31")
    create_user(h.service, "anna", "agent")
    choose(h, "anna", phone="+31612000001", notify={"request.assigned": ["sms"]})
    optout = await h.post("/api/v1/opt-outs", {"number": "+31612000001"})
    assert optout.status_code in (200, 201), optout.text
    first = await h.receive("0612345678", "My parcel is late")
    answer = await h.client.patch(
        f"/api/v1/requests/{first['request_id']}", json={"owner": "anna"}, headers=h.headers
    )
    assert answer.status_code == 200, answer.text

    def notified() -> Any:
        with h.service.engine.connect() as conn:
            return conn.execute(
                sa.select(messages).where(messages.c.recipient == "+31612000001")
            ).first()

    await h.wait_until(lambda: notified() is not None, "the SMS notification")
    row = notified()
    assert row.reference.startswith("notification:") and row.transactional
    assert row.request_id is None  # not part of the customer's conversation
    assert row.body == (
        f"Request assigned to you: My parcel is late\n{BASE_URL}/requests/{first['request_id']}"
    )
    sent = await h.wait_for(row.id, "sent", "delivered")
    assert sent["to"] == "+31612000001"
    create_user(h.service, "admin", "admin")
    async with h.browser() as browser:
        await log_in(browser, "admin")
        shown = (await browser.get(f"/messages/{row.id}")).text
    assert f"notification:{row.reference.split(':')[1]}" in shown


@pytest.fixture
async def quiet_harness(tmp_path: Path, engine: Engine) -> Any:
    """A service whose background tasks do not run: the test drives a sender itself."""
    async with running_service(tmp_path, database_url(engine), dispatcher=False) as h:
        yield h


async def test_smtp_down_is_retried_then_sent_or_dead_with_the_error_kept(
    quiet_harness: Harness, tmp_path: Path
) -> None:
    """While the mail server is down the notification waits and is tried again later with the
    error kept; once the server is back it is sent; one that keeps failing is dead after the
    last attempt, its error kept; after 30 days both are deleted."""
    h = quiet_harness
    clock = FakeClock()
    port = free_port()
    await use_smtp(h, port)
    create_user(h.service, "anna", "agent")
    choose(h, "anna", email="anna@example.org", notify={"request.assigned": ["email"]})
    made = await h.post("/api/v1/requests", {"number": "+31612345678", "text": "Hello"})
    assert made.status_code == 201, made.text
    request_id = made.json()["id"]
    sender = NotificationSender(
        writer=h.service.writer,
        settings=h.service.settings,
        sms_row=h.service.notification_sms,
        public_url=lambda: BASE_URL,
        clock=clock,
        policy=NotifyPolicy(first_delay=10, max_attempts=3),
    )

    async def assign(owner: str | None) -> None:
        answer = await h.client.patch(
            f"/api/v1/requests/{request_id}", json={"owner": owner}, headers=h.headers
        )
        assert answer.status_code == 200, answer.text

    # The notifications are queued at the real time; the fake clock is far ahead of it.
    await assign("anna")
    assert await sender.run_once() == 1
    ((_, status, attempts, error),) = statuses(h)
    assert (status, attempts) == ("pending", 1)
    assert error is not None and f"Could not send through 127.0.0.1:{port}" in error
    assert await sender.run_once() == 0  # not due again yet
    clock.advance(10)
    inbox = SmtpInbox()
    inbox.port = port
    with inbox:
        assert await sender.run_once() == 1
    assert [m.rcpt_tos for m in inbox.received()] == [["anna@example.org"]]
    assert statuses(h)[0][1:3] == ("sent", 2)

    await assign(None)
    await assign("anna")
    for delay in (0, 10, 20):
        clock.advance(delay)
        assert await sender.run_once() == 1
    second = statuses(h)[1]
    assert second[1:3] == ("dead", 3)
    assert second[3] is not None and "Could not send through" in second[3]
    clock.advance(3600)
    assert await sender.run_once() == 0
    clock.advance(31 * 86400)  # finished notifications are kept for 30 days
    await sender.run_once()
    assert statuses(h) == []


async def test_the_smtp_password_is_never_shown_logged_or_stored_in_the_clear(
    any_db_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The password is masked in the API and TOML view, encrypted in the database, kept when
    the mask is saved back, and absent from the error and the log of a refused login."""
    h = any_db_harness
    secret = "hunter2-very-secret"
    with SmtpInbox(login=("desk", "right-password")) as inbox:
        await use_smtp(h, inbox.port, username="desk", password=secret)
        shown = (await h.get("/api/v1/settings")).json()
        assert shown["email"]["password"] == "********"
        assert secret not in json.dumps(shown)
        with h.service.engine.connect() as conn:
            stored = conn.execute(sa.select(settings.c.value)).scalars().all()
        assert all(secret not in value for value in stored)
        await h.configure(email={**shown["email"], "port": inbox.port})  # the mask saved back
        assert h.service.settings.load().email.password.get_secret_value() == secret

        create_user(h.service, "anna", "agent")
        choose(h, "anna", email="anna@example.org", notify={"request.assigned": ["email"]})
        made = await h.post("/api/v1/requests", {"number": "+31612345678", "text": "Hi"})
        caplog.set_level(logging.DEBUG)
        await h.client.patch(
            f"/api/v1/requests/{made.json()['id']}", json={"owner": "anna"}, headers=h.headers
        )
        await h.wait_until(lambda: statuses(h)[0][2] >= 1, "a failed attempt")
    (_, status, _, error) = statuses(h)[0]
    assert status == "pending" and error is not None and "refused" in error
    assert secret not in error
    assert secret not in caplog.text
    assert inbox.received() == []


async def test_two_processes_send_each_notification_once(
    quiet_harness: Harness, tmp_path: Path
) -> None:
    """Two processes' senders on one database, sending at the same time, deliver every queued
    e-mail exactly once."""
    h = quiet_harness
    create_user(h.service, "anna", "agent")
    choose(h, "anna", email="anna@example.org", notify={"request.assigned": ["email"]})
    ids = []
    for n in range(12):
        made = await h.post("/api/v1/requests", {"number": f"+3161234{n:04d}", "text": f"R{n}"})
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
        await h.client.patch(
            f"/api/v1/requests/{ids[-1]}", json={"owner": "anna"}, headers=h.headers
        )
    other = Service(
        AppConfig(data_dir=tmp_path / "other", database_url=h.service.config.database_url)
    )
    other.writer.start()
    try:
        with SmtpInbox() as inbox:
            await use_smtp(h, inbox.port)
            senders = [
                NotificationSender(
                    writer=service.writer,
                    settings=service.settings,
                    sms_row=service.notification_sms,
                    public_url=lambda: BASE_URL,
                    concurrency=3,
                )
                for service in (h.service, other)
            ]
            while any(status == "pending" for _, status, _, _ in statuses(h)):
                await asyncio.gather(*(s.run_once() for s in senders))
        subjects = sorted(str(m.message["Subject"]) for m in inbox.received())
        assert subjects == sorted(f"Request assigned to you: R{n}" for n in range(12))
        assert sum(s.attempts for s in senders) == 12
    finally:
        other.writer.stop()
        other.close()
        other.close()
