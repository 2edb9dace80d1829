"""`smsdesk routes`: the ordered rules that choose a message's connections, and explaining them.

A route matches on destination country, number prefix, whole number, sender, priority, API key
and message tag (each optional, several values separated by commas); the first enabled route
that matches names the connections, tried in order. The default connection is the last rule.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from smsdesk import route_edits
from smsdesk.commands.common import DatabaseUrl, DataDir, fail, open_service, out
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.routing import Route, check_price
from smsdesk.service import Service
from smsdesk.store.routes import RouteNotFound

app = typer.Typer(help="Routes: which connections a message goes through.", no_args_is_help=True)

Wanted = Annotated[str, typer.Argument(help="The route's id or name.")]
T = TypeVar("T")


def _list_option(help_text: str) -> object:
    return typer.Option(help=f"{help_text} Several: separate with commas; empty: any.")


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def _stop(exc: Exception) -> NoReturn:
    fail(escape(getattr(exc, "message", str(exc))))
    raise typer.Exit(1)


def _run(data_dir: Path | None, database_url: str | None, work: Callable[[Service], T]) -> T:
    service = open_service(data_dir, database_url)
    try:
        return work(service)
    except (DomainError, RouteNotFound) as exc:
        _stop(exc)


def _found(service: Service, wanted: str) -> Route:
    route = route_edits.get(service, wanted)
    if route is None:
        fail(f"There is no route '{escape(wanted)}'.")
        raise typer.Exit(1)
    return route


@app.command("list")
def list_routes(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every route in the order they are tried; the default connection comes last."""
    service = open_service(data_dir, database_url)
    names = {c.id: c.name for c in service.settings.connections.all()}
    table = Table("#", "id", "name", "on", "matches", "connections")
    for route in route_edits.all_routes(service):
        match = "; ".join(
            f"{field}={','.join(str(v) for v in getattr(route, field))}"
            for field in route_edits.LISTS
            if getattr(route, field)
        )
        table.add_row(
            str(route.position),
            route.id,
            escape(route.name),
            "yes" if route.enabled else "no",
            escape(match or "any"),
            escape(" → ".join(names.get(c, c) for c in route.connection_ids)),
        )
    default = next((c.name for c in service.settings.connections.all() if c.is_default), "")
    table.add_row("", "", "default", "yes", "any", escape(default))
    out.print(table)


@app.command("add")
def add_route(
    name: Annotated[str, typer.Argument(help="A name, e.g. Norway.")],
    connections: Annotated[
        str, typer.Option(help="Connection ids or names, in failover order, comma-separated.")
    ],
    countries: Annotated[str | None, _list_option("Countries, e.g. NO,SE.")] = None,
    prefixes: Annotated[str | None, _list_option("Number prefixes, e.g. +4790.")] = None,
    numbers: Annotated[str | None, _list_option("Whole numbers.")] = None,
    senders: Annotated[str | None, _list_option("Senders.")] = None,
    priorities: Annotated[str | None, _list_option("Priorities 1-3.")] = None,
    api_keys: Annotated[str | None, _list_option("API key ids.")] = None,
    tags: Annotated[str | None, _list_option("Message tags.")] = None,
    sender_override: Annotated[str | None, typer.Option(help="The sender they get.")] = None,
    price: Annotated[str | None, typer.Option(help="Price per segment, e.g. 0.075.")] = None,
    currency: Annotated[str | None, typer.Option(help="Its currency, e.g. EUR.")] = None,
    position: Annotated[int, typer.Option(help="Where it goes (1 = first); 0: last.")] = 0,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a route."""
    try:
        wanted_priorities = tuple(int(p) for p in _split(priorities))
        price_per_segment, currency = check_price(price, currency)
    except ValueError:
        fail("Give priorities as numbers 1, 2 or 3.")
        raise typer.Exit(1) from None
    except DomainError as exc:
        _stop(exc)
    route = Route(
        id="",
        name=name,
        position=position,
        countries=_split(countries),
        prefixes=_split(prefixes),
        numbers=_split(numbers),
        senders=_split(senders),
        priorities=wanted_priorities,
        api_key_ids=_split(api_keys),
        tags=_split(tags),
        connection_ids=_split(connections),
        sender_override=sender_override,
        price_per_segment=price_per_segment,
        currency=currency,
    )
    made = _run(
        data_dir, database_url, lambda s: route_edits.saved_route(s, Actor.cli(), route, None)
    )
    out.print(f"added {escape(made.name)} ({made.id}) at position {made.position}")


@app.command("remove")
def remove_route(
    wanted: Wanted, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Remove a route."""

    def work(service: Service) -> None:
        route_edits.delete(service, Actor.cli(), _found(service, wanted).id)

    _run(data_dir, database_url, work)
    out.print("removed")


@app.command("move")
def move_route(
    wanted: Wanted,
    step: Annotated[str, typer.Argument(help="up or down")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Move a route one place up or down."""
    if step not in ("up", "down"):
        fail("Say up or down.")

    def work(service: Service) -> None:
        route = _found(service, wanted)
        route_edits.moved(service, Actor.cli(), route.id, -1 if step == "up" else 1)

    _run(data_dir, database_url, work)
    out.print("moved")


@app.command("explain")
def explain_route(
    to: Annotated[str, typer.Argument(help="The recipient's number.")],
    sender: Annotated[str | None, typer.Option(help="The sender.")] = None,
    priority: Annotated[int | None, typer.Option(help="1, 2 or 3.")] = None,
    api_key: Annotated[str | None, typer.Option(help="The API key id.")] = None,
    tag: Annotated[str | None, typer.Option(help="The message tag.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Which route and connections a message would take now (JSON)."""
    message = {"to": to, "sender": sender, "priority": priority, "api_key_id": api_key, "tag": tag}
    answer = _run(data_dir, database_url, lambda s: route_edits.explained(s, message))
    sys.stdout.write(json.dumps(answer, indent=2) + "\n")
