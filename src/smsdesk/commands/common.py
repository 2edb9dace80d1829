"""What every `smsdesk` command shares: the data-directory and database options, consoles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from smsdesk.process_config import AppConfig
from smsdesk.service import Service

out = Console()
err = Console(stderr=True)

DataDir = Annotated[
    Path | None,
    typer.Option(envvar="SMSDESK_DATA_DIR", help="Directory for the SQLite file and keys."),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(envvar="SMSDESK_DATABASE_URL", help="SQLAlchemy URL, e.g. postgresql://…"),
]


def make_config(data_dir: Path | None, database_url: str | None, **extra: Any) -> AppConfig:
    overrides = {
        k: v
        for k, v in {"data_dir": data_dir, "database_url": database_url, **extra}.items()
        if v is not None
    }
    return AppConfig(**overrides)


def open_service(data_dir: Path | None, database_url: str | None) -> Service:
    """A service on an up-to-date schema, for commands that work on the database directly."""
    service = Service(make_config(data_dir, database_url))
    service.upgrade()
    return service


def fail(message: str, code: int = 1) -> None:
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def when(ts: float | None) -> str:
    from smsdesk.domain.times import iso

    return iso(ts) or ""
