"""Reading the audit trail: GET /api/v1/audit (filters, pages, CSV, verify), the Audit screen
and `smsdesk audit list/export`; only administrators may."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.domain.audit import Actor
from smsdesk.store import audit, db
from smsdesk.store.tables import audit_log
from tests.support.harness import Harness
from tests.support.webui import create_user, log_in

DAY = 86400.0
MAY_1 = 1_777_593_600.0  # 2026-05-01T00:00:00Z


def seed(h: Harness) -> None:
    """Entries on 1, 2 and 3 May 2026 by a user, an API key and the command line.

    Written with their moments given, not by swapping the service's clock: the harness's
    background work reads that clock from other threads while the entries are written.
    """
    service = h.service
    entries: list[tuple[float, Actor, str, dict[str, Any]]] = [
        (
            MAY_1 + 3600,
            Actor.user(1, "anna", "10.0.0.1"),
            "login.succeeded",
            {"target_kind": "user", "target_id": "1"},
        ),
        (
            MAY_1 + DAY + 3600,
            Actor.user(1, "anna", "10.0.0.1"),
            "login.failed",
            {"details": {"username": "=HYPERLINK(1)"}},
        ),
        (
            MAY_1 + 2 * DAY + 3600,
            Actor.api_key("k1", "shop"),
            "configuration.changed",
            {"details": {"fields": ["sender"]}},
        ),
        (
            MAY_1 + 2 * DAY + 7200,
            Actor.cli(),
            "user.created",
            {"target_kind": "user", "target_id": "2"},
        ),
    ]
    for at, actor, action, extra in entries:
        with db.write_transaction(service.engine) as conn, conn.begin():
            audit.append(conn, service.hash_key, actor, action, at, **extra)


async def test_the_api_filters_by_action_kind_actor_and_dates(any_db_harness: Harness) -> None:
    h = any_db_harness
    seed(h)

    async def actions(query: str) -> list[str]:
        answer = await h.get(f"/api/v1/audit?{query}")
        assert answer.status_code == 200, answer.text
        return [e["action"] for e in answer.json()["entries"]]

    assert await actions("action=login.") == ["login.failed", "login.succeeded"]
    assert await actions("action=login.failed") == ["login.failed"]
    assert await actions("actor=shop") == ["configuration.changed"]
    assert await actions("since=2026-05-02&until=2026-05-02&action=login.") == ["login.failed"]
    assert await actions("since=2026-05-03T01:30:00Z&actor_kind=cli") == ["user.created"]
    bad = await h.get("/api/v1/audit?since=yesterday")
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"][0]["field"] == "since"
    entry = (await h.get("/api/v1/audit?actor=shop")).json()["entries"][0]
    assert entry["actor"] == {"kind": "api_key", "id": "k1", "name": "shop", "address": None}
    assert entry["details"] == {"fields": ["sender"]} and entry["at"].startswith("2026-05-03")


async def test_the_api_pages_newest_first_with_a_cursor(any_db_harness: Harness) -> None:
    h = any_db_harness
    seed(h)
    seen: list[int] = []
    cursor = ""
    while True:
        page = (await h.get(f"/api/v1/audit?limit=3&cursor={cursor}")).json()
        seen += [e["id"] for e in page["entries"]]
        if page["next_cursor"] is None:
            break
        cursor = page["next_cursor"]
    assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) >= 4


async def test_csv_export_holds_every_matching_entry_safely(any_db_harness: Harness) -> None:
    """Both spellings; a value that would start a spreadsheet formula is quoted."""
    h = any_db_harness
    seed(h)
    for path in ("/api/v1/audit?format=csv&action=login.", "/api/v1/audit.csv?action=login."):
        answer = await h.get(path)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(answer.text)))
        assert [r["action"] for r in rows] == ["login.failed", "login.succeeded"]
        assert rows[1]["address"] == "10.0.0.1" and len(rows[0]["hash"]) == 64
        assert json.loads(rows[0]["details"])["username"] == "=HYPERLINK(1)"
    # With nothing matching, the export is its header alone, naming the same columns.
    columns = next(csv.reader(io.StringIO(answer.text)))
    assert {"at", "actor_name", "address", "action", "target_id", "details", "hash"} <= set(columns)
    empty = (await h.get("/api/v1/audit.csv?actor=nobody")).text.splitlines()
    assert empty == [",".join(columns)]


async def test_the_api_verifies_the_chain(any_db_harness: Harness) -> None:
    h = any_db_harness
    seed(h)
    intact = (await h.get("/api/v1/audit/verify")).json()
    assert intact["intact"] is True and intact["checked"] >= 4 and intact["problems"] == []
    with db.write_transaction(h.service.engine) as conn, conn.begin():
        newest = conn.execute(sa.select(sa.func.max(audit_log.c.id))).scalar_one()
        conn.execute(audit_log.delete().where(audit_log.c.id == newest))
    broken = (await h.get("/api/v1/audit/verify")).json()
    assert broken["intact"] is False
    assert any("newer entries were removed" in p for p in broken["problems"])


async def test_only_admin_keys_read_the_trail(any_db_harness: Harness) -> None:
    h = any_db_harness
    _, sender = h.service.keys.create("shop", "sender")
    for path in ("/api/v1/audit", "/api/v1/audit.csv", "/api/v1/audit/verify"):
        refused = await h.client.get(path, headers={"Authorization": f"Bearer {sender}"})
        assert refused.status_code == 403, path
        assert (await h.client.get(path)).status_code == 401


async def test_the_screen_lists_filters_pages_and_checks(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    seed(harness)
    page = await admin.get("/audit")
    assert page.status_code == 200
    assert 'href="/audit"' in page.text  # in the menu
    assert "Failed login" in page.text and "Configuration changed" in page.text
    assert "=HYPERLINK(1)" in page.text  # shown as text, escaped by the template
    filtered = (await admin.get("/audit?action=login.&since=2026-05-02&until=2026-05-02")).text
    listed = filtered[filtered.index('<table class="list audit"') :]
    assert "Failed login" in listed and "Logged in" not in listed
    assert re.search(
        r'href="/audit.csv\?action=login\.&amp;since=2026-05-02&amp;until=2026-05-02"', filtered
    )
    export = await admin.get("/audit.csv?action=login.&since=2026-05-02&until=2026-05-02")
    assert [r["action"] for r in csv.DictReader(io.StringIO(export.text))] == ["login.failed"]
    checked = (await admin.get("/audit?verify=1")).text
    assert 'id="verify-result"' in checked and "The trail is intact" in checked
    bad = await admin.get("/audit?since=someday")
    assert bad.status_code == 200 and "Enter a date as YYYY-MM-DD." in bad.text


async def test_the_screen_pages_with_older_and_newest(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    for n in range(55):
        harness.service.audit(Actor.cli(), "user.created", target_kind="user", target_id=str(n))
    first = (await admin.get("/audit?action=user.created")).text
    link = re.search(r'href="(/audit\?[^"]*before=\d+)" rel="next"', first)
    assert link is not None
    second = (await admin.get(link.group(1).replace("&amp;", "&"))).text
    on_first = set(re.findall(r'id="entry-(\d+)"', first))
    on_second = set(re.findall(r'id="entry-(\d+)"', second))
    assert len(on_first) == 50 and len(on_second) == 5 and not on_first & on_second


async def test_the_screen_speaks_dutch(harness: Harness) -> None:
    seed(harness)
    create_user(harness.service, "beheer", "admin", language="nl")
    async with harness.browser() as client:
        await log_in(client, "beheer")
        page = (await client.get("/audit?verify=1")).text
    assert "Mislukte aanmelding" in page and "Configuratie gewijzigd" in page
    assert "Het logboek is intact" in page and "Exporteren als CSV" in page


async def test_agents_neither_see_nor_open_the_screen(harness: Harness) -> None:
    create_user(harness.service, "anna", "agent")
    async with harness.browser() as client:
        await log_in(client, "anna")
        dashboard = await client.get("/dashboard")
        assert 'href="/audit"' not in dashboard.text
        assert (await client.get("/audit")).status_code == 403
        assert (await client.get("/audit.csv")).status_code == 403


def test_the_command_lists_and_exports_with_filters(tmp_path: Path) -> None:
    runner = CliRunner(env={"SMSDESK_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})
    from smsdesk.process_config import AppConfig
    from smsdesk.service import Service

    service = Service(AppConfig(data_dir=tmp_path / "data"))
    service.upgrade()
    service.audit(Actor.cli(), "user.created", target_kind="user", target_id="7")
    service.audit(Actor.user(7, "anna"), "login.succeeded")
    service.close()
    listed = runner.invoke(app, ["audit", "list", "--action", "user.", "--json"])
    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.stdout)["entries"]
    assert entry["target"] == {"kind": "user", "id": "7"}
    table = runner.invoke(app, ["audit", "list", "--actor", "anna"])
    assert "login.succeeded" in table.output and "user.created" not in table.output
    bad = runner.invoke(app, ["audit", "list", "--since", "soon"])
    assert bad.exit_code == 1 and "--since" in bad.output
    file = tmp_path / "audit.csv"
    exported = runner.invoke(app, ["audit", "export", str(file), "--action", "login."])
    assert exported.exit_code == 0 and "1 entries written" in exported.output
    with file.open(newline="") as handle:
        assert [r["actor_name"] for r in csv.DictReader(handle)] == ["anna"]
