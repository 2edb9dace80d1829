"""Queueing a notification wakes this process's sender: it goes out at once, although the
sender polls only every few seconds (for notifications queued by other processes)."""

from __future__ import annotations

import json
import time

from smsdesk.notify.sender import POLL_SECONDS
from tests.support.harness import Harness
from tests.support.smtp import SmtpInbox
from tests.support.webui import create_user


async def test_a_queued_notification_is_sent_without_waiting_for_the_poll(
    any_db_harness: Harness,
) -> None:
    """An assignment's e-mail arrives well within the sender's poll interval, and the sender
    scanned only because it was woken."""
    h = any_db_harness
    notifier = h.service.notifier
    assert notifier is not None
    assert notifier.poll_interval == POLL_SECONDS >= 5
    create_user(h.service, "anna", "agent")
    h.service.users.set_contact(
        "anna",
        {"email": "anna@example.org", "notify": json.dumps({"request.assigned": ["email"]})},
    )
    with SmtpInbox() as inbox:
        await h.configure(
            email={
                "host": "127.0.0.1",
                "port": inbox.port,
                "security": "none",
                "sender": "desk@example.org",
            }
        )
        made = await h.post("/api/v1/requests", {"number": "+31612345678", "text": "Hello"})
        assert made.status_code == 201, made.text
        # After its first scan the sender waits out its poll: the change comes meanwhile.
        await h.wait_until(lambda: notifier.scans >= 1, "the sender's first scan")
        scans = notifier.scans
        started = time.monotonic()
        assigned = await h.client.patch(
            f"/api/v1/requests/{made.json()['id']}", json={"owner": "anna"}, headers=h.headers
        )
        assert assigned.status_code == 200, assigned.text
        await h.wait_until(lambda: len(inbox.received()) == 1, "the e-mail", timeout=2.0)
        took = time.monotonic() - started
    assert took < POLL_SECONDS / 2
    assert notifier.scans - scans <= 3  # woken scans, not a poll loop
