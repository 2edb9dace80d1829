"""A message an administrator deletes through one `smsdesk serve` leaves the outbox an agent
has open on another, in chromium, without a reload."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import expect

from tests.browser.test_live_browser import (
    CUSTOMER,
    Cluster,
    cluster,
    log_in,
    mark,
    not_reloaded,
    wait_live,
)

__all__ = ["cluster"]  # the two-process fixture, shared with the other live tests


def cancelled_message(cluster: Cluster, text: str) -> str:
    """A message scheduled for tomorrow and cancelled: final, so it can be deleted."""
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    made = cluster.api.post(
        "/api/v1/messages", json={"to": CUSTOMER, "text": text, "scheduled_at": later}
    )
    assert made.status_code in (200, 201, 202), made.text
    message_id = str(made.json()["id"])
    cancelled = cluster.api.post(f"/api/v1/messages/{message_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    return message_id


def test_a_deleted_message_leaves_another_agents_outbox(cluster: Cluster, pages: Any) -> None:
    """The agent's row goes in place; the administrator's page reloads as after any delete."""
    message_id = cancelled_message(cluster, "Delete me live")
    path = "/outbox?status=cancelled"
    agent = pages()
    log_in(agent, cluster.second, "anna", path)
    wait_live(agent)
    mark(agent)
    row = agent.locator(f"#message-{message_id}")
    expect(row).to_have_count(1)

    admin = pages()
    log_in(admin, cluster.first, "admin", path)
    admin.on("dialog", lambda dialog: dialog.accept())
    admin.locator(f"#message-{message_id}").get_by_role("button", name="Delete").click()
    expect(admin.locator(f"#message-{message_id}")).to_have_count(0)

    expect(row).to_have_count(0, timeout=5_000)
    assert not_reloaded(agent)
