"""The setup browser tests share: one `smsdesk serve` with users made by `smsdesk users create`,
the REST API of its first key, pages of a given width and language, logging in through the
login page, and the check that a page does not scroll sideways on a phone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.support.processes import Processes, Server, smsdesk_command, smsdesk_env, wait_until
from tests.support.webui import PASSWORD

PHONE = 390


@dataclass
class Site:
    url: str
    api: httpx.Client
    ids: dict[str, str] = field(default_factory=dict)


def create_user(env: dict[str, str], name: str, role: str, language: str = "en") -> None:
    """A user made with `smsdesk users create`, with the shared test password."""
    subprocess.run(
        [
            *smsdesk_command(),
            *("users", "create", name, "--role", role, "--language", language),
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def api_of(server: Server, timeout: float = 10) -> httpx.Client:
    """A REST client with the key the server printed on its first start."""
    key = server.first_key()
    assert key, server.output()
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=server.url, headers=headers, timeout=timeout)


@contextmanager
def serving(
    root: Path,
    users: Iterable[tuple[str, ...]],
    settings: dict[str, Any] | None = None,
    timeout: float = 10,
) -> Iterator[Site]:
    """One `smsdesk serve` on loopback with `users` (name, role[, language]) and, when given,
    `settings` put through the REST API."""
    env = smsdesk_env(data_dir=root / "data")
    for user in users:
        create_user(env, *user)
    processes = Processes(root)
    try:
        server = processes.server(env).wait_ready()
        with api_of(server, timeout) as api:
            if settings is not None:
                answer = api.put("/api/v1/settings", json=settings)
                assert answer.status_code == 200, answer.text
            yield Site(server.url, api)
    finally:
        processes.stop_all()


def new_page(
    browser: Browser,
    width: int = 1280,
    locale: str = "en-GB",
    zone: str | None = None,
    timeout: float = 15_000,
) -> Page:
    """A page in a browser context of its own (one person)."""
    context = browser.new_context(
        locale=locale, timezone_id=zone, viewport={"width": width, "height": 800}
    )
    context.set_default_timeout(timeout)
    return context.new_page()


def log_in(page: Page, url: str, name: str, path: str = "/login") -> None:
    """Open `path` and log in on the login page it shows."""
    page.goto(url + path)
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("#login")
    expect(page.locator("#logout")).to_be_visible()
    # The header shows before the scripts at the end of the page have run; a select changed
    # before app.js listens to it would not submit, as no person could be that quick.
    page.wait_for_load_state("load")


def fits(page: Page, what: str = "", width: int = PHONE) -> None:
    """Nothing on the page scrolls sideways; a failure names the elements too wide."""
    scroll = page.evaluate("document.documentElement.scrollWidth")
    if scroll <= width:
        return
    wide = page.evaluate(
        """w => Array.from(document.querySelectorAll('body *'))
        .filter(e => e.getBoundingClientRect().right > w)
        .map(e => e.tagName + '#' + e.id + '.' + e.className).slice(0, 8)""",
        width,
    )
    raise AssertionError(f"{what or page.url} is {scroll} px wide: {wide}")


def inbound(api: httpx.Client, sender: str, text: str) -> dict[str, Any]:
    """An SMS arrives through the REST API; answers its inbound record once processed."""
    answer = api.post("/api/v1/inbound", json={"from": sender, "to": "+3197010", "text": text})
    assert answer.status_code in (200, 202), answer.text
    inbound_id = answer.json()["id"]

    def processed() -> dict[str, Any] | None:
        found: dict[str, Any] = api.get(f"/api/v1/inbound/{inbound_id}").json()
        return found if found["state"] != "pending" else None

    return wait_until(processed, f"inbound {inbound_id} to be processed")


def request_of(api: httpx.Client, text: str, sender: str) -> str:
    """The request an SMS from `sender` opened (waits until it is processed)."""
    found = inbound(api, sender, text)
    assert found.get("request_id"), found
    return str(found["request_id"])
