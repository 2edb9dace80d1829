"""`smsdesk db`: schema maintenance, for deployments that migrate before starting the service."""

from __future__ import annotations

import typer

from smsdesk.commands.common import DatabaseUrl, DataDir, make_config, out, start_service

app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Create or migrate the database schema."""
    service = start_service(make_config(data_dir, database_url))
    service.close()
    out.print("database is up to date")
