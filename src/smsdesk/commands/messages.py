"""`smsdesk messages`: outbound messages and their timelines, for a look without the web UI, and
`messages bulk` to cancel, resend or delete every message matching a filter."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.progress import Progress
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
)
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.message import Status
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.store import messages as repo
from smsdesk.store.outbox_admin import (
    Action,
    BulkAction,
    MessageSearch,
    bulk_search,
    count_messages,
)

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


@app.command("bulk")
def messages_bulk(
    action: Annotated[Action, typer.Argument(help="cancel, resend or delete.")],
    status: Annotated[
        list[Status] | None, typer.Option(help="Only messages in this status (repeatable).")
    ] = None,
    module: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[int | None, typer.Option(min=1, max=3)] = None,
    to: Annotated[str | None, typer.Option(help="Only messages to this number.")] = None,
    text: Annotated[str | None, typer.Option(help="Only messages whose text holds this.")] = None,
    dry_run: DryRun = False,
    yes: AssumeYes = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Cancel, resend or delete every message matching the filter, 500 per transaction."""
    service = open_service(data_dir, database_url)
    recipient = None
    if to:
        try:
            recipient = normalise_msisdn(to, service.settings.load().default_country_code)
        except DomainError as exc:
            fail(exc.message)
    search = MessageSearch(
        statuses=tuple(s.value for s in status) if status else None,
        module=module,
        priority=priority,
        recipient=recipient,
        text=text or None,
    )
    with service.engine.connect() as conn:
        count = count_messages(conn, bulk_search(search, action))
    counted = f"{count} messages to {action.value}"
    question = f"{action.value.capitalize()} {count} messages?"
    if not confirm_bulk(count, counted, question, dry_run=dry_run, yes=yes):
        return
    job = BulkAction(
        search, action, service.clock(), "command line", service.trail, Actor.cli(), service.events
    )
    with Progress(transient=True) as bar:
        task = bar.add_task(action.value, total=count)
        result = asyncio.run(job.run(service.writer, lambda seen: bar.update(task, completed=seen)))
    out.print(f"{result.done} done, {result.skipped} changed meanwhile and left alone")
