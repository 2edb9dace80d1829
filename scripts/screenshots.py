"""Take the README's screenshots: the SMS configuration screen and the screens a team works in.

    python scripts/screenshots.py [--out docs]

Starts `smsdesk serve` (with the simulator module) on a fresh data directory, creates an
administrator and two agents, a group with opening hours, a reply template, requests (one with
delivered and failed replies, one out of hours, one opted out), an unrecognised SMS and a few
hundred messages, and photographs the screens with Debian's chromium at desktop width (1280)
and phone width (390), in English and Dutch. The configuration screen goes to
docs/sms-configuration-<language>.png, the others to docs/screenshots/.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Browser, FloatRect, Page, ViewportSize, sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.support
from tests.support.processes import Processes, smsdesk_command, smsdesk_env, wait_until

PASSWORD = "correct horse battery staple"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
EXAMPLE = {
    "module": "original_intelecom",
    "default_country_code": "+31",
    "sender": "Support",
    "module_settings": {
        "original_intelecom": {
            "sms_endpoint": "HELP",
            "use_web_service": True,
            "delivery_report": True,
            "service_id": "4242",
            "username": "acme",
            "password": "example-password",
            "sms_priority": 2,
        }
    },
}


AGENTS = ("anna", "ben")
CUSTOMERS = {
    "parcel": "+31612345001",
    "invoice": "+31612345002",
    "stop": "+31612345003",
    "address": "+31612345004",
}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# name, path, languages, the element the picture ends with (None: the page), desktop, phone heights
Shot = tuple[str, str, tuple[str, ...], str | None, int, int]


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        [*smsdesk_command(), *args],
        input=stdin,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def seed(api: httpx.Client, env: dict[str, str]) -> dict[str, str]:
    """Realistic example data; returns the ids of the requests worth photographing."""
    for agent in AGENTS:
        cli(env, "users", "create", agent, "--role", "agent", "--password-stdin", stdin=PASSWORD)
    api.put(
        "/api/v1/settings",
        json={
            "module": "simulator",
            "default_country_code": "+31",
            "sender": "Support",
            "inbound": {"sms_endpoint": "HELP"},
            "module_settings": {"simulator": {"report_delay": 0.2, "undelivered_rate": 0.0}},
        },
    ).raise_for_status()
    api.post("/api/v1/groups", json={"name": "Support", "round_robin": True}).raise_for_status()
    api.post(
        "/api/v1/groups",
        json={"name": "Billing", "description": "Invoices, refunds and payments"},
    ).raise_for_status()
    for agent in AGENTS:
        api.post("/api/v1/groups/Support/members", json={"user": agent}).raise_for_status()
    api.post("/api/v1/groups/Billing/members", json={"user": "ben"}).raise_for_status()
    today = datetime.date.today()
    api.patch(
        "/api/v1/groups/Billing",
        json={
            "time_zone": "Europe/Amsterdam",
            "hours": {day: ["09:00-12:30", "13:30-17:00"] for day in WEEKDAYS},
            "holidays": [] if today.weekday() >= 5 else [today.isoformat()],
            "out_of_hours_reply": "Thanks! Our billing team answers on working days 9-17.",
        },
    ).raise_for_status()
    cli(env, "groups", "rules", "add", "keyword", "INVOICE", "Billing")
    cli(env, "groups", "rules", "add", "endpoint_code", "HELP", "Support")
    api.post(
        "/api/v1/templates",
        json={
            "name": "Parcel on its way",
            "language": "en",
            "body": "Hi {customer.name}, your parcel {prompt:order number} is on its way. "
            "- {agent.name}",
        },
    ).raise_for_status()
    api.post(
        "/api/v1/templates",
        json={
            "name": "Pakket onderweg",
            "language": "nl",
            "body": "Hallo {customer.name}, uw pakket {prompt:ordernummer} is onderweg. "
            "- {agent.name}",
        },
    ).raise_for_status()
    for name, number in (
        ("Maria Jansen", CUSTOMERS["parcel"]),
        ("Pieter de Vries", CUSTOMERS["invoice"]),
    ):
        api.post("/api/v1/customers", json={"name": name, "numbers": [number]}).raise_for_status()

    def inbound(number: str, text: str) -> str:
        """Hand over an SMS from `number`; once processed, the id of the request it is in."""
        answer = api.post("/api/v1/inbound", json={"from": number, "content": text})
        answer.raise_for_status()
        inbound_id = answer.json()["id"]

        def processed() -> str | None:
            item = api.get(f"/api/v1/inbound/{inbound_id}").json()
            return None if item["state"] == "pending" else str(item["request_id"])

        return wait_until(processed, f"the SMS from {number} processed", timeout=30)

    parcel = inbound(
        CUSTOMERS["parcel"], "HELP Where is my parcel? Order 58213, ordered last Monday."
    )
    api.patch(f"/api/v1/requests/{parcel}", json={"owner": "anna"}).raise_for_status()
    api.post(
        f"/api/v1/requests/{parcel}/reply",
        json={
            "text": "Hi Maria, it left our warehouse today; you get it tomorrow.",
            "author": "anna",
        },
    ).raise_for_status()
    wait_until(lambda: delivered(api, parcel, 1), "the first reply delivered", timeout=30)
    inbound(CUSTOMERS["parcel"], "HELP Great, can it go to my neighbour at number 12?")
    api.put(
        "/api/v1/settings",
        json={"module_settings": {"simulator": {"undelivered_rate": 1.0}}},
    ).raise_for_status()
    api.post(
        f"/api/v1/requests/{parcel}/reply",
        json={"text": "Yes, we told the courier. Have a nice day!", "author": "anna"},
    ).raise_for_status()
    wait_until(lambda: failed(api, parcel), "the second reply undelivered", timeout=30)
    api.put(
        "/api/v1/settings",
        json={"module_settings": {"simulator": {"undelivered_rate": 0.08}}},
    ).raise_for_status()

    invoice = inbound(
        CUSTOMERS["invoice"], "HELP INVOICE 2026-114 is charged twice, please refund."
    )
    stop = inbound(CUSTOMERS["stop"], "HELP Please call me about the delivery time.")
    inbound(CUSTOMERS["stop"], "STOP")
    inbound(CUSTOMERS["address"], "HELP I moved; new address is Kerkstraat 4, Utrecht.")
    inbound("+31687654321", "Wrong number? Who is this")
    api.post(
        "/api/v1/requests",
        json={
            "number": "06 1234 5005",
            "text": "Your repair is ready to be picked up. Reply to this SMS with questions.",
            "group": "Support",
            "owner": "ben",
            "author": "ben",
        },
    ).raise_for_status()
    for start in range(0, 300, 100):
        api.post(
            "/api/v1/messages/batch",
            json={
                "to": [f"+3165{n:07d}" for n in range(start, start + 100)],
                "text": "Your appointment is tomorrow at 10:00. Reply HELP to change it.",
            },
        ).raise_for_status()
    wait_until(
        lambda: api.get("/api/v1/messages", params={"status": "queued"}).json()["messages"] == [],
        "the outbox empty",
        timeout=120,
    )
    api.put(
        "/api/v1/settings",
        json={"module_settings": {"simulator": {"permanent_failure_rate": 1.0}}},
    ).raise_for_status()
    for number, text in (
        ("+31612399901", "Your verification code is 481516."),
        ("+31612399902", "Reminder: your invoice 2026-098 is due on Friday."),
        ("+31612399903", "Your parcel 58377 is at the pick-up point until Thursday."),
    ):
        api.post("/api/v1/messages", json={"to": number, "text": text}).raise_for_status()
    wait_until(
        lambda: (
            len(api.get("/api/v1/messages", params={"status": "failed"}).json()["messages"]) >= 3
        ),
        "three messages failed",
        timeout=60,
    )
    return {"parcel": parcel, "invoice": invoice, "stop": stop}


def messages_of(api: httpx.Client, request_id: str) -> list[dict[str, object]]:
    body = api.get(f"/api/v1/requests/{request_id}").json()
    return [m for m in body["conversation"] if m["direction"] == "out"]


def delivered(api: httpx.Client, request_id: str, count: int) -> bool:
    return sum(m.get("status") == "delivered" for m in messages_of(api, request_id)) >= count


def failed(api: httpx.Client, request_id: str) -> bool:
    return any(m.get("status") == "undelivered" for m in messages_of(api, request_id))


def login(page: Page, url: str, user: str) -> None:
    page.goto(f"{url}/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_load_state()


def language(page: Page, choice: str) -> None:
    if page.get_attribute("html", "lang") != choice:
        page.select_option("#language-choice", choice)
        page.wait_for_selector(f'html[lang="{choice}"]')


def shoot(page: Page, target: Path, max_height: int, until: str | None) -> None:
    """The page from the top to the end of `until` (else the whole page), at most `max_height`
    pixels high."""
    width = page.viewport_size["width"] if page.viewport_size else DESKTOP["width"]
    bottom = (
        "document.documentElement.scrollHeight"
        if until is None
        else f"document.querySelector('{until}').getBoundingClientRect().bottom + scrollY + 16"
    )
    height = min(max_height, int(page.evaluate(bottom)))
    clip: FloatRect = {"x": 0, "y": 0, "width": width, "height": height}
    page.screenshot(path=str(target), clip=clip, full_page=True)
    print(target)


def photograph(browser: Browser, url: str, out: Path, ids: dict[str, str]) -> None:
    shots = out / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    screens: dict[str, list[Shot]] = {
        "anna": [
            ("requests", "/requests?view=all", ("en", "nl"), "table", 760, 1300),
            ("conversation", f"/requests/{ids['parcel']}", ("en", "nl"), "#reply", 1400, 2300),
        ],
        "admin": [
            ("dashboard", "/dashboard", ("en",), None, 1000, 1700),
            ("outbox", "/outbox", ("en",), "table", 800, 1400),
            ("groups", "/groups", ("en",), None, 1000, 1700),
            ("audit", "/audit", ("en",), None, 800, 1400),
        ],
    }
    for device, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        for user, pages in screens.items():
            context = browser.new_context(viewport=viewport, device_scale_factor=1)
            page = context.new_page()
            login(page, url, user)
            for name, path, languages, until, desktop_height, phone_height in pages:
                for choice in languages:
                    page.goto(url + path)
                    language(page, choice)
                    page.wait_for_load_state("networkidle")
                    height = desktop_height if device == "desktop" else phone_height
                    shoot(page, shots / f"{name}-{device}-{choice}.png", height, until)
            context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="smsdesk-shots-"))
    env = smsdesk_env(data_dir=root / "data")
    cli(env, "users", "create", "admin", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    processes = Processes(root)
    try:
        server = processes.server(env).wait_ready()
        key = server.first_key()
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as api:
            ids = seed(api, env)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path="/usr/bin/chromium",
                    args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                )
                photograph(browser, server.url, args.out, ids)
                api.put("/api/v1/settings", json=EXAMPLE).raise_for_status()
                page = browser.new_page(viewport={"width": 1100, "height": 900})
                login(page, server.url, "admin")
                page.goto(f"{server.url}/preferences/general/sms")
                page.wait_for_selector("#f-module")
                for choice in ("en", "nl"):
                    language(page, choice)
                    page.fill("#test-to", "+31612345678")
                    page.fill("#test-text", "Uw bestelling is onderweg")
                    target = args.out / f"sms-configuration-{choice}.png"
                    page.screenshot(path=str(target), full_page=True)
                    print(target)
                browser.close()
    finally:
        processes.stop_all()


if __name__ == "__main__":
    main()
