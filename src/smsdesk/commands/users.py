"""`smsdesk users`: the people who log in to the web interface (administrators and agents)."""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer
from rich.table import Table

from smsdesk.commands.common import DatabaseUrl, DataDir, fail, open_service, out
from smsdesk.domain.audit import Actor
from smsdesk.notify.events import choices
from smsdesk.notify.messages import EVENTS
from smsdesk.notify.preferences import ContactInvalid, check_contact, parse_choices
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
    """List users with their role, language and contact details."""
    table = Table("user", "role", "language", "e-mail", "mobile", "time zone")
    users = open_service(data_dir, database_url).users
    for user in users.list():
        contact = users.contact(user.username)
        table.add_row(
            user.username,
            user.role,
            user.language,
            contact.email or "",
            contact.phone or "",
            contact.time_zone or "",
        )
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


@app.command("set")
def set_contact(
    username: Username,
    email: Annotated[
        str | None, typer.Option(help="E-mail address for notifications; '' clears it.")
    ] = None,
    phone: Annotated[
        str | None,
        typer.Option(help="Own mobile number for SMS notifications; '' clears it."),
    ] = None,
    time_zone: Annotated[
        str | None, typer.Option(help="IANA time zone, e.g. Europe/Amsterdam; '' clears it.")
    ] = None,
    notify: Annotated[
        list[str] | None,
        typer.Option(
            help="EVENT=CHANNELS, repeatable: events "
            f"{', '.join(EVENTS)}; channels email, sms (comma-separated) or none. "
            "Events not named keep their choice."
        ),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Set a user's contact details and which events notify them by e-mail or SMS."""
    service = open_service(data_dir, database_url)
    try:
        current = service.users.contact(username)
        chosen = {**choices(current.notify), **parse_choices(notify or [])}
        contact = check_contact(
            email=current.email if email is None else email,
            phone=current.phone if phone is None else phone,
            time_zone=current.time_zone if time_zone is None else time_zone,
            notify=chosen,
            default_country_code=service.settings.load().default_country_code,
        )
        service.users.set_contact(username, contact.values(), Actor.cli())
    except UserError as exc:
        fail(str(exc))
        raise
    except ContactInvalid as exc:
        fail("; ".join(f"{e.field}: {e.message}" for e in exc.errors))
        raise
    wanted = ", ".join(f"{e}={'+'.join(c)}" for e, c in contact.notify.items()) or "nothing"
    out.print(
        f"'{username}': e-mail {contact.email or '-'}, mobile {contact.phone or '-'}, "
        f"time zone {contact.time_zone or '-'}; notified of {wanted}",
        highlight=False,
    )


@app.command("delete")
def delete(username: Username, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Delete a user and end their sessions."""
    try:
        open_service(data_dir, database_url).users.delete(username, Actor.cli())
    except UserError as exc:
        fail(str(exc))
    out.print(f"deleted '{username}'", highlight=False)
