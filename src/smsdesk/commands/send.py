"""`smsdesk send` and `smsdesk test`: SMS from the command line.

`send` queues messages in the outbox for a running dispatcher; `test` asks a running smsdesk to
send one message at once, so the provider's answer can be shown.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress

from smsdesk.commands.common import (
    DatabaseUrl,
    DataDir,
    err,
    fail,
    open_service,
    out,
    public_url_option,
)
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.outbox.accept import NewMessage, opted_out_refusals, prepare_message
from smsdesk.service import Service
from smsdesk.store import messages as repo

# Rows written to the outbox per transaction.
CHUNK = 1000


def register(app: typer.Typer) -> None:
    """Add `send` and `test` as top-level commands of `app`."""
    app.command()(send)
    app.command("test")(send_test)


def send(
    text: Annotated[str, typer.Option("--text", "-t", help="The message.")],
    to: Annotated[
        list[str] | None, typer.Option("--to", help="A mobile number (repeatable).")
    ] = None,
    to_file: Annotated[Path | None, typer.Option(help="A file with one number per line.")] = None,
    sender: Annotated[str | None, typer.Option(help="Overrides the configured sender.")] = None,
    priority: Annotated[int | None, typer.Option(help="1 (fastest), 2 or 3.")] = None,
    module: Annotated[str | None, typer.Option(help="Send through this module.")] = None,
    transactional: Annotated[
        bool,
        typer.Option(help="Send even to numbers that opted out (e.g. a one-time code)."),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Queue SMS in the outbox; a running `serve` or `worker` sends them."""
    numbers = list(to or [])
    if to_file is not None:
        numbers += [n.strip() for n in to_file.read_text().splitlines() if n.strip()]
    if not numbers:
        fail("give at least one --to number or a --to-file.")
    service = open_service(data_dir, database_url)
    messages = [NewMessage(number, text, sender, priority, module) for number in numbers]
    rows, problems = _queue(service, messages, transactional=transactional)
    for row in rows:
        out.print(
            f"{row['id']}  {row['recipient']}  queued  ({row['segments']} segment(s), "
            f"{row['encoding']})"
        )
    for problem in problems:
        err.print(f"[red]rejected[/red] {problem}")
    if problems:
        raise typer.Exit(1)


def _queue(
    service: Service, messages: list[NewMessage], *, transactional: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """Check each message as the API would, then queue the good ones in chunks.

    Returns the queued rows and one "number: reason" line per refused message.
    """
    config = service.settings.load()
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("Checking", total=len(messages))
        for message in messages:
            try:
                rows.append(
                    prepare_message(message, config, service.clock(), transactional=transactional)
                )
            except DomainError as exc:
                problems.append(f"{message.to}: {exc.message}")
            progress.advance(task)
        with service.engine.connect() as conn:
            refused = opted_out_refusals(conn, rows)
        problems += [f"{rows[i]['recipient']}: {e.message}" for i, e in refused.items()]
        rows = [row for i, row in enumerate(rows) if i not in refused]
        task = progress.add_task("Queueing", total=len(rows))
        for start in range(0, len(rows), CHUNK):
            chunk = rows[start : start + CHUNK]
            details = {"queued": len(chunk), "transactional": transactional}
            if start == 0:
                details["rejected"] = len(problems)
            service.writer.run_sync(partial(_insert, service, chunk, details))
            progress.advance(task, len(chunk))
    return rows, problems


def _insert(
    service: Service, rows: list[dict[str, Any]], details: dict[str, Any], conn: Any
) -> None:
    """Queue a chunk with its audit entry (the count; numbers and text stay in the messages)."""
    repo.insert_messages(conn, rows, "cli")
    service.trail.record(conn, Actor.cli(), "message.sent", target_kind="batch", details=details)


def send_test(
    to: Annotated[str, typer.Option(help="A mobile number.")],
    text: Annotated[str, typer.Option(help="Any text.")] = "smsdesk test",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    public_url: Annotated[
        str | None, public_url_option("URL of the running smsdesk (for the delivery report).")
    ] = None,
) -> None:
    """Send test: send one SMS now with the saved settings and show the provider's answer."""
    import httpx

    service = open_service(data_dir, database_url)
    url = (public_url or service.public_url).rstrip("/")
    keys = service.keys
    _, plain = keys.create("cli test", "admin")
    try:
        response = httpx.post(
            f"{url}/api/v1/settings/test",
            json={"to": to, "text": text},
            headers={"Authorization": f"Bearer {plain}"},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        fail(f"smsdesk is not reachable at {url} ({exc}); start it with: smsdesk serve")
        return
    finally:
        keys.revoke(plain.split("_")[1])
    body = response.json()
    if response.status_code != 200:
        fail(body.get("error", {}).get("message", response.text))
    if body.get("accepted"):
        out.print(f"accepted: message {body['id']}, provider id {body['provider_message_id']}")
    else:
        fail(f"refused: {body['error']['message']} (code {body['error']['code']})")
