"""`smsdesk groups` and `smsdesk requests assign|list --view`: groups, rules and owners from a
shell."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from smsdesk.commands.common import open_service
from tests.support.cli import fails, ok, receive
from tests.support.webui import create_user


def test_groups_members_and_rules_from_the_command_line(run: CliRunner, data: Path) -> None:
    """Add, rename, fill and delete a group; a rule routes an SMS to it; a group with an open
    request is not deleted."""
    ok(run, "settings", "set", "default_country_code=+31", "inbound.sms_endpoint=HELP")
    service = open_service(data, None)
    create_user(service, "anna", "agent")
    service.close()
    assert "Sales  added" in ok(run, "groups", "add", "Sales", "--round-robin")
    assert "already a group named 'Sales'" in fails(run, "groups", "add", "sales")
    ok(run, "groups", "rename", "Sales", "Shop")
    ok(run, "groups", "add-member", "Shop", "anna")
    assert "member already" in ok(run, "groups", "add-member", "Shop", "anna")
    assert "no user 'zoe'" in fails(run, "groups", "add-member", "Shop", "zoe")
    listed = ok(run, "groups", "list")
    assert "Shop" in listed and "anna" in listed and "yes" in listed

    ok(run, "groups", "rules", "add", "keyword", "order", "Shop")
    assert "│ keyword │ ORDER │ Shop" in ok(run, "groups", "rules", "list")
    request_id = receive(data, "0612345678", "HELP order 42 is late")
    shown = ok(run, "requests", "list", "--view", "all")
    assert request_id in shown and "Shop" in shown

    assert "still has 1 open or pending" in fails(run, "groups", "delete", "Shop")
    ok(run, "requests", "set", request_id, "--status", "closed")
    ok(run, "groups", "remove-member", "Shop", "anna")
    ok(run, "groups", "delete", "Shop")
    assert "Shop" not in ok(run, "groups", "list")


def test_assign_and_views_from_the_command_line(run: CliRunner, data: Path) -> None:
    """`requests assign` sets and clears owner and group; `requests list --view mine --user`
    lists the user's requests with the counts of every view."""
    ok(run, "settings", "set", "default_country_code=+31", "inbound.sms_endpoint=HELP")
    service = open_service(data, None)
    create_user(service, "anna", "agent")
    service.close()
    ok(run, "groups", "add", "Desk")
    first = receive(data, "0612345678", "HELP first")
    second = receive(data, "0687654321", "HELP second")

    assigned = ok(run, "requests", "assign", first, "--owner", "anna", "--group", "desk")
    assert "owner: anna  group: Desk" in assigned
    mine = ok(run, "requests", "list", "--view", "mine", "--user", "anna")
    assert "mine: 1  unassigned: 1  my_groups: 0  waiting: 0  all: 2" in mine
    assert first in mine and second not in mine
    assert "● first" in mine  # anna has not opened it
    unassigned = ok(run, "requests", "list", "--view", "unassigned")
    assert second in unassigned and first not in unassigned

    assert "needs --user" in fails(run, "requests", "list", "--view", "mine")
    assert "no user 'zoe'" in fails(run, "requests", "assign", first, "--owner", "zoe")
    cleared = ok(run, "requests", "assign", first, "--no-owner", "--no-group")
    assert "owner: nobody  group: none" in cleared
