"""Every screen, in Dutch, with realistic data, holds no English sentence.

The walk visits every screen the web interface's routers serve (path parameters filled with
real rows), as a Dutch administrator, after delivered, refused and failed messages, a request
that arrived out of hours with its automatic answer, an unrecognised SMS, a group, a
template, an opt-out and audit entries exist. Visible text (and placeholders, labels for assistive
technology and confirmation questions) is split into sentences; one holding an English
function word fails the test. What users typed and customers wrote is in Dutch here; words
that are not ours (a provider's answer) carry `lang="en"`, and `<code>` holds identifiers:
both are skipped.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

import httpx

import smsdesk.web.ui
from tests.support.harness import Harness
from tests.support.webui import create_user, log_in

# English words that are not Dutch words too ("is", "was", "of", "in", "had" are both).
ENGLISH = frozenset(
    {
        "the",
        "and",
        "to",
        "are",
        "with",
        "this",
        "that",
        "your",
        "not",
        "for",
        "from",
        "has",
        "have",
        "will",
        "been",
        "you",
        "or",
        "at",
        "by",
        "it",
        "there",
        "which",
        "when",
        "where",
        "can",
        "cannot",
        "should",
        "must",
        "than",
        "into",
        "any",
        "every",
        "these",
        "those",
        "what",
        "who",
        "yet",
        "please",
        "here",
        "their",
        "they",
        "them",
        "our",
        "its",
        "no",
        "yes",
        "number",
        "failure",
        "rejected",
        "fields",
        "message",
        "sent",
        "error",
        "changed",
    }
)
NOT_PAGES = ("/live/", ".csv", "/customer/export", "/sms/test/", "/templates/new/templates")
QUERIES = {"/opt-outs/remove": "?number=%2B31655544433"}
_SKIPPED = {"script", "style", "code", "pre", "textarea", "template"}
_SHOWN_ATTRIBUTES = ("placeholder", "aria-label", "title", "data-confirm", "alt")
_VOID = {"br", "hr", "img", "input", "link", "meta", "area", "base", "col", "source", "wbr"}


class _VisibleText(HTMLParser):
    """The text a Dutch reader sees, without skipped elements and text marked not ours."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._stack: list[bool] = []  # per open element: is its content skipped?

    def _skipping(self) -> bool:
        return bool(self._stack) and self._stack[-1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        skip = (
            self._skipping()
            or tag in _SKIPPED
            or "data-user-text" in found
            or (found.get("lang") or "nl").split("-")[0] != "nl"
            or found.get("type") == "hidden"
        )
        if not skip:
            self.parts += [found[a] or "" for a in _SHOWN_ATTRIBUTES if found.get(a)]
            if tag == "input" and found.get("type") in ("submit", "button") and found.get("value"):
                self.parts.append(found["value"] or "")
        if tag not in _VOID:
            self._stack.append(skip)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self._stack.pop()

    def handle_endtag(self, tag: str) -> None:
        if tag not in _VOID and self._stack:
            self._stack.pop()

    def handle_data(self, data: str) -> None:
        if not self._skipping() and data.strip():
            self.parts.append(data)


def english_sentences(html: str) -> list[str]:
    """Sentences of the page's visible text that hold an English function word."""
    reader = _VisibleText()
    reader.feed(html)
    found = []
    for part in reader.parts:
        for sentence in re.split(r"(?<=[.!?:;])\s+|\n", part):
            # Identifiers (field_names, {placeholders}, a.b, numbers) are not words.
            tokens = (t.strip(",:;.!?()\"'\u201c\u201d") for t in sentence.split())
            words = {t.lower() for t in tokens if re.fullmatch(r"[A-Za-z']+", t)}
            if words & ENGLISH:
                found.append(" ".join(sentence.split())[:160])
    return found


def screens(ids: dict[str, str]) -> list[str]:
    """Every GET screen of the web interface, its path parameters filled in."""
    found = []
    for info in pkgutil.iter_modules(smsdesk.web.ui.__path__):
        router = getattr(importlib.import_module(f"smsdesk.web.ui.{info.name}"), "router", None)
        for route in getattr(router, "routes", []):
            if "GET" not in getattr(route, "methods", ()) or route.path in ("/", "/login"):
                continue
            if any(part in route.path for part in NOT_PAGES):
                continue
            missing = [n for n in re.findall(r"{(\w+)}", route.path) if n not in ids]
            assert not missing, f"{route.path}: give {missing} a value in the walk"
            found.append(route.path.format(**ids) + QUERIES.get(route.path, ""))
    return sorted(set(found))


async def _simulate(h: Harness, **faults: Any) -> None:
    quiet = {"permanent_failure_rate": 0.0, "undelivered_rate": 0.0}
    await h.configure(module_settings={"simulator": {"report_delay": 0.02, **quiet, **faults}})
    await h.idle_scans(2)


async def _send(h: Harness, to: str, text: str) -> str:
    response = await h.post("/api/v1/messages", {"to": to, "text": text})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def realistic_data(h: Harness) -> dict[str, str]:
    """Rows of every kind a Dutch team sees, written in Dutch where people typed them."""
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HULP"})
    delivered = await _send(h, "+31612345678", "Uw pakket komt morgen")
    await h.wait_for(delivered, "delivered")
    await _simulate(h, permanent_failure_rate=1.0)
    refused = await _send(h, "+31612345679", "Uw afspraak is verzet")
    await h.wait_for(refused, "failed")
    await _simulate(h, undelivered_rate=1.0)
    undelivered = await _send(h, "+31612345670", "Uw factuur staat klaar")
    await h.wait_for(undelivered, "undelivered")
    await _simulate(h)
    group = await h.post("/api/v1/groups", {"name": "Klantenservice"})
    assert group.status_code == 201, group.text
    closed = await h.client.patch(
        f"/api/v1/groups/{group.json()['id']}",
        json={
            "out_of_hours_reply": "Wij zijn gesloten; morgen weer open.",
            "time_zone": "Europe/Amsterdam",
            "hours": {"mon": ["09:00-17:00"]},
            "holidays": [datetime.now(ZoneInfo("Europe/Amsterdam")).date().isoformat()],
        },
        headers=h.headers,
    )
    assert closed.status_code == 200, closed.text
    rule = {"kind": "endpoint_code", "value": "HULP", "group": "Klantenservice"}
    assert (await h.post("/api/v1/routing-rules", rule)).status_code == 201
    template = await h.post(
        "/api/v1/templates",
        {"name": "Pakket onderweg", "language": "nl", "body": "Hallo {customer.name}, tot morgen."},
    )
    assert template.status_code == 201, template.text
    opted = await h.post("/api/v1/opt-outs", {"number": "+31655544433"})
    assert opted.status_code in (200, 201), opted.text
    request = await h.receive("+31611122233", "HULP mijn pakket is niet gekomen")
    stray = await h.receive("+31699988877", "Hallo, wie is dit?")
    await h.receive("+31611122244", "HULP")  # no text: the request is titled by its number
    return {
        "message_id": refused,
        "template_id": str(template.json()["id"]),
        "request_id": str(request["request_id"]),
        "inbound_id": str(stray["id"]),
        "name": "cancel",
    }


def test_the_detector_finds_english_and_skips_what_is_not_ours() -> None:
    """An English sentence is found; Dutch, code, hidden and quoted provider text are not."""
    html = (
        "<p>Dit is een zin.</p><p>This is not Dutch.</p><code>from the api</code>"
        '<q lang="en">The number is wrong</q><span data-user-text>for you</span>'
        '<input placeholder="Search for a number">'
    )
    assert english_sentences(html) == ["This is not Dutch.", "Search for a number"]


async def test_every_screen_reads_in_dutch(harness: Harness) -> None:
    """A Dutch administrator walks every screen and meets no English sentence."""
    ids = await realistic_data(harness)
    create_user(harness.service, "beheer", "admin", "nl")
    english: dict[str, list[str]] = {}
    async with harness.browser() as browser:
        assert (await log_in(browser, "beheer")).status_code in (200, 303)
        paths = screens(ids)
        assert len(paths) >= 15, paths
        for path in [*paths, f"/messages/{ids['message_id']}"]:
            page = await browser.get(path)
            assert page.status_code == 200, f"{path}: {page.status_code}"
            if path == f"/requests/{ids['request_id']}":
                assert "out-of-hours-badge" in page.text  # the data is realistic
            if found := english_sentences(page.text):
                english[path] = found
    assert not english, "English on Dutch pages:\n" + "\n".join(
        f"{path}: {sentence}" for path, found in english.items() for sentence in found
    )


async def test_the_login_page_reads_in_dutch_for_a_dutch_browser(harness: Harness) -> None:
    """Before logging in, the browser's language decides."""
    async with harness.browser() as browser:
        page = await browser.get("/login", headers={"Accept-Language": "nl-NL,nl;q=0.9"})
    assert english_sentences(page.text) == []
    assert page.status_code == httpx.codes.OK
