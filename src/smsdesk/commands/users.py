"""`smsdesk users`: the people who log in to the web interface (administrators and agents)."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer
from rich.table import Table

from smsdesk.commands.common import DatabaseUrl, DataDir, fail, open_service, out
from smsdesk.domain.audit import Actor
from smsdesk.store.users import MIN_PASSWORD_LENGTH, ROLES, UserError
from smsdesk.web.ui.i18n import LANGUAGES

app = typer.Typer(help="Web interface users: create, list, change, delete.", no_args_is_help=True)

Username = Annotated[str, typer.Argument(help="The name to log in with.")]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from standard input (one line) instead of asking for it.",
    ),
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password: str = typer.prompt(
        f"Password (at least {MIN_PASSWORD_LENGTH} characters)",
        hide_input=True,
        confirmation_prompt=True,
    )
    return password


@app.command("create")
def create(
    username: Username,
    role: Annotated[
        str, typer.Option(help=f"One of: {', '.join(ROLES)}. Agents cannot see the configuration.")
    ] = "agent",
    language: Annotated[str, typer.Option(help=f"One of: {', '.join(LANGUAGES)}.")] = "en",
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user; the password is asked for (there is no default password)."""
    if language not in LANGUAGES:
        fail(f"Unknown language '{language}'; use one of: {', '.join(LANGUAGES)}.")
    service = open_service(data_dir, database_url)
    password = _read_password(password_stdin)
    try:
        user = service.users.create(username, password, role, language, time.time(), Actor.cli())
    except UserError as exc:
        fail(str(exc))
        raise
    out.print(f"created {user.role} '{user.username}'", highlight=False)


@app.command("list")
def list_(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List users with their role and language."""
    table = Table("user", "role", "language")
    for user in open_service(data_dir, database_url).users.list():
        table.add_row(user.username, user.role, user.language)
    out.print(table)


@app.command("set-password")
def set_password(
    username: Username,
    password_stdin: PasswordStdin = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give a user a new password; their open sessions end."""
    service = open_service(data_dir, database_url)
    password = _read_password(password_stdin)
    try:
        service.users.set_password(username, password, time.time(), Actor.cli())
    except UserError as exc:
        fail(str(exc))
    out.print(f"password of '{username}' changed; their sessions were ended", highlight=False)


@app.command("set-role")
def set_role(
    username: Username,
    role: Annotated[str, typer.Argument(help=f"One of: {', '.join(ROLES)}.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Make a user an administrator or an agent."""
    try:
        open_service(data_dir, database_url).users.set_role(username, role, Actor.cli())
    except UserError as exc:
        fail(str(exc))
    out.print(f"'{username}' is now {role}", highlight=False)


@app.command("delete")
def delete(username: Username, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Delete a user and end their sessions."""
    try:
        open_service(data_dir, database_url).users.delete(username, Actor.cli())
    except UserError as exc:
        fail(str(exc))
    out.print(f"deleted '{username}'", highlight=False)
