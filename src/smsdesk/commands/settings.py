"""`smsdesk settings`: the SMS configuration, readable and writable as TOML without the web UI.

Secrets are masked on the way out; a masked value on the way in keeps the stored secret, so an
exported file can be edited and imported again. An export also holds the connections
(`[[connections]]`), the routes (`[[routes]]`, in the order they are tried) and the spend
controls (`[spend]`); on import, a connection or route is matched by its id, else its name, and
changed, or added when there is none; connections and routes the file does not name stay.
"""

from __future__ import annotations

import json
import sys
import tomllib
from pathlib import Path
from typing import Annotated, Any

import tomli_w
import typer

from smsdesk import route_edits
from smsdesk.commands.common import (
    DatabaseUrl,
    DataDir,
    err,
    fail,
    make_config,
    open_service,
    out,
    public_url_option,
    start_service,
)
from smsdesk.commands.settings_toml import (
    connection_entry,
    import_connection,
    import_route,
    route_entry,
)
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.settings import ConfigurationInvalid
from smsdesk.outbox.dispatcher import callback_url
from smsdesk.providers.registry import UnknownModule, get_module
from smsdesk.service import Service
from smsdesk.sms_configuration import masked, validate_configuration

app = typer.Typer(help="Show and change the SMS configuration.", no_args_is_help=True)


def _as_toml(doc: dict[str, Any]) -> str:
    """TOML has no null: unset fields are left out (and so keep their defaults on import)."""

    def drop_none(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop_none(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [drop_none(v) for v in value]
        return value

    return tomli_w.dumps(drop_none(doc))


@app.command("show")
def settings_show(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print the SMS configuration (secrets masked) as TOML or JSON."""
    doc = masked(open_service(data_dir, database_url).settings.load())
    # Plain write: a console would wrap long lines and break the TOML or JSON.
    sys.stdout.write(json.dumps(doc, indent=2) + "\n" if as_json else _as_toml(doc))


@app.command("callbacks")
def settings_callbacks(
    module: Annotated[str, typer.Argument(help="The module, e.g. cm or intelecom.")],
    public_url: Annotated[
        str | None, public_url_option("The URL providers reach this service at.")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print the delivery-report and inbound URLs to enter in the provider's portal."""
    try:
        get_module(module)
    except UnknownModule as exc:
        fail(str(exc))
    config = make_config(
        data_dir, database_url, **({"public_url": public_url} if public_url else {})
    )
    service = start_service(config, close_with_command=True)
    secret = service.settings.callback_secret()
    base = config.effective_public_url()
    sys.stdout.write(
        f"status:  {callback_url(base, module, 'status', secret)}\n"
        f"inbound: {callback_url(base, module, 'inbound', secret)}\n"
    )


def _save(service: Service, changes: dict[str, Any]) -> None:
    """Merge `changes` into the stored configuration, or list every invalid field and exit 1."""
    try:
        config = validate_configuration(changes, service.settings.load())
    except ConfigurationInvalid as exc:
        for error in exc.errors:
            err.print(f"[red]{error.field}[/red]: {error.message}")
        raise typer.Exit(1) from None
    service.settings.save(config, Actor.cli())


def _exported(service: Service) -> dict[str, Any]:
    """The configuration, the connections and the routes, as a TOML file holds them."""
    return {
        **masked(service.settings.load()),
        "connections": [connection_entry(c) for c in service.settings.connections.all()],
        "routes": [route_entry(service, r) for r in route_edits.all_routes(service)],
    }


def _import_all(service: Service, doc: dict[str, Any]) -> None:
    """The configuration first, then each connection, then each route; stops at the first
    refusal, naming the entry."""
    connections = doc.pop("connections", [])
    routes = doc.pop("routes", [])
    _save(service, doc)
    for index, entry in enumerate(connections):
        try:
            import_connection(service, entry)
        except (ConfigurationInvalid, DomainError) as exc:
            _refused(f"connections[{index}]", exc)
    for index, entry in enumerate(routes):
        try:
            import_route(service, entry)
        except DomainError as exc:
            _refused(f"routes[{index}]", exc)


def _refused(where: str, exc: Exception) -> None:
    if isinstance(exc, ConfigurationInvalid):
        for error in exc.errors:
            err.print(f"[red]{where}.{error.field}[/red]: {error.message}")
    else:
        err.print(f"[red]{where}[/red]: {getattr(exc, 'message', exc)}")
    raise typer.Exit(1)


def _parse_assignment(item: str) -> tuple[list[str], Any]:
    """`a.b=c` as (["a", "b"], "c"); "true"/"false" become booleans."""
    key, sep, value = item.partition("=")
    if not sep:
        fail(f"'{item}' is not KEY=VALUE.")
    parsed: Any = value
    if value.lower() in ("true", "false"):
        parsed = value.lower() == "true"
    return key.strip().split("."), parsed


@app.command("set")
def settings_set(
    assignments: Annotated[
        list[str],
        typer.Argument(
            help="KEY=VALUE, e.g. module=simulator default_country_code=+31 "
            "module_settings.original_intelecom.username=me"
        ),
    ],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change some fields; the rest stays as it is."""
    service = open_service(data_dir, database_url)
    changes: dict[str, Any] = {}
    for item in assignments:
        path, value = _parse_assignment(item)
        target = changes
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    _save(service, changes)
    out.print("saved")


@app.command("import")
def settings_import(file: Path, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Load the SMS configuration from a TOML file (masked secrets keep their stored value)."""
    try:
        doc = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        fail(f"cannot read {file}: {exc}")
        return
    _import_all(open_service(data_dir, database_url), doc)
    out.print(f"imported {file}")


@app.command("export")
def settings_export(
    file: Annotated[Path | None, typer.Argument()] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write the SMS configuration as TOML (secrets masked) to FILE or standard output."""
    text = _as_toml(_exported(open_service(data_dir, database_url)))
    if file is None:
        sys.stdout.write(text)
    else:
        file.write_text(text)
