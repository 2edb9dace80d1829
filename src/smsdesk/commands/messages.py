"""`smsdesk messages`: outbound messages and their timelines, for a look without the web UI."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from smsdesk.commands.common import DatabaseUrl, DataDir, fail, open_service, out
from smsdesk.store import messages as repo

app = typer.Typer(help="Look at messages.", no_args_is_help=True)


@app.command("list")
def messages_list(
    status: Annotated[str | None, typer.Option()] = None,
    module: Annotated[str | None, typer.Option()] = None,
    to: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 50,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The newest messages, optionally filtered."""
    service = open_service(data_dir, database_url)
    with service.engine.connect() as conn:
        rows = repo.list_messages(
            conn, repo.MessageFilter(status, module, to), before_id=None, limit=limit
        )
    table = Table("id", "to", "status", "module", "prio", "segments", "error")
    for r in rows:
        table.add_row(
            r.id, r.recipient, r.status, r.module, str(r.priority), str(r.segments), r.error or ""
        )
    out.print(table)


@app.command("show")
def messages_show(
    message_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """One message and its timeline."""
    from smsdesk.web.api.schemas import event_out, message_out

    service = open_service(data_dir, database_url)
    with service.engine.connect() as conn:
        row = repo.get_message(conn, message_id)
        if row is None:
            fail(f"there is no message '{message_id}'.")
        events = repo.get_timeline(conn, message_id)
    out.print_json(json.dumps({**message_out(row), "timeline": [event_out(e) for e in events]}))
