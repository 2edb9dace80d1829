"""Erasing and exporting a customer from the request screen (administrators, with a
confirmation step) and with `smsdesk customers erase` / `export`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.domain.times import iso
from smsdesk.store.tables import audit_log, messages
from tests.conftest import database_url
from tests.integration.test_erasure import ADA_1, ADA_2, ADA_NAME, audit_entries, where_found
from tests.support.harness import Harness
from tests.support.webui import create_user, csrf_of, log_in

TEXT = "my parcel ZX-UI-1"


async def ada_with_a_request(h: Harness) -> tuple[str, str]:
    await h.configure(default_country_code="+31", inbound={"sms_endpoint": "HELP"})
    created = await h.post("/api/v1/customers", {"name": ADA_NAME, "numbers": [ADA_1, ADA_2]})
    assert created.status_code == 201, created.text
    inbound = await h.receive(ADA_1, f"HELP {TEXT}")
    return created.json()["id"], inbound["request_id"]


async def test_an_administrator_downloads_and_erases_the_customer_of_a_request(
    harness: Harness, admin: httpx.AsyncClient
) -> None:
    """The request screen links to the data and to a confirmation page; confirming erases."""
    h = harness
    ada, request_id = await ada_with_a_request(h)
    page = (await admin.get(f"/requests/{request_id}")).text
    assert f'href="/requests/{request_id}/customer/export"' in page
    assert f'href="/requests/{request_id}/customer/erase"' in page

    download = await admin.get(f"/requests/{request_id}/customer/export")
    assert download.status_code == 200
    assert "attachment" in download.headers["content-disposition"]
    document = download.json()
    assert document["customer"]["id"] == ada
    assert document["requests"][0]["conversation"][0]["text"] == TEXT

    confirm = await admin.get(f"/requests/{request_id}/customer/erase")
    assert confirm.status_code == 200 and ADA_NAME in confirm.text
    assert (await h.get(f"/api/v1/customers/{ada}")).status_code == 200  # not yet
    done = await admin.post(
        f"/requests/{request_id}/customer/erase", data={"csrf_token": csrf_of(confirm.text)}
    )
    assert done.status_code == 200 and 'id="erase-done"' in done.text
    assert (await h.get(f"/api/v1/customers/{ada}")).status_code == 404
    assert where_found(h, [ADA_NAME, ADA_1, ADA_2, TEXT]) == []
    [erased] = audit_entries(h, "customer.erased")
    [exported] = audit_entries(h, "customer.exported")
    assert (erased.actor_kind, erased.actor_name, erased.target_id) == ("user", "admin", ada)
    assert (exported.actor_kind, exported.target_id) == ("user", ada)
    again = await admin.get(f"/requests/{request_id}/customer/erase")
    assert again.status_code == 404


async def test_the_confirmation_needs_the_csrf_token_and_an_agent_sees_no_button(
    harness: Harness,
) -> None:
    h = harness
    ada, request_id = await ada_with_a_request(h)
    create_user(h.service, "agent", "agent")
    async with h.browser() as agent:
        await log_in(agent, "agent")
        page = (await agent.get(f"/requests/{request_id}")).text
        assert "customer/erase" not in page and "customer/export" not in page
        assert (await agent.get(f"/requests/{request_id}/customer/export")).status_code == 403
        csrf = csrf_of(page)
        refused = await agent.post(
            f"/requests/{request_id}/customer/erase", data={"csrf_token": csrf}
        )
        assert refused.status_code == 403
    create_user(h.service, "admin", "admin")
    async with h.browser() as admin:
        await log_in(admin, "admin")
        forged = await admin.post(f"/requests/{request_id}/customer/erase", data={})
        assert forged.status_code in (400, 403)
    assert (await h.get(f"/api/v1/customers/{ada}")).status_code == 200


async def test_the_screen_says_in_dutch_when_a_message_is_being_sent(harness: Harness) -> None:
    """A Dutch administrator is asked to try again; the customer is kept."""
    h = harness
    ada, request_id = await ada_with_a_request(h)
    scheduled = await h.post(
        "/api/v1/messages",
        {"to": ADA_1, "text": "later", "scheduled_at": _in_an_hour(h)},
    )
    message_id = scheduled.json()["id"]
    await h.service.writer.run(
        lambda conn: conn.execute(
            messages.update()
            .where(messages.c.id == message_id)
            .values(status="sending", lease_owner="elsewhere", lease_until=h.service.clock() + 60)
        )
    )
    create_user(h.service, "beheerder", "admin", language="nl")
    async with h.browser() as admin:
        await log_in(admin, "beheerder")
        confirm = await admin.get(f"/requests/{request_id}/customer/erase")
        assert "Klant wissen" in confirm.text
        answer = await admin.post(
            f"/requests/{request_id}/customer/erase", data={"csrf_token": csrf_of(confirm.text)}
        )
    assert answer.status_code == 409
    assert "probeer het over een minuut opnieuw" in answer.text
    assert (await h.get(f"/api/v1/customers/{ada}")).status_code == 200


def _in_an_hour(h: Harness) -> str:
    text = iso(h.service.clock() + 3600)
    assert text is not None
    return text


async def test_cli_exports_and_erases_by_id_and_by_number(
    any_db_harness: Harness, engine: Engine, tmp_path: Path
) -> None:
    """export -o writes the JSON; erase asks first (no: nothing changes), --yes erases;
    --number erases the customer holding it; both are audited as the command line."""
    h = any_db_harness
    ada, _ = await ada_with_a_request(h)
    env = {"SMSDESK_DATA_DIR": str(h.service.config.data_dir), "COLUMNS": "200"}
    if engine.dialect.name == "postgresql":
        env["SMSDESK_DATABASE_URL"] = database_url(engine)
    run = CliRunner(env=env)

    def invoke(*args: str, code: int = 0, answer: str | None = None) -> Any:
        result = run.invoke(app, list(args), input=answer)
        assert result.exit_code == code, result.output
        return result

    target = tmp_path / "ada.json"
    invoke("customers", "export", ada, "-o", str(target))
    assert json.loads(target.read_text())["customer"]["name"] == ADA_NAME
    by_number = json.loads(invoke("customers", "export", "--number", "0687654321").stdout)
    assert by_number["customer"]["id"] == ada
    assert "nothing is held" in invoke("customers", "export", "-n", "0611111111", code=1).stderr
    assert "either" in invoke("customers", "export", code=1).stderr

    invoke("customers", "erase", ada, code=1, answer="n\n")
    assert (await h.get(f"/api/v1/customers/{ada}")).status_code == 200
    erased = invoke("customers", "erase", "--number", "0687654321", "--yes").stdout
    assert f"erased {ada}" in erased and "requests: 1" in erased
    assert (await h.get(f"/api/v1/customers/{ada}")).status_code == 404
    assert "no customer" in invoke("customers", "erase", ada, "--yes", code=1).stderr.lower()
    assert where_found(h, [ADA_NAME, ADA_1, ADA_2, TEXT]) == []
    with h.service.engine.connect() as conn:
        kinds = conn.execute(
            sa.select(audit_log.c.action, audit_log.c.actor_kind).where(
                audit_log.c.action.startswith("customer.")
            )
        ).all()
    assert sorted(kinds) == [("customer.erased", "cli")] + [("customer.exported", "cli")] * 2
