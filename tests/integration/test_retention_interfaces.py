"""Retention as users reach it: settings through the API, TOML and the screen, the
`smsdesk retention` commands, GET/POST /api/v1/retention and the dashboard."""

from __future__ import annotations

import json
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.commands.common import open_service
from smsdesk.store import jobs
from smsdesk.store.tables import messages
from smsdesk.testing import FakeClock
from tests.conftest import database_url
from tests.integration.test_retention import NOW, add_message, ids
from tests.support.harness import Harness, running_service
from tests.support.webui import create_user, csrf_of, log_in

SCREEN = "/preferences/general/sms"


@pytest.fixture
async def desk(tmp_path: Path, engine: Engine) -> AsyncIterator[Harness]:
    """smsdesk on each database, its clock stopped at NOW (08:00 UTC)."""
    async with running_service(tmp_path, database_url(engine), clock=FakeClock(NOW)) as h:
        yield h


async def test_api_saves_retention_field_by_field(desk: Harness) -> None:
    """A PUT of one retention field changes that field and keeps the others."""
    saved = await desk.put("/api/v1/settings", {"retention": {"outbound_days": 30}})
    assert saved.status_code == 200, saved.text
    await desk.put("/api/v1/settings", {"retention": {"hour": 4}})
    retention = (await desk.get("/api/v1/settings")).json()["retention"]
    assert retention["outbound_days"] == 30 and retention["hour"] == 4
    assert retention["timelines_days"] == 90 and retention["requests_days"] == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("outbound_days", -1),
        ("inbound_days", 1.5),
        ("audit_days", "a year"),
        ("timelines_days", True),
        ("hour", 24),
    ],
)
async def test_api_refuses_bad_retention_values_naming_the_field(
    desk: Harness, field: str, value: object
) -> None:
    """Negative, fractional, non-numeric and boolean values are a 422 that names the field;
    nothing is saved."""
    answer = await desk.put("/api/v1/settings", {"retention": {field: value}})
    assert answer.status_code == 422
    fields = answer.json()["error"]["fields"]
    assert [f["field"] for f in fields] == [f"retention.{field}"], fields
    assert (await desk.get("/api/v1/settings")).json()["retention"] == (
        await desk.get("/api/v1/retention")
    ).json()["settings"]
    assert (await desk.get("/api/v1/retention")).json()["settings"]["outbound_days"] == 365


async def test_api_shows_next_run_and_what_it_purges(desk: Harness) -> None:
    """GET /api/v1/retention: the next run at the purge hour and the rows it will delete;
    POST /api/v1/retention/run purges now and the counts become the last run."""
    engine = desk.service.engine
    for days in (400, 380, 10):
        add_message(engine, days)
    overview = (await desk.get("/api/v1/retention")).json()
    assert overview["next_run"] == "2027-01-16T03:00:00.000Z"
    assert overview["next_run_purges"]["outbound"] == 2
    assert overview["last_run"] is None and overview["running"] is None
    started = await desk.post("/api/v1/retention/run")
    assert started.status_code == 202

    await desk.wait_until(lambda: desk.service.retention.state().last_result is not None, "run")
    last = (await desk.get("/api/v1/retention")).json()["last_run"]
    assert last["purged"]["outbound"] == 2 and last["complete"]
    assert len(ids(engine, messages)) == 1


async def test_api_run_is_refused_while_another_process_purges(desk: Harness) -> None:
    """A purge started while another process holds the lease is a 409 naming the holder."""
    with desk.service.engine.begin() as conn:
        jobs.claim(conn, "retention", "other-host:42", NOW, 300)
    answer = await desk.post("/api/v1/retention/run")
    assert answer.status_code == 409
    assert "other-host:42" in answer.json()["error"]["message"]
    running = (await desk.get("/api/v1/retention")).json()["running"]
    assert running["owner"] == "other-host:42"


async def test_retention_needs_an_admin_key(desk: Harness) -> None:
    _, sender = desk.service.keys.create("crm", "sender")
    answer = await desk.client.get(
        "/api/v1/retention", headers={"Authorization": f"Bearer {sender}"}
    )
    assert answer.status_code == 403


def test_toml_export_and_import_carry_retention(tmp_path: Path) -> None:
    """`settings set`, export and import round-trip the retention section; a boolean or an
    hour out of range is refused naming the field."""
    run = CliRunner(env={"SMSDESK_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})

    def ok(*args: str) -> str:
        result = run.invoke(app, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    ok("settings", "set", "retention.outbound_days=60", "retention.hour=2")
    exported = tmp_path / "sms.toml"
    ok("settings", "export", str(exported))
    doc = tomllib.loads(exported.read_text())
    assert doc["retention"]["outbound_days"] == 60 and doc["retention"]["hour"] == 2
    exported.write_text(exported.read_text().replace("outbound_days = 60", "outbound_days = 10"))
    ok("settings", "import", str(exported))
    shown = tomllib.loads(ok("settings", "show"))
    assert shown["retention"]["outbound_days"] == 10 and shown["retention"]["hour"] == 2
    bad = run.invoke(app, ["settings", "set", "retention.audit_days=true", "retention.hour=24"])
    assert bad.exit_code == 1
    assert "retention.audit_days" in bad.stderr and "retention.hour" in bad.stderr


def test_cli_preview_and_run(tmp_path: Path) -> None:
    """`retention preview` lists each kind with its cut-off; `retention run` purges and prints
    the counts, and refuses politely while another process holds the lease."""
    run = CliRunner(env={"SMSDESK_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})
    assert run.invoke(app, ["settings", "show"]).exit_code == 0
    service = open_service(tmp_path / "data", None)
    now = service.clock()
    with service.engine.begin() as conn:
        conn.execute(messages.delete())
    add_message(service.engine, 400, now=now)
    add_message(service.engine, 1, now=now)
    preview = json.loads(run.invoke(app, ["retention", "preview", "--json"]).stdout)
    assert preview["kinds"]["outbound"]["count"] == 1
    assert preview["kinds"]["outbound"]["days"] == 365
    assert preview["kinds"]["requests"]["cutoff"] is None
    text = run.invoke(app, ["retention", "preview"]).stdout
    assert "messages" in text and "forever" in text
    done = run.invoke(app, ["retention", "run", "--batch", "10"])
    assert done.exit_code == 0, done.output
    assert "messages" in done.stdout and "1" in done.stdout
    assert len(ids(service.engine, messages)) == 1
    with service.engine.begin() as conn:
        jobs.claim(conn, "retention", "other-host:7", service.clock(), 300)
    refused = run.invoke(app, ["retention", "run"])
    assert refused.exit_code == 1 and "already running in other-host:7" in refused.stderr
    service.close()


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[tuple[Harness, httpx.AsyncClient]]:
    async with running_service(tmp_path, clock=FakeClock(NOW)) as h:
        create_user(h.service, "admin", "admin")
        create_user(h.service, "anna", "admin", language="nl")
        async with h.browser() as client:
            await log_in(client, "admin")
            yield h, client


async def test_the_screen_edits_retention(
    browser: tuple[Harness, httpx.AsyncClient],
) -> None:
    """The Data retention section saves its fields and shows a refused value beside its field."""
    desk, client = browser
    page = (await client.get(SCREEN)).text
    assert "Data retention" in page and 'name="retention.outbound_days"' in page
    form = {
        "csrf_token": csrf_of(page),
        "module": "simulator",
        "sender": "smsdesk",
        "retention.outbound_days": "45",
        "retention.hour": "5",
    }
    saved = await client.post(SCREEN, data=form)
    assert saved.status_code == 303, saved.text
    retention = (await desk.get("/api/v1/settings")).json()["retention"]
    assert retention["outbound_days"] == 45 and retention["hour"] == 5
    assert 'value="45"' in (await client.get(SCREEN)).text
    refused = await client.post(SCREEN, data={**form, "retention.outbound_days": "-3"})
    assert refused.status_code == 422
    block = refused.text[refused.text.index('data-field="retention.outbound_days"') :]
    assert "greater than or equal to 0" in block[: block.index("</div>\n</div>") + 200]
    assert (await desk.get("/api/v1/settings")).json()["retention"]["outbound_days"] == 45


async def test_the_dashboard_says_what_is_purged_tonight(
    browser: tuple[Harness, httpx.AsyncClient],
) -> None:
    """The dashboard names tonight's purge with its counts, then the last run's, in English
    and in Dutch."""
    desk, client = browser
    for days in (400, 380):
        add_message(desk.service.engine, days)
    page = (await client.get("/dashboard")).text
    assert "Purged tonight at 03:00 UTC:" in page and "2 messages" in page
    await desk.service.retention.start_now()

    await desk.wait_until(lambda: desk.service.retention.state().last_result is not None, "run")
    desk.service.retention._forecast = None
    page = (await client.get("/dashboard")).text
    assert "Nothing to purge tonight at 03:00 UTC." in page
    assert "Last purge, finished Jan 15, 2027 08:00:00 UTC:" in page and "2 messages" in page
    async with desk.browser() as dutch:
        await log_in(dutch, "anna")
        page = (await dutch.get("/dashboard")).text
    assert "Vannacht om 03:00 UTC valt er niets te verwijderen." in page
    assert "2 berichten" in page
