"""Running `smsdesk` commands in-process from tests, and an SMS arriving as the service would
store and process it."""

from __future__ import annotations

import time
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.commands.common import open_service
from smsdesk.domain.ids import new_id
from smsdesk.domain.sms import InboundSms
from smsdesk.inbound.pipeline import process_pending
from smsdesk.store.inbound import inbound_row, insert_new
from smsdesk.store.tables import inbound_messages


def cli_runner(data: Path, columns: int = 200, **env: str) -> CliRunner:
    """A runner whose commands use the data directory `data` (and any other `SMSDESK_*`)."""
    return CliRunner(env={"SMSDESK_DATA_DIR": str(data), "COLUMNS": str(columns), **env})


def ok(runner: CliRunner, *args: str) -> str:
    """Run `smsdesk *args`; it must succeed; answers what it printed."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def fails(runner: CliRunner, *args: str) -> str:
    """Run `smsdesk *args`; it must fail; answers what it printed on stderr."""
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0, result.output
    return result.stderr


def receive(data: Path, sender: str, text: str) -> str:
    """Store an inbound SMS and process it, as a running service would; answers the request it
    opened or joined, else the inbound id."""
    service = open_service(data, None)
    row = inbound_row("simulator", InboundSms(new_id(), sender, "+3197010", text), time.time())
    service.writer.run_sync(lambda c: insert_new(c, [row]))
    config = service.settings.load()
    service.writer.run_sync(
        lambda c: process_pending(
            c, config, service.events, time.time(), reply=service.confirmation_sms
        )
    )
    with service.engine.connect() as conn:
        state = conn.execute(
            sa.select(inbound_messages.c.request_id, inbound_messages.c.state).where(
                inbound_messages.c.id == row["id"]
            )
        ).one()
    service.close()
    return str(state.request_id or row["id"])
