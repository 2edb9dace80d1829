"""The reply box's live SMS counter (web/static/smscount.js) against the Python rules."""

from __future__ import annotations

import random
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Dialog, Page, expect

import smsdesk.web
from smsdesk.domain import encoding
from smsdesk.domain.encoding import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    GSM7_PART,
    GSM7_SINGLE,
    UCS2_PART,
    UCS2_SINGLE,
    Encoding,
    analyse,
    gsm7_suggestion,
    to_gsm7_septets,
    ucs2_characters,
)

SCRIPT = Path(smsdesk.web.__file__).parent / "static" / "smscount.js"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>reply</title>
<script src="smscount.js"></script></head>
<body>
<textarea id="reply" data-sms-counter="reply-count"></textarea>
<div id="reply-count"
     data-template="{units} characters · {segments} SMS · {encoding}"
     data-ucs2-label="These characters force UCS-2 (70 per SMS):"
     data-replace-label="Replace typographic characters"
     data-gsm7-name="GSM-7" data-ucs2-name="UCS-2"></div>
<div id="later"></div>
</body></html>
"""

ASCII = [chr(c) for c in range(0x20, 0x7F)] + ["\n", "\r"]
GSM_BASIC = sorted(set(GSM7_BASIC) - {"\x1b"})
GSM_EXTENSION = sorted(GSM7_EXTENSION)
# Every key of the Python replacement table, so a new entry there fails parity until the JS
# table has it too.
TYPOGRAPHIC = sorted(encoding._TYPOGRAPHIC)
NOT_GSM = ["ç", "\x1b", "ą", "Ж", "中", "文", "😀", "👍🏽", "𝄞", "\u200b", "\t", "\x00"]
LENGTHS = [0, 1, 2, 66, 67, 68, 69, 70, 71, 134, 135, 152, 153, 154, 159, 160, 161, 305, 306]
LENGTHS += [307, 308, 459, 460, 1000]


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output free of access logs."""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A loopback HTTP server for a page with the reply box and a copy of smscount.js."""
    root = tmp_path_factory.mktemp("site")
    (root / "index.html").write_text(PAGE, encoding="utf-8")
    shutil.copy(SCRIPT, root / "smscount.js")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def page(browser: Browser, site: str) -> Iterator[Page]:
    """A fresh page with the reply box, counter attached."""
    context = browser.new_context()
    opened = context.new_page()
    opened.goto(site)
    opened.wait_for_function("() => window.SmsCount !== undefined")
    try:
        yield opened
    finally:
        context.close()


def _random_text(rng: random.Random) -> str:
    """A text whose length sits near an SMS boundary, drawn from one kind of character pool."""
    length = max(0, rng.choice(LENGTHS) + rng.choice([-1, 0, 0, 0, 1]))
    kind = rng.choice(["ascii", "gsm", "gsm", "typographic", "mixed"])
    pool = {
        "ascii": ASCII,
        "gsm": ASCII + GSM_BASIC + GSM_EXTENSION * 3,
        "typographic": ASCII + GSM_EXTENSION + TYPOGRAPHIC,
        "mixed": ASCII + GSM_BASIC + GSM_EXTENSION + TYPOGRAPHIC + NOT_GSM * 3,
    }[kind]
    chars = [rng.choice(pool) for _ in range(length)]
    if kind == "gsm" and chars and rng.random() < 0.3:
        # One stray character turns a long GSM-7 text into UCS-2.
        chars[rng.randrange(len(chars))] = rng.choice(NOT_GSM)
    return "".join(chars)


def _edge_texts() -> list[str]:
    """Hand-picked texts at the split points: escape pairs and surrogate pairs at the edge."""
    texts = ["", "\x1b", "\f", "\r\n", "ç", "Ç", "\u00a0", "…", "😀", "€" * 80, "€" * 81]
    texts += ["a" * n for n in (159, 160, 161, 306, 307)]
    texts += ["a" * 152 + "€" + "a" * 10, "a" * 153 + "€" * 5, "€" * 77 + "a" * 8]
    texts += ["ç" + "a" * 65 + "😀" + "a" * 10, "😀" * 35, "😀" * 36, "😀" * 34 + "x"]
    texts += ["ç" * 70, "ç" * 71, "中" * 134, "中" * 135, "a" * 66 + "😀" * 3]
    texts += list(GSM_BASIC) + GSM_EXTENSION + TYPOGRAPHIC + NOT_GSM
    texts.append("".join(TYPOGRAPHIC))
    return texts


def _expected(text: str) -> dict[str, Any]:
    """What the JS should say about `text`, from the Python module."""
    result = analyse(text)
    gsm7 = result.encoding is Encoding.GSM7
    single, part = (GSM7_SINGLE, GSM7_PART) if gsm7 else (UCS2_SINGLE, UCS2_PART)
    per_segment = part if result.segments > 1 else single
    last = result.parts[-1] if result.parts else ""
    last_units = len(to_gsm7_septets(last)) if gsm7 else len(last.encode("utf-16-le")) // 2
    return {
        "encoding": result.encoding.value,
        "segments": result.segments,
        "units": result.units,
        "perSegment": per_segment,
        "remaining": per_segment - last_units,
        "ucs2Chars": list(ucs2_characters(text)),
        "parts": list(result.parts),
        "suggestion": gsm7_suggestion(text),
    }


def test_js_counts_like_python(page: Page) -> None:
    """For a few hundred texts, SmsCount.analyse/suggest agree field by field with Python."""
    rng = random.Random(20240611)
    texts = _edge_texts() + [_random_text(rng) for _ in range(400)]
    answers = page.evaluate(
        """texts => texts.map(text => {
            const result = window.SmsCount.analyse(text);
            result.suggestion = window.SmsCount.suggest(text);
            return result;
        })""",
        texts,
    )
    assert len(answers) == len(texts)
    mismatches = []
    for text, answer in zip(texts, answers, strict=True):
        expected = _expected(text)
        for field, value in expected.items():
            if answer.get(field) != value:
                mismatches.append((text[:40], field, value, answer.get(field)))
    assert mismatches[:10] == []
    kinds = {(a["encoding"], a["segments"] > 1) for a in answers}
    assert kinds == {("gsm7", False), ("gsm7", True), ("ucs2", False), ("ucs2", True)}


def test_typographic_text_is_flagged_and_replaced(page: Page) -> None:
    """Curly quotes force UCS-2 and are marked; the button turns the text into GSM-7."""
    typed = "Prijs 10 € “quotes”"
    fixed = 'Prijs 10 € "quotes"'
    assert (analyse(typed).encoding, analyse(typed).units) == (Encoding.UCS2, 19)
    assert (analyse(fixed).encoding, analyse(fixed).units) == (Encoding.GSM7, 20)
    output = page.locator("#reply-count")

    page.locator("#reply").press_sequentially(typed)

    expect(output).to_have_attribute("data-encoding", "ucs2")
    expect(output).to_have_attribute("data-units", "19")
    expect(output).to_have_attribute("data-segments", "1")
    expect(output.locator(".sms-count")).to_have_text("19 characters · 1 SMS · UCS-2")
    expect(output).to_contain_text("These characters force UCS-2 (70 per SMS):")
    expect(output.locator("mark.ucs2-char")).to_have_text(["“", "”"])

    output.locator("button.sms-replace").click()

    expect(page.locator("#reply")).to_have_value(fixed)
    expect(output).to_have_attribute("data-encoding", "gsm7")
    expect(output).to_have_attribute("data-units", "20")
    expect(output.locator(".sms-count")).to_have_text("20 characters · 1 SMS · GSM-7")
    expect(output.locator("mark.ucs2-char")).to_have_count(0)
    expect(output.locator("button.sms-replace")).to_have_count(0)


def test_markup_in_the_text_stays_text(page: Page) -> None:
    """Typed markup is counted as characters and never becomes elements or runs."""
    dialogs: list[str] = []

    def record(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    typed = "<script>alert(1)</script><img src=x onerror=alert(2)>“<b>x</b>”"
    expected = analyse(typed)
    output = page.locator("#reply-count")

    page.fill("#reply", typed)

    expect(output).to_have_attribute("data-units", str(expected.units))
    expect(output.locator("mark.ucs2-char")).to_have_text(["“", "”"])
    expect(output.locator("script, img, b")).to_have_count(0)
    expect(page.locator("#reply")).to_have_value(typed)
    output.locator("button.sms-replace").click()
    expect(page.locator("#reply")).to_have_value(gsm7_suggestion(typed))
    expect(output).to_have_attribute("data-encoding", "gsm7")
    expect(output.locator("script, img, b")).to_have_count(0)
    assert page.locator("img").count() == 0
    assert dialogs == []


@pytest.mark.parametrize(
    ("text", "segments"),
    [("a" * 160, 1), ("a" * 161, 2), ("a" * 159 + "€", 2), ("a" * 158 + "€", 1)],
    ids=["160", "161", "159+euro", "158+euro"],
)
def test_segment_boundary(page: Page, text: str, segments: int) -> None:
    """A GSM-7 text of 160 septets is one SMS; one septet more (an escape counts two) is two."""
    assert analyse(text).segments == segments
    output = page.locator("#reply-count")

    page.fill("#reply", text)

    expect(output).to_have_attribute("data-encoding", "gsm7")
    expect(output).to_have_attribute("data-segments", str(segments))
    expect(output.locator(".sms-count")).to_have_text(
        f"{analyse(text).units} characters · {segments} SMS · GSM-7"
    )


def test_attach_enhances_a_box_added_later(page: Page) -> None:
    """`SmsCount.attach(root)` enhances a reply box inserted after the page loaded, once."""
    page.evaluate(
        """() => {
            const later = document.getElementById("later");
            later.innerHTML = '<textarea id="late" data-sms-counter="late-count"></textarea>'
                + '<p id="late-count" data-template="{units}/{perSegment}, {remaining} left"></p>';
            window.SmsCount.attach(later);
            window.SmsCount.attach(later);
        }"""
    )
    output = page.locator("#late-count")
    expect(output).to_have_text("0/160, 160 left")

    page.fill("#late", "a" * 170)

    expect(output).to_have_text("170/153, 136 left")
    expect(output).to_have_attribute("data-segments", "2")
    expect(page.locator("#reply-count")).to_have_attribute("data-segments", "0")
