"""`smsdesk requests` and `smsdesk inbox`: what an agent or administrator does from a shell."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from smsdesk.commands.common import open_service
from smsdesk.store.tables import messages
from tests.support.cli import fails, ok, receive


def test_an_agent_lists_reads_answers_and_closes_a_request(run: CliRunner, data: Path) -> None:
    ok(run, "settings", "set", "default_country_code=+31", "inbound.sms_endpoint=HELP")
    request_id = receive(data, "0612345678", "HELP where is my parcel?")
    listed = ok(run, "requests", "list")
    assert request_id in listed and "where is my parcel?" in listed
    ok(run, "requests", "reply", request_id, "--text", "On its way!", "--author", "Bob")
    shown = ok(run, "requests", "show", request_id)
    assert "← +31612345678: where is my parcel?" in shown
    assert "→ +31612345678 [queued]: On its way!" in shown
    ok(run, "requests", "set", request_id, "--status", "closed")
    assert request_id in ok(run, "requests", "list", "--status", "closed")
    assert "Status must be one of" in fails(run, "requests", "set", request_id, "--status", "gone")
    assert "no request" in fails(run, "requests", "reply", "nope", "--text", "x")


def test_the_reply_carries_the_request_and_its_session_key(run: CliRunner, data: Path) -> None:
    ok(run, "settings", "set", "default_country_code=+31")
    request_id = receive(data, "+31612345678", "hello")
    ok(run, "requests", "reply", request_id, "--text", "Hi!")
    service = open_service(data, None)
    with service.engine.connect() as conn:
        row = conn.execute(sa.select(messages)).one()
    service.close()
    assert row.request_id == request_id and row.session_key


def test_unrecognised_sms_are_listed_assigned_and_deleted(run: CliRunner, data: Path) -> None:
    ok(run, "settings", "set", "default_country_code=+31", "inbound.sms_endpoint=HELP")
    first = receive(data, "+31612345678", "hi, is this the shop?")
    second = receive(data, "+31612345679", "spam spam")
    listed = ok(run, "inbox", "list")
    assert first in listed and second in listed and "SMS endpoint code" in listed
    ok(run, "inbox", "assign", first)
    ok(run, "inbox", "delete", second)
    assert ok(run, "inbox", "list").count("+3161234567") == 0
    assert "already handled" in fails(run, "inbox", "delete", first)
    assert "is this the shop?" in ok(run, "requests", "list")


def test_send_refuses_opted_out_numbers_unless_transactional(run: CliRunner, data: Path) -> None:
    ok(run, "settings", "set", "default_country_code=+31")
    receive(data, "+31612345678", "STOP")
    error = fails(run, "send", "--to", "0612345678", "--to", "0612345679", "--text", "Offer")
    assert "opted out" in error
    ok(run, "send", "--to", "0612345678", "--text", "Code 1234", "--transactional")
