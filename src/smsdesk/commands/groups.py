"""`smsdesk groups`: groups of agents, their members, and the rules that route requests to them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from rich.markup import escape
from rich.table import Table

from smsdesk.commands.common import DatabaseUrl, DataDir, fail, open_service, out, when
from smsdesk.commands.group_hours import hours
from smsdesk.conversations import assignment, groups
from smsdesk.conversations.requests import NotFound
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.service import Service
from smsdesk.store import groups as group_store

app = typer.Typer(help="Groups of agents and routing rules.", no_args_is_help=True)
rules_app = typer.Typer(help="Rules routing new requests to groups.", no_args_is_help=True)
app.add_typer(rules_app, name="rules")
app.command("hours")(hours)

Wanted = Annotated[str, typer.Argument(help="The group's id or name.")]
RoundRobin = Annotated[
    bool | None,
    typer.Option(
        "--round-robin/--no-round-robin",
        help="Give each new request to the present member assigned longest ago.",
    ),
]


def _problem(exc: Exception) -> NoReturn:
    if isinstance(exc, DomainError):
        fail(escape(exc.message))
    fail(escape(getattr(exc, "message", str(exc))))
    raise typer.Exit(1)


_ERRORS = (DomainError, groups.GroupNotFound)
T = TypeVar("T")


def _run(data_dir: Path | None, database_url: str | None, work: Callable[[Service, Actor], T]) -> T:
    """`work` done by the command line on the database; a refusal ends the command with it."""
    service = open_service(data_dir, database_url)
    try:
        return work(service, Actor.cli())
    except _ERRORS as exc:
        _problem(exc)


@app.command("list")
def list_groups(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every group, with its members."""
    service = open_service(data_dir, database_url)
    table = Table("id", "name", "round-robin", "members")
    for group, _count in groups.list_groups(service):
        _, members = groups.group_members(service, group.id)
        table.add_row(
            group.id,
            escape(group.name),
            "yes" if group.round_robin else "no",
            escape(", ".join(m.username for m in members)),
        )
    out.print(table)


@app.command("add")
def add(
    name: str,
    description: Annotated[str, typer.Option(help="What the group handles.")] = "",
    round_robin: RoundRobin = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a group."""
    group = _run(
        data_dir,
        database_url,
        lambda service, actor: groups.create_group(
            service, actor, name, description, bool(round_robin)
        ),
    )
    out.print(f"{group.id}  {group.name}  added", markup=False)


@app.command("rename")
def rename(
    group: Wanted,
    new_name: str,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give a group a new name."""
    changed = _run(
        data_dir,
        database_url,
        lambda service, actor: groups.change_group(service, actor, group, name=new_name),
    )
    out.print(f"{changed.id}  {changed.name}  saved", markup=False)


@app.command("set")
def set_group(
    group: Wanted,
    description: Annotated[str | None, typer.Option()] = None,
    round_robin: RoundRobin = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a group's description or switch round-robin on or off."""
    changed = _run(
        data_dir,
        database_url,
        lambda service, actor: groups.change_group(
            service, actor, group, description=description, round_robin=round_robin
        ),
    )
    out.print(f"{changed.id}  {changed.name}  saved", markup=False)


@app.command("delete")
def delete(group: Wanted, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Delete a group (refused while it holds open or pending requests)."""
    _run(data_dir, database_url, lambda service, actor: groups.delete_group(service, actor, group))
    out.print("deleted")


@app.command("add-member")
def add_member(
    group: Wanted, username: str, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Add a user to a group."""
    added = _run(
        data_dir,
        database_url,
        lambda service, actor: groups.add_member(service, actor, group, username),
    )
    out.print("added" if added else f"{username} is a member already", markup=False)


@app.command("remove-member")
def remove_member(
    group: Wanted, username: str, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Take a user out of a group."""
    removed = _run(
        data_dir,
        database_url,
        lambda service, actor: groups.remove_member(service, actor, group, username),
    )
    if not removed:
        fail(escape(f"{username} is not a member of {group}."))
    out.print("removed")


@rules_app.command("list")
def list_rules(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """The routing rules, first tried first."""
    service = open_service(data_dir, database_url)
    table = Table("#", "id", "kind", "value", "group")
    for rule in groups.list_rules(service):
        table.add_row(
            str(rule.position), rule.id, rule.kind, escape(rule.value), escape(rule.group_name)
        )
    out.print(table)


@rules_app.command("add")
def add_rule(
    kind: Annotated[str, typer.Argument(help="endpoint_code, keyword or receiving_number")],
    value: str,
    group: Wanted,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a rule, tried after the others."""
    rule = _run(
        data_dir,
        database_url,
        lambda service, actor: groups.add_rule(service, actor, kind, value, group),
    )
    out.print(f"{rule.id}  {rule.kind} {rule.value} -> {rule.group_name}", markup=False)


@rules_app.command("delete")
def delete_rule(rule_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Delete a rule."""
    _run(data_dir, database_url, lambda service, actor: groups.delete_rule(service, actor, rule_id))
    out.print("deleted")


@rules_app.command("order")
def order_rules(
    rule_ids: Annotated[list[str], typer.Argument(help="Every rule's id, first tried first.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Put the rules in a new order."""
    _run(
        data_dir,
        database_url,
        lambda service, actor: groups.reorder_rules(service, actor, rule_ids),
    )
    out.print("saved")


# -- `smsdesk requests assign` and `smsdesk requests list --view` ----------------------------


def assign_request(
    request_id: str,
    owner: Annotated[str | None, typer.Option(help="The new owner's username.")] = None,
    group: Annotated[str | None, typer.Option(help="The new group's id or name.")] = None,
    no_owner: Annotated[bool, typer.Option("--no-owner", help="Leave it to nobody.")] = False,
    no_group: Annotated[bool, typer.Option("--no-group", help="Take it out of its group.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give a request to a user and/or a group."""
    if (owner and no_owner) or (group and no_group):
        fail("give a name or --no-owner / --no-group, not both.")
    service = open_service(data_dir, database_url)
    try:
        done = assignment.assign(
            service,
            Actor.cli(),
            request_id,
            owner=None if no_owner else owner or assignment.KEEP,
            group=None if no_group else group or assignment.KEEP,
        )
    except (*_ERRORS, NotFound) as exc:
        _problem(exc)
        return
    out.print(
        f"owner: {done.owner_name or 'nobody'}  group: {done.group_name or 'none'}", markup=False
    )


def print_view(service: Service, view: str, username: str | None, limit: int) -> None:
    """A view's requests as `username` sees them, with every view's count."""
    if view not in group_store.VIEWS:
        fail(f"--view is one of {', '.join(group_store.VIEWS)}.")
    with service.engine.connect() as conn:
        user_id = 0
        if username:
            found = group_store.user_by_name(conn, username)
            if found is None:
                fail(escape(f"there is no user '{username}'; see: smsdesk users list"))
                return
            user_id = found[0]
        elif view in ("mine", "my_groups"):
            fail(f"--view {view} needs --user.")
        rows = group_store.find_in_view(conn, view, user_id, "all", "", None, limit)
        counts = group_store.view_counts(conn, user_id)
    out.print("  ".join(f"{name}: {counts[name]}" for name in group_store.VIEWS), markup=False)
    table = Table("id", "status", "owner", "group", "customer", "title", "last activity")
    for row in rows:
        mark = "● " if row.unread and username else ""
        table.add_row(
            row.id,
            row.status,
            escape(row.owner_name or ""),
            escape(row.group_name or ""),
            escape(row.customer_name or ""),
            escape(mark + row.title),
            when(row.last_activity_at),
        )
    out.print(table)
