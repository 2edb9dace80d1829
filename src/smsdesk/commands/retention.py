"""`smsdesk retention`: see what the nightly purge deletes, and run it by hand."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from smsdesk.commands.common import DatabaseUrl, DataDir, fail, open_service, out, when
from smsdesk.lifecycle.retention import LeaseHeld, next_run

app = typer.Typer(
    help="Retention: data older than the SMS configuration keeps is purged nightly.",
    no_args_is_help=True,
)

LABELS = {
    "requests": "closed requests",
    "outbound": "messages",
    "inbound": "inbound SMS",
    "timelines": "message timelines",
    "webhook_deliveries": "webhook deliveries",
    "unmatched_reports": "unmatched reports",
    "mailings": "finished mailings",
    "audit": "audit entries",
}


@app.command()
def preview(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """What a purge would delete now, per kind, with each cut-off date."""
    service = open_service(data_dir, database_url)
    rows = service.retention.preview()
    upcoming = next_run(service.retention.settings(), service.clock())
    if as_json:
        kinds = {
            p.kind: {"days": p.days, "cutoff": when(p.cutoff) or None, "count": n} for p, n in rows
        }
        out.print_json(json.dumps({"next_run": when(upcoming), "kinds": kinds}))
        return
    table = Table("kind", "days kept", "older than", "would be purged")
    for p, count in rows:
        kept = str(p.days) if p.days else "forever"
        table.add_row(LABELS[p.kind], kept, when(p.cutoff) or "-", str(count))
    out.print(table)
    out.print(f"next nightly run: {when(upcoming)}", highlight=False)


@app.command()
def run(
    batch: Annotated[int, typer.Option(min=1, max=100_000, help="Rows per transaction.")] = 500,
    pause: Annotated[float, typer.Option(min=0, help="Seconds to wait between two batches.")] = 0.0,
    share: Annotated[
        float,
        typer.Option(min=0.01, max=1.0, help="Share of the time the purge may hold the database."),
    ] = 0.5,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Purge now, in small batches, and print what went (once per cluster: if another
    process is purging, nothing is done)."""
    service = open_service(data_dir, database_url)
    service.retention.batch = batch
    service.retention.pause = pause
    service.retention.share = share
    try:
        result = service.retention.run()
    except LeaseHeld as held:
        fail(
            f"The purge is already running in {held.owner} (until {when(held.until)}); "
            "nothing was done. Try again when it has finished."
        )
        return
    table = Table("kind", "purged")
    for kind, count in result.purged.items():
        table.add_row(LABELS[kind], str(count))
    for name, count in result.housekeeping.items():
        table.add_row(name.replace("_", " "), str(count))
    out.print(table)
    seconds = result.finished_at - result.started_at
    out.print(f"done in {seconds:.1f} s", highlight=False)
