"""Refusals the server writes reach screens in Dutch: each `DomainError` message of the parts
behind the agents' screens (requests, conversations, customers, the unrecognised SMS) has a
Dutch string, or, when it carries values, a template in `field_errors.TEMPLATES` with one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from smsdesk.web.ui.field_errors import TEMPLATES
from smsdesk.web.ui.i18n import catalogue

SRC = Path(__file__).resolve().parents[2] / "src" / "smsdesk"
SCREENS_SOURCES = [
    *sorted((SRC / "conversations").glob("*.py")),
    *sorted((SRC / "customers").glob("*.py")),
    SRC / "inbound" / "actions.py",
    SRC / "outbox" / "accept.py",
    SRC / "domain" / "text.py",
    SRC / "domain" / "phone.py",
    SRC / "domain" / "encoding.py",
    SRC / "store" / "customers.py",
]


# Refusals only the API gives: agents are told of an opt-out in their own words (optouts.py).
API_ONLY = frozenset(
    {
        "{} opted out of SMS (replied with a STOP keyword) and receives none. Send it only if "
        "it is transactional (e.g. a one-time code), with 'transactional': true and an API key "
        "allowed to do so."
    }
)


def _shape(text: str) -> str:
    """A message with every placeholder as {}: the f-string's and the template's agree."""
    return re.sub(r"\{[^{}]*\}", "{}", text)


def refusals() -> list[tuple[str, str]]:
    """(message or f-string shape, where) of every DomainError raised in those sources."""
    found = []
    for path in SCREENS_SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "DomainError"):
                continue
            where = f"{path.relative_to(SRC)}:{node.lineno}"
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((first.value, where))
            elif isinstance(first, ast.JoinedStr):
                parts = [v.value if isinstance(v, ast.Constant) else "{}" for v in first.values]
                shape = "".join(str(p) for p in parts)
                if shape not in API_ONLY:
                    found.append((shape, where))
    return found


def test_the_refusals_are_found() -> None:
    texts = [text for text, _ in refusals()]
    assert "Give a customer or a mobile number." in texts
    assert "The {} cannot be empty." in texts


@pytest.mark.parametrize(("message", "where"), refusals(), ids=lambda v: str(v)[:40])
def test_each_refusal_has_dutch(message: str, where: str) -> None:
    dutch = catalogue("nl")
    if "{}" in message:
        shapes = {_shape(t): t for t in TEMPLATES}
        assert message in shapes, f"{where}: add a template for {message!r} to TEMPLATES"
        template = shapes[message]
        entry = dutch.get(template)
        assert entry and entry.string, f"{where}: no Dutch for the template {template!r}"
    else:
        entry = dutch.get(message)
        assert entry and entry.string, f"{where}: no Dutch for {message!r}"


def test_a_refusal_with_values_reads_in_dutch() -> None:
    """The values stay as they were; the sentence around them is Dutch."""
    from smsdesk.web.ui.field_errors import translate_error
    from smsdesk.web.ui.i18n import translations

    dutch = translations("nl").gettext
    assert translate_error("+31612345678 belongs to another customer (Anna de Vries).", dutch) == (
        "+31612345678 hoort bij een andere klant (Anna de Vries)."
    )
    assert translate_error("There is no group 'Balie'.", dutch) == "Er is geen groep 'Balie'."
