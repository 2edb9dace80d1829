"""The `smsdesk` command. Every option can also be set with an SMSDESK_* environment variable."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import tomllib
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import tomli_w
import typer
from rich.progress import Progress
from rich.table import Table

from smsdesk.commands import customers as customers_commands
from smsdesk.commands import inbox as inbox_commands
from smsdesk.commands import optouts as optouts_commands
from smsdesk.commands import requests as requests_commands
from smsdesk.commands import users as users_commands
from smsdesk.commands import webhooks as webhooks_commands
from smsdesk.commands.common import (
    DatabaseUrl,
    DataDir,
    err,
    fail,
    make_config,
    open_service,
    out,
    when,
)
from smsdesk.domain.errors import DomainError
from smsdesk.domain.settings import ConfigurationInvalid
from smsdesk.outbox.accept import NewMessage, opted_out_refusals, prepare_message
from smsdesk.outbox.dispatcher import callback_url
from smsdesk.providers.registry import UnknownModule, get_module
from smsdesk.service import Service
from smsdesk.sms_configuration import masked, validate_configuration
from smsdesk.store import messages as repo

app = typer.Typer(
    help="smsdesk: self-hosted SMS for customer-service teams.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
settings_app = typer.Typer(help="Show and change the SMS configuration.", no_args_is_help=True)
messages_app = typer.Typer(help="Look at messages.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(settings_app, name="settings")
app.add_typer(messages_app, name="messages")
app.add_typer(db_app, name="db")
app.add_typer(apikey_app, name="apikey")
app.add_typer(webhooks_commands.app, name="webhooks")
app.add_typer(customers_commands.app, name="customers")
app.add_typer(optouts_commands.app, name="optouts")
app.add_typer(requests_commands.app, name="requests")
app.add_typer(inbox_commands.app, name="inbox")
app.add_typer(users_commands.app, name="users")
WorkerId = Annotated[
    str | None,
    typer.Option(envvar="SMSDESK_WORKER_ID", help="Name of this dispatcher in leases and logs."),
]
LeaseSeconds = Annotated[
    float | None,
    typer.Option(
        envvar="SMSDESK_LEASE_SECONDS",
        help="How long a claimed message belongs to this dispatcher (default 60 s).",
    ),
]
PollInterval = Annotated[
    float | None,
    typer.Option(
        envvar="SMSDESK_POLL_INTERVAL", help="Longest wait between outbox scans (default 0.5 s)."
    ),
]
ClaimBatch = Annotated[
    int | None,
    typer.Option(envvar="SMSDESK_CLAIM_BATCH", help="Messages claimed per scan (default 500)."),
]
LogLevel = Annotated[
    str, typer.Option(envvar="SMSDESK_LOG_LEVEL", help="DEBUG, INFO, WARNING or ERROR.")
]
LogFormat = Annotated[str, typer.Option(envvar="SMSDESK_LOG_FORMAT", help="json or text.")]


_config = make_config
_service = open_service
_fail = fail
_when = when


def _as_toml(doc: dict[str, Any]) -> str:
    """TOML has no null: unset fields are left out (and so keep their defaults on import)."""

    def drop_none(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop_none(v) for k, v in value.items() if v is not None}
        return value

    return tomli_w.dumps(drop_none(doc))


@app.command()
def serve(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    host: Annotated[
        str, typer.Option(envvar="SMSDESK_HOST", help="Address to listen on.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="SMSDESK_PORT", help="Port to listen on.")] = 8080,
    public_url: Annotated[
        str | None,
        typer.Option(envvar="SMSDESK_PUBLIC_URL", help="URL providers reach this service at."),
    ] = None,
    dispatcher: Annotated[
        bool, typer.Option(envvar="SMSDESK_DISPATCHER", help="Run the dispatcher in this process.")
    ] = True,
    worker_id: WorkerId = None,
    lease_seconds: LeaseSeconds = None,
    poll_interval: PollInterval = None,
    claim_batch: ClaimBatch = None,
    log_level: LogLevel = "INFO",
    log_format: LogFormat = "json",
) -> None:
    """Run the API, the provider callbacks and the dispatcher in one process."""
    import uvicorn

    from smsdesk import logs
    from smsdesk.web.app import create_app

    logs.configure(log_level, log_format)
    config = _config(
        data_dir,
        database_url,
        host=host,
        port=port,
        public_url=public_url,
        dispatcher=dispatcher,
        worker_id=worker_id,
        lease_seconds=lease_seconds,
        poll_interval=poll_interval,
        claim_batch=claim_batch,
    )
    service = Service(config)
    service.upgrade()
    url = config.effective_public_url()
    if not service.keys.list():
        _, plain = service.keys.create("first admin key", "admin")
        print(f"Created the first admin API key (shown only now): {plain}", file=sys.stderr)
    if not service.users.list():
        print(
            "No one can log in to the web interface yet; create an administrator with: "
            "smsdesk users create admin --role admin",
            file=sys.stderr,
        )
    print(f"smsdesk listening on {url}  (API docs: {url}/docs)", file=sys.stderr, flush=True)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(service),
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            loop="uvloop",
            http="httptools",
            backlog=4096,
            timeout_keep_alive=30,
        )
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, restores the handlers it found and then
    # raises the signal again; with the default handlers that ends the process "killed by
    # SIGTERM" (or KeyboardInterrupt, exit 1) after a clean stop. Finding its own handler
    # there makes that last step a no-op, so a finished shutdown exits 0; a signal that comes
    # before uvicorn listens still stops it gracefully.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, server.handle_exit)
    server.run()


@app.command()
def worker(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            envvar="SMSDESK_PUBLIC_URL", help="URL of the smsdesk that receives provider callbacks."
        ),
    ] = None,
    worker_id: WorkerId = None,
    lease_seconds: LeaseSeconds = None,
    poll_interval: PollInterval = None,
    claim_batch: ClaimBatch = None,
    log_level: LogLevel = "INFO",
    log_format: LogFormat = "json",
) -> None:
    """Run only the dispatcher (add workers to share the outbox on PostgreSQL)."""
    from smsdesk import logs

    logs.configure(log_level, log_format)
    config = _config(
        data_dir,
        database_url,
        public_url=public_url,
        worker_id=worker_id,
        lease_seconds=lease_seconds,
        poll_interval=poll_interval,
        claim_batch=claim_batch,
    )
    service = Service(config)
    service.upgrade()

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await service.start(dispatcher=True)
        err.print(f"dispatcher {service.owner} running")
        await stop.wait()
        await service.stop()

    asyncio.run(run())


@app.command()
def send(
    text: Annotated[str, typer.Option("--text", "-t", help="The message.")],
    to: Annotated[
        list[str] | None, typer.Option("--to", help="A mobile number (repeatable).")
    ] = None,
    to_file: Annotated[Path | None, typer.Option(help="A file with one number per line.")] = None,
    sender: Annotated[str | None, typer.Option(help="Overrides the configured sender.")] = None,
    priority: Annotated[int | None, typer.Option(help="1 (fastest), 2 or 3.")] = None,
    module: Annotated[str | None, typer.Option(help="Send through this module.")] = None,
    transactional: Annotated[
        bool,
        typer.Option(help="Send even to numbers that opted out (e.g. a one-time code)."),
    ] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Queue SMS in the outbox; a running `serve` or `worker` sends them."""
    numbers = list(to or [])
    if to_file is not None:
        numbers += [n.strip() for n in to_file.read_text().splitlines() if n.strip()]
    if not numbers:
        _fail("give at least one --to number or a --to-file.")
    service = _service(data_dir, database_url)
    config = service.settings.load()
    rows, problems = [], []
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("Checking", total=len(numbers))
        for number in numbers:
            try:
                rows.append(
                    prepare_message(
                        NewMessage(number, text, sender, priority, module),
                        config,
                        service.clock(),
                        transactional=transactional,
                    )
                )
            except DomainError as exc:
                problems.append(f"{number}: {exc.message}")
            progress.advance(task)
        with service.engine.connect() as conn:
            refused = opted_out_refusals(conn, rows)
        problems += [f"{rows[i]['recipient']}: {e.message}" for i, e in refused.items()]
        rows = [row for i, row in enumerate(rows) if i not in refused]
        task = progress.add_task("Queueing", total=len(rows))
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            service.writer.run_sync(partial(repo.insert_messages, rows=chunk, source="cli"))
            progress.advance(task, len(chunk))
    for row in rows:
        out.print(
            f"{row['id']}  {row['recipient']}  queued  ({row['segments']} segment(s), "
            f"{row['encoding']})"
        )
    for problem in problems:
        err.print(f"[red]rejected[/red] {problem}")
    if problems:
        raise typer.Exit(1)


@app.command("test")
def send_test(
    to: Annotated[str, typer.Option(help="A mobile number.")],
    text: Annotated[str, typer.Option(help="Any text.")] = "smsdesk test",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    public_url: Annotated[
        str | None,
        typer.Option(
            envvar="SMSDESK_PUBLIC_URL",
            help="URL of the running smsdesk (for the delivery report).",
        ),
    ] = None,
) -> None:
    """Send test: send one SMS now with the saved settings and show the provider's answer."""
    import httpx

    service = _service(data_dir, database_url)
    url = (public_url or service.public_url).rstrip("/")
    keys = service.keys
    _, plain = keys.create("cli test", "admin")
    try:
        response = httpx.post(
            f"{url}/api/v1/settings/test",
            json={"to": to, "text": text},
            headers={"Authorization": f"Bearer {plain}"},
            timeout=60,
        )
    except httpx.HTTPError as exc:
        _fail(f"smsdesk is not reachable at {url} ({exc}); start it with: smsdesk serve")
        return
    finally:
        keys.revoke(plain.split("_")[1])
    body = response.json()
    if response.status_code != 200:
        _fail(body.get("error", {}).get("message", response.text))
    if body.get("accepted"):
        out.print(f"accepted: message {body['id']}, provider id {body['provider_message_id']}")
    else:
        _fail(f"refused: {body['error']['message']} (code {body['error']['code']})")


@settings_app.command("show")
def settings_show(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print the SMS configuration (secrets masked) as TOML or JSON."""
    doc = masked(_service(data_dir, database_url).settings.load())
    # Plain write: a console would wrap long lines and break the TOML or JSON.
    sys.stdout.write(json.dumps(doc, indent=2) + "\n" if as_json else _as_toml(doc))


@settings_app.command("callbacks")
def settings_callbacks(
    module: Annotated[str, typer.Argument(help="The module, e.g. cm or intelecom.")],
    public_url: Annotated[
        str | None,
        typer.Option(help="The URL providers reach this service at.", envvar="SMSDESK_PUBLIC_URL"),
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Print the delivery-report and inbound URLs to enter in the provider's portal."""
    try:
        get_module(module)
    except UnknownModule as exc:
        _fail(str(exc))
    config = _config(data_dir, database_url, **({"public_url": public_url} if public_url else {}))
    service = Service(config)
    service.upgrade()
    secret = service.settings.callback_secret()
    base = config.effective_public_url()
    sys.stdout.write(
        f"status:  {callback_url(base, module, 'status', secret)}\n"
        f"inbound: {callback_url(base, module, 'inbound', secret)}\n"
    )


def _save(service: Service, changes: dict[str, Any]) -> None:
    try:
        config = validate_configuration(changes, service.settings.load())
    except ConfigurationInvalid as exc:
        for error in exc.errors:
            err.print(f"[red]{error.field}[/red]: {error.message}")
        raise typer.Exit(1) from None
    service.settings.save(config)


def _parse_assignment(item: str) -> tuple[list[str], Any]:
    key, sep, value = item.partition("=")
    if not sep:
        _fail(f"'{item}' is not KEY=VALUE.")
    parsed: Any = value
    if value.lower() in ("true", "false"):
        parsed = value.lower() == "true"
    return key.strip().split("."), parsed


@settings_app.command("set")
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
    service = _service(data_dir, database_url)
    changes: dict[str, Any] = {}
    for item in assignments:
        path, value = _parse_assignment(item)
        target = changes
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value
    _save(service, changes)
    out.print("saved")


@settings_app.command("import")
def settings_import(file: Path, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Load the SMS configuration from a TOML file (masked secrets keep their stored value)."""
    try:
        doc = tomllib.loads(file.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        _fail(f"cannot read {file}: {exc}")
        return
    _save(_service(data_dir, database_url), doc)
    out.print(f"imported {file}")


@settings_app.command("export")
def settings_export(
    file: Annotated[Path | None, typer.Argument()] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write the SMS configuration as TOML (secrets masked) to FILE or standard output."""
    text = _as_toml(masked(_service(data_dir, database_url).settings.load()))
    if file is None:
        sys.stdout.write(text)
    else:
        file.write_text(text)


@messages_app.command("list")
def messages_list(
    status: Annotated[str | None, typer.Option()] = None,
    module: Annotated[str | None, typer.Option()] = None,
    to: Annotated[str | None, typer.Option()] = None,
    limit: Annotated[int, typer.Option()] = 50,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """The newest messages, optionally filtered."""
    service = _service(data_dir, database_url)
    with service.engine.connect() as conn:
        rows = repo.list_messages(
            conn, repo.MessageFilter(status, module, to), before_id=None, limit=limit
        )
    table = Table("id", "to", "status", "module", "prio", "segments", "error")
    for r in rows:
        table.add_row(
            r.id, r.recipient, r.status, r.module, str(r.priority), str(r.segments), r.error or ""
        )
    out.print(table)


@messages_app.command("show")
def messages_show(
    message_id: str, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """One message and its timeline."""
    from smsdesk.web.api.schemas import event_out, message_out

    service = _service(data_dir, database_url)
    with service.engine.connect() as conn:
        row = repo.get_message(conn, message_id)
        if row is None:
            _fail(f"there is no message '{message_id}'.")
        events = repo.get_timeline(conn, message_id)
    out.print_json(json.dumps({**message_out(row), "timeline": [event_out(e) for e in events]}))


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Create or migrate the database schema."""
    service = Service(_config(data_dir, database_url))
    service.upgrade()
    out.print("database is up to date")


@apikey_app.command("create")
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
    try:
        key, plain = _service(data_dir, database_url).keys.create(
            name, role, transactional=transactional
        )
    except ValueError as exc:
        _fail(str(exc))
        return
    err.print(f"API key {key.prefix} ({role}) created; it is shown only now:")
    out.print(plain, markup=False)


@apikey_app.command("list")
def apikey_list(data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Every key, without its secret."""
    table = Table("prefix", "name", "role", "created", "revoked")
    for key in _service(data_dir, database_url).keys.list():
        table.add_row(key.prefix, key.name, key.role, _when(key.created_at), _when(key.revoked_at))
    out.print(table)


@apikey_app.command("revoke")
def apikey_revoke(prefix: str, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Revoke a key by its prefix (see `apikey list`)."""
    if not _service(data_dir, database_url).keys.revoke(prefix):
        _fail(f"no active key with prefix '{prefix}'.")
    out.print("revoked")


def main() -> None:
    app()
