"""Every screen of the web interface, and a detector of English sentences on a Dutch page."""

from __future__ import annotations

import importlib
import pkgutil
import re
from html.parser import HTMLParser

import smsdesk.web.ui

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
            assert not missing, f"{route.path}: give {missing} a value"
            found.append(route.path.format(**ids) + QUERIES.get(route.path, ""))
    return sorted(set(found))
