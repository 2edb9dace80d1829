"""`smsdesk requests`: requests created from SMS, their conversations, and replying by SMS."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.table import Table

from smsdesk.commands.common import DatabaseUrl, DataDir, fail, open_service, out, when
from smsdesk.commands.groups import assign_request, print_view
from smsdesk.conversations import actions
from smsdesk.conversations import requests as repo
from smsdesk.conversations.start import NewConversation, start_conversation
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError

app = typer.Typer(help="Requests created from SMS, and replies.", no_args_is_help=True)
app.command("assign")(assign_request)


@app.command("list")
def list_requests(
    status: Annotated[str | None, typer.Option(help="open, pending or closed.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    view: Annotated[
        str | None, typer.Option(help="mine, unassigned, my_groups, waiting or all.")
    ] = None,
    user: Annotated[str | None, typer.Option(help="Whose view (a username).")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The newest requests; with --view, an overview as --user sees it (● unread)."""
    service = open_service(data_dir, database_url)
    if view is not None:
        print_view(service, view, user, limit)
        return
    with service.engine.connect() as conn:
        rows = repo.list_requests(conn, repo.RequestFilter(status), before_id=None, limit=limit)
    table = Table("id", "status", "customer", "title", "last activity")
    for row in rows:
        table.add_row(
            row.id, row.status, row.customer_name or "", row.title, when(row.last_activity_at)
        )
    out.print(table)


@app.command("show")
def show_request(
    request_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """A request and its conversation."""
    service = open_service(data_dir, database_url)
    with service.engine.connect() as conn:
        try:
            row = repo.get_request(conn, request_id)
        except repo.NotFound as exc:
            fail(str(exc))
            return
        entries = repo.conversation(conn, request_id)
    out.print(
        f"{row.title}\n{row.status} · {row.category} · {row.priority} · "
        f"{row.customer_name or row.customer_id}",
        markup=False,
    )
    for entry in entries:
        arrow = "←" if entry["direction"] == "in" else "→"
        state = "" if entry["direction"] == "in" else f" [{entry['status']}]"
        out.print(
            f"{when(entry['at'])} {arrow} {entry['number'] or ''}{state}: {entry['body']}",
            markup=False,
        )


@app.command("reply")
def reply(
    request_id: str,
    text: Annotated[str, typer.Option(help="The answer, sent by SMS to the customer.")],
    author: Annotated[str, typer.Option(help="Your name, shown in the conversation.")] = "cli",
    status: Annotated[
        str | None, typer.Option(help="Also set the status: open, pending or closed.")
    ] = None,
    transactional: Annotated[bool, typer.Option(help="Send even if the number opted out.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Queue an SMS answer; a running `serve` or `worker` sends it."""
    service = open_service(data_dir, database_url)
    try:
        row = asyncio.run(
            actions.reply(
                service,
                request_id,
                text,
                author=author,
                status=status,
                transactional=transactional,
            )
        )
    except (repo.NotFound, DomainError) as exc:
        fail(exc.message if isinstance(exc, DomainError) else str(exc))
        return
    out.print(f"{row['id']}  {row['recipient']}  queued", markup=False)


@app.command("start")
def start(
    number: Annotated[str, typer.Argument(help="The customer's mobile number, e.g. 0612345678.")],
    text: Annotated[str, typer.Argument(help="The first SMS of the conversation.")],
    title: Annotated[str | None, typer.Option(help="Else the text's first line.")] = None,
    group: Annotated[str | None, typer.Option(help="A group's id or name.")] = None,
    owner: Annotated[str | None, typer.Option(help="The owner's username.")] = None,
    author: Annotated[str, typer.Option(help="Your name, shown in the conversation.")] = "cli",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Start a conversation: a new request whose first message is an SMS to NUMBER."""
    service = open_service(data_dir, database_url)
    wanted = NewConversation(text=text, number=number, title=title, group=group, owner=owner)
    try:
        started = asyncio.run(
            start_conversation(service, wanted, author=author, audit=(service.trail, Actor.cli()))
        )
    except (repo.NotFound, DomainError) as exc:
        fail(exc.message if isinstance(exc, DomainError) else str(exc))
        return
    out.print(f"{started.request_id}  {started.message['recipient']}  queued", markup=False)


@app.command("set")
def set_fields(
    request_id: str,
    status: Annotated[str | None, typer.Option(help="open, pending or closed.")] = None,
    title: Annotated[str | None, typer.Option()] = None,
    category: Annotated[str | None, typer.Option()] = None,
    priority: Annotated[str | None, typer.Option(help="low, normal, high or urgent.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a request's status, title, category or priority."""
    changes = {
        k: v
        for k, v in {
            "status": status,
            "title": title,
            "category": category,
            "priority": priority,
        }.items()
        if v is not None
    }
    service = open_service(data_dir, database_url)
    try:
        service.writer.run_sync(
            lambda c: repo.update_request(c, request_id, changes, service.clock())
        )
    except (repo.NotFound, DomainError) as exc:
        fail(exc.message if isinstance(exc, DomainError) else str(exc))
        return
    out.print("saved")
