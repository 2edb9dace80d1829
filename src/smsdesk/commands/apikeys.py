"""`smsdesk apikey`: the keys other systems use to call the API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from smsdesk.commands.common import DatabaseUrl, DataDir, err, fail, open_service, out, when
from smsdesk.domain.audit import Actor

app = typer.Typer(help="API keys.", no_args_is_help=True)


@app.command("create")
def apikey_create(
    name: Annotated[str, typer.Option(help="Who or what uses the key.")],
    role: Annotated[
        str, typer.Option(help="admin (everything) or sender (send and read).")
    ] = "admin",
    transactional: Annotated[
        bool,
        typer.Option(help="The key may send transactional SMS, which reach opted-out numbers."),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Make an API key; it is shown once."""
    service = open_service(data_dir, database_url)
    try:
        key, plain = service.keys.create(name, role, transactional=transactional, actor=Actor.cli())
    except ValueError as exc:
        fail(str(exc))
        return
    finally:
        service.close()
    err.print(f"API key {key.prefix} ({role}) created; it is shown only now:")
    out.print(plain, markup=False)


@app.command("list")
def apikey_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every key, without its secret."""
    table = Table("prefix", "name", "role", "created", "revoked")
    service = open_service(data_dir, database_url)
    try:
        keys = service.keys.list()
    finally:
        service.close()
    for key in keys:
        table.add_row(key.prefix, key.name, key.role, when(key.created_at), when(key.revoked_at))
    out.print(table)


@app.command("revoke")
def apikey_revoke(prefix: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Revoke a key by its prefix (see `apikey list`); running processes refuse it within 1 s."""
    service = open_service(data_dir, database_url)
    try:
        revoked = service.keys.revoke(prefix, Actor.cli())
    finally:
        service.close()
    if not revoked:
        fail(f"no active key with prefix '{prefix}'.")
    out.print("revoked")
