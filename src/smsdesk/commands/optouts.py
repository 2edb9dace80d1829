"""`smsdesk optouts`: the numbers that do not receive SMS (they texted STOP, or were added)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from smsdesk.commands.common import DatabaseUrl, DataDir, err, fail, open_service, out, when
from smsdesk.customers import normalise_for_lookup
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.service import Service
from smsdesk.store import optouts
from smsdesk.store.optout_changes import change_by_person

app = typer.Typer(help="The opt-out list: numbers that receive no SMS.", no_args_is_help=True)

Number = Annotated[
    str, typer.Argument(help="A mobile number; without country code the default one is added.")
]


def _change(service: Service, raw: str, *, opted_out: bool) -> tuple[str, bool]:
    try:
        number = normalise_for_lookup(service, raw)
    except DomainError as exc:
        fail(exc.message)
        raise
    now = service.clock()
    changed = service.writer.run_sync(
        lambda conn: change_by_person(
            conn,
            service.trail,
            Actor.cli(),
            number,
            opted_out=opted_out,
            source="cli",
            now=now,
            events=service.events,
        )
    )
    return number, changed


@app.command("list")
def list_(
    search: Annotated[str | None, typer.Option("--search", "-s", help="Part of a number.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List opted-out numbers, newest first."""
    with open_service(data_dir, database_url).engine.connect() as conn:
        rows = optouts.list_opt_outs(conn, limit=limit, contains=search)
    table = Table("number", "since", "source", "keyword")
    for row in rows:
        table.add_row(row.number, when(row.created_at), row.source, row.keyword or "")
    out.print(table)
    if not rows:
        err.print("no numbers opted out" + (f" match '{search}'" if search else ""))


@app.command("add")
def add(number: Number, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Opt a number out: messages to it are refused (except transactional ones)."""
    e164, added = _change(open_service(data_dir, database_url), number, opted_out=True)
    out.print(f"{e164} opted out" if added else f"{e164} was already opted out", highlight=False)


@app.command("remove")
def remove(number: Number, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Take a number off the list so it receives SMS again."""
    e164, removed = _change(open_service(data_dir, database_url), number, opted_out=False)
    if not removed:
        fail(f"{e164} is not on the opt-out list.")
    out.print(f"{e164} removed from the opt-out list", highlight=False)
