"""Every refusal about routes, connections and spend has its Dutch, with the same fields."""

from __future__ import annotations

import ast
import string
from pathlib import Path

import pytest

from smsdesk.domain.routing import BAD_TAG, RouteProblem
from smsdesk.domain.spend_settings import REFUSALS
from smsdesk.web.ui.i18n import catalogue, translations

SRC = Path(__file__).resolve().parents[2] / "src" / "smsdesk"
FILES = ("domain/routing.py", "outbox/routing.py", "outbox/accept.py", "store/routes.py")


def route_msgids() -> list[str]:
    """The English sentences RouteProblem is raised with (its first argument)."""
    found: list[str] = [BAD_TAG]
    for name in FILES:
        for node in ast.walk(ast.parse((SRC / name).read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            first = node.args[0]
            if getattr(node.func, "id", None) == "RouteProblem" and isinstance(first, ast.Constant):
                found.append(str(first.value))
    return found


def test_the_refusals_are_found() -> None:
    assert len(route_msgids()) >= 15


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("msgid", route_msgids() + list(REFUSALS.values()))
def test_each_refusal_has_dutch_with_the_same_fields(msgid: str) -> None:
    dutch = catalogue("nl").get(msgid)
    assert dutch is not None and dutch.string, f"no Dutch for {msgid!r}"
    assert _fields(str(dutch.string)) == _fields(msgid)


def test_a_refusal_reads_in_dutch_with_its_values() -> None:
    problem = RouteProblem(
        "There is no connection '{name}'. Connections: {known}.",
        field="connection",
        name="x",
        known="default",
    )
    dutch = translations("nl").gettext(problem.msgid).format(**problem.params)
    assert dutch == "Er is geen verbinding 'x'. Verbindingen: default."
