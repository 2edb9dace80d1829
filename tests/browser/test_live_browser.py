"""Live updates in chromium: pages served by one `smsdesk serve` change, without a reload,
when something happens through another `smsdesk serve` on the same database.

Each page gets a marker in its window object; a reload would remove it, so a test that finds
the marker after the change knows the page was updated in place.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.support.browser import api_of, create_user, request_of
from tests.support.browser import log_in as log_in_at
from tests.support.processes import Processes, Server, smsdesk_env

CUSTOMER = "+31612345678"


@dataclass
class Cluster:
    """Two web processes sharing one database, and the REST API of the first."""

    first: Server
    second: Server
    api: httpx.Client
    processes: Processes


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("live")
    env = smsdesk_env(data_dir=root / "data")
    for name in ("anna", "bram"):
        create_user(env, name, "agent")
    create_user(env, "cor", "agent", "nl")
    create_user(env, "admin", "admin")
    processes = Processes(root)
    try:
        first = processes.server(env, "first").wait_ready()
        second = processes.server(env, "second").wait_ready()
        with api_of(first) as api:
            answer = api.put(
                "/api/v1/settings",
                json={
                    "default_country_code": "+31",
                    "inbound": {"sms_endpoint": "HELP"},
                    "module_settings": {"simulator": {"report_delay": 0.5}},
                },
            )
            assert answer.status_code == 200, answer.text
            yield Cluster(first, second, api, processes)
    finally:
        processes.stop_all()


def log_in(page: Page, server: Server, name: str, path: str) -> None:
    """Log in on the page `path` sends to, and be back on `path`."""
    log_in_at(page, server.url, name, path)
    expect(page).to_have_url(server.url + path)


def mark(page: Page) -> None:
    """Leave a marker in the page that only a reload would remove."""
    page.evaluate("window.__notReloaded = true")


def not_reloaded(page: Page) -> bool:
    return bool(page.evaluate("window.__notReloaded === true"))


def wait_live(page: Page, mode: str = "stream") -> None:
    expect(page.locator("html")).to_have_attribute("data-live", mode)


def send(cluster: Cluster, text: str) -> str:
    answer = cluster.api.post("/api/v1/messages", json={"to": CUSTOMER, "text": text})
    assert answer.status_code in (200, 201, 202), answer.text
    return str(answer.json()["id"])


def receive(cluster: Cluster, text: str, sender: str = CUSTOMER) -> None:
    answer = cluster.api.post(
        "/api/v1/inbound", json={"from": sender, "to": "+3197010", "text": text}
    )
    assert answer.status_code in (200, 202), answer.text


def test_two_agents_see_a_reply_and_its_delivery_tick_without_reloading(
    cluster: Cluster, pages: Any
) -> None:
    """Anna replies on one process; her reply is confirmed in place, Cor (in Dutch, on the
    other process) sees it appear, and both see its tick turn to delivered; the customer's
    answer then appears for both."""
    sender = "+31611122233"
    request_id = request_of(cluster.api, "HELP my parcel never came", sender)
    path = f"/requests/{request_id}"
    anna, cor = pages(), pages(locale="nl-NL")
    log_in(anna, cluster.first, "anna", path)
    log_in(cor, cluster.second, "cor", path)
    for page in (anna, cor):
        wait_live(page)
        mark(page)

    anna.fill("#reply-text", "We are sending a new parcel today")
    anna.click("#send-reply")
    for page in (anna, cor):
        reply = page.locator("#conversation .bubble.outbound").last
        expect(reply).to_contain_text("We are sending a new parcel today", timeout=5_000)
        expect(reply.locator(".tick")).to_have_attribute("data-status", "delivered", timeout=10_000)
    expect(anna.locator("#reply-text")).to_have_value("")
    expect(anna.locator("#conversation .tick[data-status=delivered]").last).to_contain_text(
        "SMS delivered"
    )
    expect(cor.locator("#conversation .tick[data-status=delivered]").last).to_contain_text(
        "Sms afgeleverd"
    )
    assert anna.locator("#conversation .tick svg").count() >= 1

    receive(cluster, "Thanks, it arrived", sender=sender)
    for page in (anna, cor):
        expect(page.locator("#conversation .bubble.inbound").last).to_contain_text(
            "Thanks, it arrived", timeout=5_000
        )
        assert not_reloaded(page)


def test_a_refused_reply_keeps_the_text_and_shows_why_in_place(
    cluster: Cluster, pages: Any
) -> None:
    """A reply the server refuses shows the reason beside the box, without a reload."""
    request_id = request_of(cluster.api, "HELP question", "+31611122244")
    page = pages()
    log_in(page, cluster.first, "anna", f"/requests/{request_id}")
    wait_live(page)
    mark(page)
    page.fill("#reply-text", "x" * 2000)
    page.click("#send-reply")
    expect(page.locator("#reply-error")).to_be_visible(timeout=5_000)
    expect(page.locator("#reply-text")).to_have_value("x" * 2000)
    assert not_reloaded(page)


def test_the_outbox_and_a_timeline_follow_a_message_sent_through_another_process(
    cluster: Cluster, pages: Any
) -> None:
    """A message sent through the first process appears in the outbox of the second, and its
    page there shows it delivered, both without reloading."""
    outbox = pages()
    log_in(outbox, cluster.second, "anna", "/messages")
    wait_live(outbox)
    mark(outbox)
    message_id = send(cluster, "Live outbox check")
    row = outbox.locator(f"#message-{message_id}")
    expect(row).to_be_visible(timeout=5_000)
    expect(row).to_contain_text("delivered", timeout=10_000)
    assert not_reloaded(outbox)

    later = send(cluster, "Live timeline check")
    outbox.goto(f"{cluster.second.url}/messages/{later}")
    wait_live(outbox)
    mark(outbox)
    expect(outbox.locator("#message-status")).to_contain_text("delivered", timeout=10_000)
    expect(outbox.locator("#timeline")).to_contain_text("delivered")
    assert not_reloaded(outbox)


def test_a_new_request_appears_in_the_requests_list(cluster: Cluster, pages: Any) -> None:
    """An SMS opening a request shows up in an agent's list on the other process."""
    page = pages()
    log_in(page, cluster.second, "bram", "/requests")
    wait_live(page)
    mark(page)
    receive(cluster, "HELP where is parcel 4711", sender="+31687654321")
    expect(page.locator("#requests")).to_contain_text("where is parcel 4711", timeout=5_000)
    assert not_reloaded(page)


def test_a_page_without_a_stream_falls_back_to_polling(cluster: Cluster, pages: Any) -> None:
    """When the event stream is refused on the way (a proxy), the page polls instead."""
    page = pages()

    def refuse(route: Route) -> None:
        route.fulfill(status=502, body="bad gateway")

    page.route("**/live/events*", refuse)
    log_in(page, cluster.second, "anna", "/messages")
    wait_live(page, "poll")
    mark(page)
    message_id = send(cluster, "Polled message")
    expect(page.locator(f"#message-{message_id}")).to_contain_text("delivered", timeout=10_000)
    assert not_reloaded(page)


def test_a_server_with_connected_pages_stops_promptly(cluster: Cluster, pages: Any) -> None:
    """Open live pages do not hold up a stop: the server ends their streams and exits."""
    env = smsdesk_env(data_dir=cluster.processes.log_dir / "data")
    third = cluster.processes.server(env, "third").wait_ready()
    page = pages()
    log_in(page, third, "anna", "/outbox")
    wait_live(page)
    started = time.monotonic()
    assert third.stop(grace=15) == 0
    assert time.monotonic() - started < 10
