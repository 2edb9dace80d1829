"""The import arrows docs/ARCHITECTURE.md draws, read from the source with `ast`.

Each rule names who may not import what; a failure lists every offending line, so a new import
that crosses a layer is caught at review time rather than found by a reader months later.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "smsdesk"
MIGRATIONS = PACKAGE / "store" / "migrations"

# SQLAlchemy names a feature package may hold as types while the store does the querying.
SQL_TYPES = frozenset({"Connection", "Engine", "Row", "RowMapping"})
# The event names and the EventSink protocol (events.py) are shared by the store and the features.
FEATURES = (
    "customers",
    "mailings",
    "conversations",
    "inbound",
    "outbox",
    "webhooks_out",
    "lifecycle",
    "cluster",
    "siblings",
    "live",
    "notify",
    "host",
    "events",
)


@dataclass(frozen=True)
class Import:
    """One import: `target` is the module named, `names` what was taken from it.

    `from smsdesk import service` also yields the module `smsdesk.service` itself, marked
    `expanded`, so a rule about a module sees it however it was imported.
    """

    importer: str
    target: str
    names: tuple[str, ...]
    where: str
    expanded: bool = False

    def __str__(self) -> str:
        taken = f" ({', '.join(self.names)})" if self.names else ""
        return f"{self.where}: {self.importer} -> {self.target}{taken}"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_in(
    source: str, importer: str, where: str, *, is_package: bool = False
) -> Iterator[Import]:
    """Every import in a module's source, at any depth (a lazy import in a function counts)."""
    package = importer if is_package else importer.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        at = f"{where}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(importer, alias.name, (), at)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = tuple(a.name for a in node.names)
            yield Import(importer, base, names, at)
            for name in names:
                yield Import(importer, f"{base}.{name}", (), at, expanded=True)


def all_imports() -> list[Import]:
    found: list[Import] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if MIGRATIONS in path.parents:
            continue
        where = str(path.relative_to(SRC.parent))
        source = path.read_text(encoding="utf-8")
        found += imports_in(source, module_name(path), where, is_package=path.name == "__init__.py")
    return found


def within(name: str, *prefixes: str) -> bool:
    """Whether a dotted module name is one of `prefixes` or inside one of them."""
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def ours(prefix: str) -> str:
    return f"smsdesk.{prefix}"


def builds_sql(imp: Import) -> bool:
    """Imports SQLAlchemy for more than the connection and row types it hands around."""
    if imp.expanded or not within(imp.target, "sqlalchemy"):
        return False
    return not imp.names or not set(imp.names) <= SQL_TYPES


Rule = Callable[[Import], bool]

RULES: dict[str, Rule] = {
    "the domain imports nothing of ours outside itself": lambda i: (
        within(i.importer, "smsdesk.domain")
        and within(i.target, "smsdesk")
        and i.target != "smsdesk"
        and not within(i.target, "smsdesk.domain")
    ),
    "providers import only the domain and the shared provider helpers": lambda i: (
        within(i.importer, "smsdesk.providers")
        and within(i.target, "smsdesk")
        and i.target != "smsdesk"
        and not within(i.target, "smsdesk.domain", "smsdesk.providers")
    ),
    "the store imports no provider module": lambda i: (
        within(i.importer, "smsdesk.store") and within(i.target, "smsdesk.providers")
    ),
    "the store imports nothing above it": lambda i: (
        within(i.importer, "smsdesk.store")
        and within(
            i.target,
            *(ours(p) for p in ("web", "commands", "cli", "service", *FEATURES[:-1])),
        )
    ),
    "web and commands never import SQLAlchemy": lambda i: (
        within(i.importer, "smsdesk.web", "smsdesk.commands", "smsdesk.cli")
        and within(i.target, "sqlalchemy")
    ),
    "only the store imports store/tables.py": lambda i: (
        not within(i.importer, "smsdesk.store") and within(i.target, "smsdesk.store.tables")
    ),
    "feature packages leave SQL to the store": lambda i: (
        within(i.importer, *(ours(p) for p in FEATURES)) and builds_sql(i)
    ),
    "only the web app and the commands import the service": lambda i: (
        within(i.target, "smsdesk.service")
        and not within(i.importer, "smsdesk.web", "smsdesk.commands", "smsdesk.cli")
    ),
    "the outbox does not import inbound": lambda i: (
        within(i.importer, "smsdesk.outbox") and within(i.target, "smsdesk.inbound")
    ),
    "inbound does not import the outbox": lambda i: (
        within(i.importer, "smsdesk.inbound") and within(i.target, "smsdesk.outbox")
    ),
    "customers and conversations do not import inbound": lambda i: (
        within(i.importer, "smsdesk.customers", "smsdesk.conversations")
        and within(i.target, "smsdesk.inbound")
    ),
    "the shipped fakes import only the domain and providers": lambda i: (
        within(i.importer, "smsdesk.testing")
        and within(i.target, "smsdesk")
        and i.target != "smsdesk"
        and not within(i.target, "smsdesk.domain", "smsdesk.providers", "smsdesk.testing")
    ),
    "nothing at runtime imports the tests": lambda i: within(i.target, "tests"),
}


@pytest.mark.parametrize("rule", list(RULES))
def test_no_import_crosses_a_layer(rule: str) -> None:
    """Each arrow the code map forbids is absent from the source."""
    crossing = {imp.where: str(imp) for imp in all_imports() if RULES[rule](imp)}
    assert not crossing, f"{rule}:\n" + "\n".join(crossing.values())


@pytest.mark.parametrize(
    ("importer", "source", "rule"),
    [
        ("smsdesk.domain.sms", "from smsdesk.providers.base import Provider", "the domain"),
        ("smsdesk.providers.cm", "from smsdesk.store import messages", "providers import"),
        (
            "smsdesk.store.reports",
            "import smsdesk.providers.registry",
            "the store imports no provider",
        ),
        ("smsdesk.web.api.messages", "from sqlalchemy import select", "web and commands"),
        (
            "smsdesk.commands.inbox",
            "from smsdesk.store.tables import inbound_messages",
            "only the store",
        ),
        ("smsdesk.outbox.reconcile", "import sqlalchemy as sa", "feature packages"),
        ("smsdesk.customers", "from smsdesk import service", "only the web app"),
        ("smsdesk.outbox.pool", "from ..inbound import pipeline", "the outbox does not"),
        ("smsdesk.inbound.pipeline", "def f():\n    from smsdesk.outbox import accept", "inbound"),
        ("smsdesk.conversations.x", "from smsdesk.inbound import recognise", "customers and"),
        ("smsdesk.testing.fakes.cm", "from smsdesk.store import db", "the shipped fakes"),
        ("smsdesk.service", "from tests.support.harness import Harness", "nothing at runtime"),
    ],
)
def test_each_rule_catches_the_import_it_forbids(importer: str, source: str, rule: str) -> None:
    """A forbidden import, written any of the ways Python allows, is reported by its rule."""
    (name,) = [r for r in RULES if r.startswith(rule)]
    found = list(imports_in(source, importer, "example.py"))
    assert any(RULES[name](imp) for imp in found)


def test_feature_packages_may_hold_connections() -> None:
    """Passing a Connection around is not building SQL."""
    found = imports_in("from sqlalchemy import Connection, Row", "smsdesk.outbox.x", "x.py")
    assert not any(RULES["feature packages leave SQL to the store"](imp) for imp in found)


def test_no_module_is_over_600_lines() -> None:
    """Small modules: a file past 600 lines holds more than one idea (migrations aside)."""
    long = {
        str(path.relative_to(SRC)): n
        for path in PACKAGE.rglob("*.py")
        if MIGRATIONS not in path.parents
        and (n := len(path.read_text(encoding="utf-8").splitlines())) > 600
    }
    assert not long


def test_the_command_line_only_assembles() -> None:
    """cli.py puts the command groups of commands/ together and holds none itself."""
    assert len((PACKAGE / "cli.py").read_text(encoding="utf-8").splitlines()) < 120
