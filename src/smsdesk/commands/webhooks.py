"""`smsdesk webhooks`: subscriptions of other systems to events, and their deliveries.

Deliveries queued here (replay) are sent by a running `serve` or `worker` within a second.
"""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import urlsplit

import typer
from rich.table import Table

from smsdesk.commands.common import DatabaseUrl, DataDir, err, fail, open_service, out, when
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.events import EVENT_TYPES
from smsdesk.webhooks_out.subscriptions import NotFound, ReplayRefused

app = typer.Typer(
    help="Webhooks to other systems (signed, retried, replayable).", no_args_is_help=True
)


@app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="Where to POST events (http:// or https://).")],
    event: Annotated[
        list[str],
        typer.Option(
            "--event", "-e", help=f"An event type (repeatable): {', '.join(EVENT_TYPES)}."
        ),
    ],
    description: Annotated[str, typer.Option(help="What the receiver is.")] = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Subscribe a URL; the generated signing secret is shown only now."""
    service = open_service(data_dir, database_url)
    try:
        sub, secret = service.webhooks.store.create(url, event, description)
    except DomainError as exc:
        fail(f"{exc.field}: {exc.message}")
        return
    service.audit(
        Actor.cli(),
        "webhook.created",
        target_kind="webhook",
        target_id=sub.id,
        details={"events": list(sub.events), "host": urlsplit(sub.url).hostname or ""},
    )
    err.print(
        f"webhook {sub.id} created for {', '.join(sub.events)}; its secret is shown only now:"
    )
    out.print(secret, markup=False)


@app.command("list")
def list_subscriptions(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every subscription, without its secret."""
    table = Table("id", "url", "events", "active", "description", "created")
    for sub in open_service(data_dir, database_url).webhooks.store.all():
        table.add_row(
            sub.id,
            sub.url,
            ",".join(sub.events),
            "yes" if sub.active else "no",
            sub.description,
            when(sub.created_at),
        )
    out.print(table)


@app.command("remove")
def remove(
    subscription_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Delete a subscription; its pending deliveries become dead."""
    service = open_service(data_dir, database_url)
    try:
        service.webhooks.store.delete(subscription_id)
    except NotFound as exc:
        fail(str(exc))
    service.audit(Actor.cli(), "webhook.deleted", target_kind="webhook", target_id=subscription_id)
    out.print("removed")


@app.command("deliveries")
def deliveries(
    subscription: Annotated[str | None, typer.Option(help="Only this subscription's.")] = None,
    status: Annotated[str | None, typer.Option(help="pending, delivered or dead.")] = None,
    limit: Annotated[int, typer.Option()] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="With bodies, as JSON.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The newest deliveries, optionally filtered."""
    from smsdesk.web.api.webhooks_out import delivery_out

    store = open_service(data_dir, database_url).webhooks.store
    try:
        rows = store.deliveries(subscription_id=subscription, status=status, limit=limit)
    except DomainError as exc:
        fail(exc.message)
        return
    if as_json:
        out.print_json(json.dumps([delivery_out(row) for row in rows]))
        return
    table = Table("id", "webhook", "event", "status", "attempts", "code", "last error", "created")
    for r in rows:
        table.add_row(
            r.id,
            r.subscription_id,
            r.event_type,
            r.status,
            str(r.attempts),
            str(r.last_status_code or ""),
            r.last_error or "",
            when(r.created_at),
        )
    out.print(table)


@app.command("replay")
def replay(delivery_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Queue a delivered or dead delivery's event again (same event id and body)."""
    store = open_service(data_dir, database_url).webhooks.store
    try:
        row = store.replay(delivery_id)
    except (NotFound, ReplayRefused) as exc:
        fail(str(exc))
        return
    out.print(f"{row.id}  queued (replay of {delivery_id}, event {row.event_id})")
