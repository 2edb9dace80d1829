"""An in-process smsdesk per test, on SQLite (and PostgreSQL where a test asks for it)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from tests.conftest import database_url
from tests.support.cli import cli_runner
from tests.support.harness import Harness, running_service
from tests.support.webui import create_user, log_in


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    """smsdesk on SQLite with the simulator reporting after 20 ms."""
    async with running_service(tmp_path) as h:
        await h.configure(module_settings={"simulator": {"report_delay": 0.02}})
        yield h


@pytest.fixture
async def any_db_harness(tmp_path: Path, engine: Engine) -> AsyncIterator[Harness]:
    """smsdesk on each database the suite runs against."""
    async with running_service(tmp_path, database_url(engine)) as h:
        await h.configure(module_settings={"simulator": {"report_delay": 0.02}})
        yield h


@pytest.fixture
async def admin(harness: Harness) -> AsyncIterator[httpx.AsyncClient]:
    """A browser logged in to the web interface as an administrator."""
    create_user(harness.service, "admin", "admin")
    async with harness.browser() as client:
        await log_in(client, "admin")
        yield client


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The data directory of the `smsdesk` commands a test runs."""
    return tmp_path / "data"


@pytest.fixture
def run(data: Path) -> CliRunner:
    """Runs `smsdesk` commands in-process on `data` (with tests.support.cli's ok and fails)."""
    return cli_runner(data)
