"""`smsdesk inbox`: inbound SMS, above all those not recognised as meant for us."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Annotated, Any

import typer
from rich.table import Table

from smsdesk.commands.common import (
    AssumeYes,
    DatabaseUrl,
    DataDir,
    DryRun,
    confirm_bulk,
    fail,
    open_service,
    out,
    when,
)
from smsdesk.conversations.requests import NotFound
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.inbound import actions
from smsdesk.store import inbound as store

app = typer.Typer(help="Inbound SMS (unrecognised ones by default).", no_args_is_help=True)


@app.command("list")
def list_inbound(
    state: Annotated[
        str, typer.Option(help="unrecognised, invalid, request, opt_out, opt_in, pending or all.")
    ] = "unrecognised",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The newest inbound SMS in a state."""
    service = open_service(data_dir, database_url)
    with service.engine.connect() as conn:
        rows = store.list_inbound(conn, state=None if state == "all" else state, limit=limit)
    table = Table("id", "received", "from", "state", "text", "reason")
    for row in rows:
        table.add_row(
            row.id, when(row.received_at), row.sender, row.state, row.body, row.reason or ""
        )
    out.print(table)


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    try:
        asyncio.run(coroutine)
    except (NotFound, actions.Conflict) as exc:
        fail(str(exc))
    except DomainError as exc:
        fail(exc.message)


@app.command("assign")
def assign(
    inbound_id: str,
    request: Annotated[str | None, typer.Option(help="Add it to this request.")] = None,
    customer: Annotated[str | None, typer.Option(help="Take it as from this customer.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Accept an unrecognised SMS: into a request, for a customer, or (neither) for its sender."""
    service = open_service(data_dir, database_url)
    _run(
        actions.assign_inbound(
            service, inbound_id, customer_id=customer, request_id=request, actor=Actor.cli()
        )
    )
    out.print("assigned")


@app.command("delete")
def delete(inbound_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Remove an unrecognised or invalid SMS from the list."""
    service = open_service(data_dir, database_url)
    _run(actions.delete_inbound(service, inbound_id, Actor.cli()))
    out.print("deleted")


@app.command("bulk-delete")
def bulk_delete(
    sender: Annotated[str | None, typer.Option(help="Only SMS whose sender holds this.")] = None,
    text: Annotated[str | None, typer.Option(help="Only SMS whose text holds this.")] = None,
    dry_run: DryRun = False,
    yes: AssumeYes = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete every unrecognised SMS matching the filter, 500 per transaction."""
    service = open_service(data_dir, database_url)
    with service.engine.connect() as conn:
        count = store.count_inbound(conn, state="unrecognised", sender_part=sender, text=text)
    counted = f"{count} unrecognised SMS to delete"
    if not confirm_bulk(
        count, counted, f"Delete {count} unrecognised SMS?", dry_run=dry_run, yes=yes
    ):
        return
    deleted = asyncio.run(
        actions.delete_matching(service, Actor.cli(), sender_part=sender, text=text)
    )
    out.print(f"{deleted} deleted")
