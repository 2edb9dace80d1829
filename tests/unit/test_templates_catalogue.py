"""Every refusal of a reply template has its Dutch, with the same placeholders and braces."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

from smsdesk.domain.templating import MissingVariable, UnknownVariable
from smsdesk.web.ui.i18n import catalogue, translations
from smsdesk.web.ui.template_picker import problem_text

SRC = Path(__file__).resolve().parents[2] / "src" / "smsdesk"
RAISERS = {"TemplateProblem", "InvalidTemplate", "__init__"}


def refusal_msgids() -> list[str]:
    """The English sentences the template errors are made from (their first argument)."""
    found: list[str] = []
    for path in (SRC / "domain" / "templating.py", SRC / "conversations" / "templates.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            first = node.args[0]
            if name in RAISERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append(first.value)
    return found


def test_the_refusals_are_found() -> None:
    assert len(refusal_msgids()) >= 15


@pytest.mark.parametrize("msgid", refusal_msgids())
def test_each_refusal_has_dutch_with_the_same_fields(msgid: str) -> None:
    dutch = catalogue("nl").get(msgid)
    assert dutch is not None and dutch.string, f"no Dutch for {msgid!r}"

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in string.Formatter().parse(text) if name}

    assert fields(str(dutch.string)) == fields(msgid)


def test_a_refusal_reads_in_dutch_with_its_values() -> None:
    """The values go into the Dutch sentence; braces stay single braces."""
    gettext = translations("nl").gettext
    assert problem_text(MissingVariable("customer.name"), gettext) == (
        "Het sjabloon heeft {customer.name} nodig, maar dat heeft hier geen waarde."
    )
    assert problem_text(MissingVariable("prompt:ordernummer"), gettext) == (
        "Vul 'ordernummer' in: het sjabloon vraagt erom."
    )
    assert problem_text(UnknownVariable("naam", 4), gettext).startswith(
        "Onbekende variabele {naam} op positie 4; gebruik {customer.name}"
    )
