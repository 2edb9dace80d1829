"""`smsdesk connections`: provider accounts, each a module with its own settings and limits.

Secrets are never printed (`********` when set). On `add` and `set`, a module field is given as
`settings.<field>=<value>` or just `<field>=<value>`; a secret given blank keeps its value.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn

import typer
from rich.markup import escape
from rich.table import Table

from smsdesk.commands.common import (
    DatabaseUrl,
    DataDir,
    err,
    fail,
    open_service,
    out,
    public_url_option,
)
from smsdesk.connection_edits import (
    LIMIT_FIELDS,
    callback_urls,
    changes_of,
    check_connection,
    shown,
)
from smsdesk.domain.audit import Actor
from smsdesk.domain.connections import Connection
from smsdesk.domain.errors import DomainError
from smsdesk.domain.settings import ConfigurationInvalid
from smsdesk.service import Service
from smsdesk.store import connection_health
from smsdesk.store.connections import ConnectionChanged, ConnectionNotFound

app = typer.Typer(help="Connections: provider accounts messages go through.", no_args_is_help=True)

Wanted = Annotated[str, typer.Argument(help="The connection's id or name.")]
Assignments = Annotated[
    list[str] | None,
    typer.Argument(help="FIELD=VALUE, e.g. rate_limit=10 enabled=false settings.username=me"),
]


def _stop(exc: Exception) -> NoReturn:
    if isinstance(exc, ConfigurationInvalid):
        for error in exc.errors:
            err.print(f"[red]{escape(error.field)}[/red]: {escape(error.message)}")
        raise typer.Exit(1)
    fail(escape(getattr(exc, "message", str(exc))))
    raise typer.Exit(1)


_ERRORS = (ConfigurationInvalid, DomainError, ConnectionNotFound, ConnectionChanged)


def _found(service: Service, wanted: str) -> Connection:
    connection = service.settings.connections.get(wanted)
    if connection is None:
        fail(f"There is no connection '{escape(wanted)}'.")
        raise typer.Exit(1)
    return connection


def _value(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def parsed(assignments: list[str] | None) -> dict[str, Any]:
    """FIELD=VALUE items as a submitted connection; unknown names are module fields."""
    body: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    for item in assignments or []:
        key, sep, value = item.partition("=")
        if not sep:
            fail(f"'{escape(item)}' is not FIELD=VALUE.")
        key = key.strip()
        if key.startswith("settings."):
            settings[key.removeprefix("settings.")] = _value(value)
        elif key in ("name", "module", *LIMIT_FIELDS):
            body[key] = _value(value)
        else:
            settings[key] = _value(value)
    if settings:
        body["settings"] = settings
    return body


def _callbacks(service: Service, connection: Connection) -> dict[str, str]:
    secret = service.settings.callback_secret()
    return callback_urls(service.public_url, secret, connection)


@app.command("list")
def list_connections(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every connection, the default first, with its circuit breaker's state."""
    service = open_service(data_dir, database_url)
    with service.engine.connect() as conn:
        health = connection_health.states(conn)
    table = Table("id", "name", "module", "default", "on", "rate/s", "state")
    for c in service.settings.connections.all():
        state = health[c.id].state if c.id in health else "closed"
        table.add_row(
            c.id,
            escape(c.name),
            c.module,
            "yes" if c.is_default else "",
            "yes" if c.enabled else "no",
            f"{c.rate_limit:g}",
            state,
        )
    out.print(table)


@app.command("show")
def show_connection(
    wanted: Wanted,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """One connection as JSON (secrets masked), with its callback URLs."""
    service = open_service(data_dir, database_url)
    connection = _found(service, wanted)
    body = {**shown(connection), "callbacks": _callbacks(service, connection)}
    sys.stdout.write(json.dumps(body, indent=2) + "\n")


@app.command("add")
def add_connection(
    name: Annotated[str, typer.Argument(help="A name, e.g. 'LINK Norway'.")],
    module: Annotated[str, typer.Argument(help="The module, e.g. linkmobility.")],
    assignments: Assignments = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a connection with its module's fields (FIELD=VALUE)."""
    service = open_service(data_dir, database_url)
    body = {**parsed(assignments), "name": name, "module": module}
    try:
        made = service.settings.connections.create(check_connection(body, None), Actor.cli())
    except _ERRORS as exc:
        _stop(exc)
    out.print(f"added {escape(made.name)} ({made.id})")


@app.command("set")
def set_connection(
    wanted: Wanted,
    assignments: Assignments = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change some fields of a connection; the rest stays as it is."""
    service = open_service(data_dir, database_url)
    stored = _found(service, wanted)
    try:
        checked = check_connection(parsed(assignments), stored)
        service.settings.connections.update(stored.id, changes_of(checked), Actor.cli())
    except _ERRORS as exc:
        _stop(exc)
    out.print("saved")


@app.command("remove")
def remove_connection(
    wanted: Wanted, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Remove a connection (not the default, nor one a route names or messages wait for)."""
    service = open_service(data_dir, database_url)
    try:
        service.settings.connections.delete(_found(service, wanted).id, Actor.cli())
    except _ERRORS as exc:
        _stop(exc)
    out.print("removed")


@app.command("default")
def default_connection(
    wanted: Wanted, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Make a connection the default: messages no route matches go through it."""
    service = open_service(data_dir, database_url)
    try:
        made = service.settings.connections.set_default(_found(service, wanted).id, Actor.cli())
    except _ERRORS as exc:
        _stop(exc)
    out.print(f"{escape(made.name)} is the default connection")


@app.command("test")
def test_connection(
    wanted: Wanted,
    to: Annotated[str, typer.Option(help="A mobile number.")],
    text: Annotated[str, typer.Option(help="Any text.")] = "smsdesk test",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    public_url: Annotated[
        str | None, public_url_option("URL of the running smsdesk (for the delivery report).")
    ] = None,
) -> None:
    """Send test: one SMS now through this connection, via the running smsdesk."""
    import httpx

    service = open_service(data_dir, database_url)
    connection = _found(service, wanted)
    url = (public_url or service.public_url).rstrip("/")
    _, plain = service.keys.create("cli test", "admin")
    try:
        response = httpx.post(
            f"{url}/api/v1/connections/{connection.id}/test",
            json={"to": to, "text": text},
            headers={"Authorization": f"Bearer {plain}"},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        fail(f"smsdesk is not reachable at {url} ({exc}); start it with: smsdesk serve")
        return
    finally:
        service.keys.revoke(plain.split("_")[1])
    body = response.json()
    if response.status_code != 200:
        fail(escape(body.get("error", {}).get("message", response.text)))
    if body.get("accepted"):
        out.print(f"accepted: message {body['id']}, provider id {body['provider_message_id']}")
    else:
        fail(f"refused: {escape(body['error']['message'])} (code {body['error']['code']})")
