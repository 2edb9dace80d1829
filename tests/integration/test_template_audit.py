"""Reply-template changes are written to the audit trail from the API, the screen and the
command line (TOML import included), naming the fields set, never a template's name or text."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.store.audit import AuditFilter, list_entries
from smsdesk.store.tables import audit_log
from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in

SECRET_NAME = "Zebra parcel"
SECRET_BODY = "Quokka {customer.name} umbrella"


def _entries(h: Harness) -> list[Any]:
    with h.service.engine.connect() as conn:
        return list(reversed(list_entries(conn, AuditFilter(action="template."))))


def _trail_text(h: Harness) -> str:
    with h.service.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log)).all()
    return "\n".join(str(v) for row in rows for v in row)


def _cli(h: Harness) -> CliRunner:
    return CliRunner(
        env={
            "SMSDESK_DATA_DIR": str(h.service.config.data_dir),
            "SMSDESK_DATABASE_URL": h.service.config.effective_database_url,
            "COLUMNS": "200",
        }
    )


def _summary(entry: Any) -> tuple[str, str, dict[str, Any]]:
    return entry.action, entry.actor_kind, json.loads(entry.details)


async def test_api_changes_are_audited_by_field_name(any_db_harness: Harness) -> None:
    """Add, change (only the fields whose value changed) and delete with an API key."""
    h = any_db_harness
    created = await h.post(
        "/api/v1/templates", {"name": SECRET_NAME, "language": "en", "body": SECRET_BODY}
    )
    assert created.status_code == 201, created.text
    template_id = created.json()["id"]
    changed = await h.client.patch(
        f"/api/v1/templates/{template_id}",
        json={"name": SECRET_NAME, "body": SECRET_BODY + " again"},
        headers=h.headers,
    )
    assert changed.status_code == 200, changed.text
    deleted = await h.client.delete(f"/api/v1/templates/{template_id}", headers=h.headers)
    assert deleted.status_code == 204

    found = _entries(h)
    assert [_summary(e) for e in found] == [
        ("template.created", "api_key", {"fields": ["body", "language", "name"]}),
        ("template.changed", "api_key", {"fields": ["body"]}),
        ("template.deleted", "api_key", {}),
    ]
    assert {(e.target_kind, e.target_id) for e in found} == {("template", template_id)}
    text = _trail_text(h)
    assert "Zebra" not in text and "Quokka" not in text


async def test_screen_changes_are_audited_with_the_user(any_db_harness: Harness) -> None:
    """An administrator's add, edit and delete on /templates name that administrator."""
    h = any_db_harness
    create_user(h.service, "admin", "admin")
    async with h.browser() as admin:
        await log_in(admin, "admin")
        form = await admin.get("/templates/new")
        added = await admin.post(
            "/templates",
            data={
                "csrf_token": csrf_of(form.text),
                "name": SECRET_NAME,
                "language": "en",
                "body": SECRET_BODY,
            },
        )
        assert added.status_code == 303, added.text
        [entry] = _entries(h)
        path = f"/templates/{entry.target_id}"
        form = await admin.get(path)
        saved = await admin.post(
            path,
            data={
                "csrf_token": csrf_of(form.text),
                "name": SECRET_NAME,
                "language": "nl",
                "body": SECRET_BODY,
            },
        )
        assert saved.status_code == 303, saved.text
        form = await admin.get(path)
        deleted = await admin.post(f"{path}/delete", data={"csrf_token": csrf_of(form.text)})
        assert deleted.status_code == 303, deleted.text
        trail = (await admin.get("/audit", params={"action": "template."})).text
        for label in ("Reply template added", "Reply template changed", "Reply template deleted"):
            assert label in trail

    found = _entries(h)
    assert [_summary(e) for e in found] == [
        ("template.created", "user", {"fields": ["body", "language", "name"]}),
        ("template.changed", "user", {"fields": ["language"]}),
        ("template.deleted", "user", {}),
    ]
    assert {e.actor_name for e in found} == {"admin"}
    assert "Zebra" not in _trail_text(h) and "Quokka" not in _trail_text(h)


async def test_command_line_and_toml_import_are_audited(
    any_db_harness: Harness, tmp_path: Path
) -> None:
    """`templates add/edit/delete` and each template an import adds or changes (marked as
    imported; unchanged entries write nothing) are entries of the command line."""
    h = any_db_harness
    runner = _cli(h)

    def run(*args: str) -> None:
        done = runner.invoke(app, list(args))
        assert done.exit_code == 0, done.output

    await asyncio.to_thread(run, "templates", "add", SECRET_NAME, "-l", "en", "--body", "Hi")
    await asyncio.to_thread(run, "templates", "edit", SECRET_NAME, "-l", "en", "--body", "Ho")
    await asyncio.to_thread(run, "templates", "delete", SECRET_NAME, "-l", "en")
    await asyncio.to_thread(run, "templates", "add", "Kept", "-l", "nl", "--body", "Hallo")
    toml = tmp_path / "templates.toml"
    toml.write_text(
        "[[template]]\n"
        f'name = "{SECRET_NAME}"\nlanguage = "en"\nbody = "{SECRET_BODY}"\n'
        "[[template]]\n"
        'name = "Kept"\nlanguage = "nl"\nbody = "Quokka"\n'
        "[[template]]\n"
        'name = "Same"\nlanguage = "en"\nbody = "x"\n',
        encoding="utf-8",
    )
    await asyncio.to_thread(run, "templates", "add", "Same", "-l", "en", "--body", "x")
    await asyncio.to_thread(run, "templates", "import", str(toml))

    found = _entries(h)
    assert [_summary(e) for e in found] == [
        ("template.created", "cli", {"fields": ["body", "language", "name"]}),
        ("template.changed", "cli", {"fields": ["body"]}),
        ("template.deleted", "cli", {}),
        ("template.created", "cli", {"fields": ["body", "language", "name"]}),
        ("template.created", "cli", {"fields": ["body", "language", "name"]}),
        ("template.created", "cli", {"fields": ["body", "language", "name"], "source": "import"}),
        ("template.changed", "cli", {"fields": ["body"], "source": "import"}),
    ]
    assert "Zebra" not in _trail_text(h) and "Quokka" not in _trail_text(h)
