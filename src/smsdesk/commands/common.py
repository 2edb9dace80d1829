"""What the `smsdesk` commands share: the database, dispatcher and logging options, consoles."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, NoReturn

import click
import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from smsdesk.process_config import AppConfig
from smsdesk.service import Service
from smsdesk.store.db import DatabaseUnavailable

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
WorkerId = Annotated[
    str | None,
    typer.Option(envvar="SMSDESK_WORKER_ID", help="Name of this dispatcher in leases and logs."),
]
LeaseSeconds = Annotated[
    float | None,
    typer.Option(
        envvar="SMSDESK_LEASE_SECONDS",
        help="How long a claimed message belongs to this dispatcher (default 60 s).",
    ),
]
PollInterval = Annotated[
    float | None,
    typer.Option(
        envvar="SMSDESK_POLL_INTERVAL", help="Longest wait between outbox scans (default 0.5 s)."
    ),
]
ClaimBatch = Annotated[
    int | None,
    typer.Option(envvar="SMSDESK_CLAIM_BATCH", help="Messages claimed per scan (default 500)."),
]
LogLevel = Annotated[
    str, typer.Option(envvar="SMSDESK_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR.")
]
LogFormat = Annotated[str, typer.Option(envvar="SMSDESK_LOG_FORMAT", help="json or text.")]


def public_url_option(help_text: str) -> Any:
    """The SMSDESK_PUBLIC_URL option; each command says in its own words what the URL is for."""
    return typer.Option(envvar="SMSDESK_PUBLIC_URL", help=help_text)


def make_config(data_dir: Path | None, database_url: str | None, **extra: Any) -> AppConfig:
    overrides = {
        k: v
        for k, v in {"data_dir": data_dir, "database_url": database_url, **extra}.items()
        if v is not None
    }
    try:
        return AppConfig(**overrides)
    except ValidationError as exc:
        fail(escape(_config_problems(exc)))


def _config_problems(exc: ValidationError) -> str:
    """One line naming each setting that is wrong, as the user wrote it (its variable)."""
    problems = []
    for error in exc.errors():
        name = "SMSDESK_" + "_".join(str(part) for part in error["loc"]).upper()
        problems.append(f"{name}={error['input']!r}: {error['msg']}")
    return "; ".join(problems)


def open_service(data_dir: Path | None, database_url: str | None) -> Service:
    """A service on an up-to-date schema, for commands that work on the database directly."""
    return start_service(make_config(data_dir, database_url), close_with_command=True)


def start_service(config: AppConfig, *, close_with_command: bool = False) -> Service:
    """A service on an up-to-date schema. A database that cannot be used (no driver, no
    server) or a data directory that cannot be made ends the command with one plain line."""
    try:
        service = Service(config)
    except DatabaseUnavailable as exc:
        fail(escape(str(exc)))
    except OSError as exc:
        fail(
            escape(
                f"cannot use the data directory {config.data_dir} ({exc.strerror or exc}); "
                "choose another with --data-dir / SMSDESK_DATA_DIR"
            )
        )
    context = click.get_current_context(silent=True)
    if close_with_command and context is not None:  # connections close when the command ends
        context.call_on_close(service.close)
    try:
        service.upgrade()
    except DatabaseUnavailable as exc:
        service.close()
        fail(escape(str(exc)))
    return service


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` (rich markup) as one error line, however wide, and end the command."""
    err.print(f"[red]error:[/red] {message}", markup=True, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


DryRun = Annotated[bool, typer.Option(help="Only count them.")]
AssumeYes = Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")]


def confirm_bulk(count: int, counted: str, question: str, *, dry_run: bool, yes: bool) -> bool:
    """Print `counted`; whether to go on: not for a dry run or nothing to do, and only once the
    user agrees to `question` (or gave --yes); a refusal ends the command."""
    out.print(counted)
    if dry_run or count == 0:
        return False
    if not yes and not typer.confirm(question):
        raise typer.Exit(1)
    return True


def when(ts: float | None) -> str:
    from smsdesk.domain.times import iso

    return iso(ts) or ""
