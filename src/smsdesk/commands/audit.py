"""`smsdesk audit`: check the audit trail's chain, list its entries, export them as CSV."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from smsdesk.commands.common import DatabaseUrl, DataDir, fail, open_service, out, when
from smsdesk.store import audit as store
from smsdesk.store import audit_export as export
from smsdesk.store.audit import AuditFilter

app = typer.Typer(
    help="The audit trail: who did what, and whether the record is intact.",
    no_args_is_help=True,
)

Action = Annotated[
    str | None,
    typer.Option(help="An action (login.failed) or every action of a kind (login.)."),
]
ActorName = Annotated[str | None, typer.Option("--actor", help="User, API key or account name.")]
ActorKind = Annotated[
    str | None, typer.Option("--actor-kind", help="user, api_key, cli or system.")
]
Since = Annotated[
    str | None, typer.Option(help="From this date or time (UTC unless given), e.g. 2026-05-01.")
]
Until = Annotated[str | None, typer.Option(help="Up to this date (inclusive) or time.")]


def _filter(
    action: str | None,
    actor: str | None,
    actor_kind: str | None,
    since: str | None,
    until: str | None,
) -> AuditFilter:
    try:
        return export.make_filter(
            action=action, actor=actor, actor_kind=actor_kind, since=since, until=until
        )
    except export.BadFilter as exc:
        fail(f"--{exc.field}: {exc.message}")
        raise


@app.command("verify")
def verify(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Check every entry's hash and link; exit 1 naming each break."""
    service = open_service(data_dir, database_url)
    try:
        with service.engine.connect() as conn:
            result = store.verify(conn, service.hash_key)
    finally:
        service.close()
    if result.intact:
        out.print(f"intact, {result.checked} entries checked", highlight=False)
        return
    for problem in result.problems:
        out.print(f"broken: {problem}", markup=False, highlight=False)
    fail(
        f"the audit trail is not intact ({len(result.problems)} problem(s), "
        f"{result.checked} entries checked)"
    )


@app.command("list")
def list_(
    action: Action = None,
    actor: ActorName = None,
    actor_kind: ActorKind = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, typer.Option(min=1, max=export.MAX_PAGE)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The newest entries first."""
    where = _filter(action, actor, actor_kind, since, until)
    service = open_service(data_dir, database_url)
    try:
        with service.engine.connect() as conn:
            rows = store.list_entries(conn, where, limit=limit)
    finally:
        service.close()
    if as_json:
        sys.stdout.write(json.dumps({"entries": [export.as_dict(r) for r in rows]}, indent=2))
        sys.stdout.write("\n")
        return
    table = Table("id", "when", "who", "action", "target", "details")
    for row in rows:
        who = f"{row.actor_kind}:{row.actor_name}" + (f" ({row.address})" if row.address else "")
        target = f"{row.target_kind or ''} {row.target_id or ''}".strip()
        table.add_row(str(row.id), when(row.at), who, row.action, target, row.details)
    out.print(table)


@app.command("export")
def export_csv(
    file: Annotated[Path, typer.Argument(help="The CSV file to write ('-' for standard output).")],
    action: Action = None,
    actor: ActorName = None,
    actor_kind: ActorKind = None,
    since: Since = None,
    until: Until = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Every matching entry, newest first, as CSV (with each entry's hash)."""
    where = _filter(action, actor, actor_kind, since, until)
    service = open_service(data_dir, database_url)
    count = 0
    try:
        handle = sys.stdout if str(file) == "-" else file.open("w", newline="", encoding="utf-8")
        try:
            handle.write(export.csv_header())
            for row in export.every_entry(service.engine, where):
                handle.write(export.csv_row(row))
                count += 1
        finally:
            if handle is not sys.stdout:
                handle.close()
    finally:
        service.close()
    if str(file) != "-":
        out.print(f"{count} entries written to {file}", highlight=False)
