"""`smsdesk mailings`: create a mailing, give it recipients, check, preview and test it, send it
and follow it, from a shell.

The commands call the same functions as the API (`smsdesk.mailings`); a running `smsdesk
serve` does the sending (its mailing sender and dispatcher), so `start` only moves the mailing
and `watch` follows the statistics until the mailing is done, cancelled or paused. Every
refusal is one `error:` line; lists and statistics print as JSON with `--json`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Column, Table

from smsdesk import mailings
from smsdesk.commands.common import DatabaseUrl, DataDir, err, fail, open_service, out, when
from smsdesk.commands.mailing_output import (
    FINISHED,
    print_mailing,
    print_report,
    print_stats,
    progress_of,
    write_export,
)
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailing_checks import Check
from smsdesk.domain.mailings import Action, MailingSpec, Replies, Status, check_window
from smsdesk.mailings import prepare, sender
from smsdesk.mailings import stats as mailing_stats
from smsdesk.mailings.sources import CsvFormatError
from smsdesk.service import Service
from smsdesk.store import mailings as store
from smsdesk.store.mailing_audience import CustomerFilter

app = typer.Typer(
    help="SMS mailings: one text to many recipients, checked, scheduled and followed.",
    no_args_is_help=True,
)

T = TypeVar("T")
MailingId = Annotated[str, typer.Argument(help="The mailing's id (see `smsdesk mailings list`).")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _refused(exc: Exception) -> NoReturn:
    if isinstance(exc, DomainError) and exc.field:
        fail(escape(f"{exc.field}: {exc.message}"))
    fail(escape(getattr(exc, "message", None) or str(exc)))


def _do(step: Callable[[], T]) -> T:
    """Run a step; a refusal or an unknown id ends the command with one error line."""
    try:
        return step()
    except (DomainError, LookupError, CsvFormatError) as exc:
        _refused(exc)


def _service(data_dir: Path | None, database_url: str | None) -> Service:
    return open_service(data_dir, database_url)


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _instant(text: str) -> float:
    """A time from ISO 8601; without an offset, this computer's time zone."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(escape(f"'{text}' is not a time; write it as 2026-06-15T09:00 or with +02:00."))
    return moment.astimezone().timestamp() if moment.tzinfo is None else moment.timestamp()


@app.command("list")
def list_(
    status: Annotated[
        Status | None, typer.Option(help="Only mailings with this status.", case_sensitive=False)
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 50,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List mailings, newest first."""
    found = mailings.list_mailings(_service(data_dir, database_url), status=status, limit=limit)
    if as_json:
        _echo_json([mailing_stats.mailing_out(m) for m in found])
        return
    table = Table(
        Column("id", no_wrap=True, min_width=26), "name", "status", "created", "started", "finished"
    )
    for m in found:
        table.add_row(
            m.id,
            escape(m.spec.name),
            m.status.value,
            when(m.created_at),
            when(m.started_at),
            when(m.finished_at),
        )
    out.print(table)
    if not found:
        err.print("no mailings")


@app.command("show")
def show(
    mailing_id: MailingId,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show a mailing's settings and status."""
    found = _do(lambda: mailings.get_mailing(_service(data_dir, database_url), mailing_id))
    if as_json:
        _echo_json(mailing_stats.mailing_out(found))
    else:
        print_mailing(found)


def _text(text: str | None, text_file: Path | None) -> str | None:
    if text_file is None:
        return text
    if text is not None:
        fail("give --text or --text-file, not both.")
    if not text_file.is_file():
        fail(escape(f"there is no file {text_file}."))
    return text_file.read_text(encoding="utf-8").removesuffix("\n")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The mailing's name, e.g. 'Outage 12 May'.")],
    text: Annotated[
        str | None,
        typer.Option(help="The SMS: {customer.name}, {customer.number}, a CSV column {like_this}."),
    ] = None,
    text_file: Annotated[Path | None, typer.Option(help="Read the SMS from this file.")] = None,
    template: Annotated[str | None, typer.Option(help="A reply template's id instead.")] = None,
    sender_: Annotated[
        str | None, typer.Option("--sender", help="Default: the configured sender.")
    ] = None,
    connection: Annotated[
        str | None, typer.Option(help="A connection's id or name; default: the routes.")
    ] = None,
    priority: Annotated[int, typer.Option(help="1 (fastest), 2 or 3.")] = 3,
    validity_hours: Annotated[float | None, typer.Option(help="At most 336 hours.")] = None,
    days: Annotated[
        str | None, typer.Option(help="Send window days, e.g. mon,tue,wed,thu,fri.")
    ] = None,
    window_from: Annotated[
        str | None, typer.Option("--from", help="Window opens, recipient's time, e.g. 09:00.")
    ] = None,
    window_to: Annotated[
        str | None, typer.Option("--to", help="Window closes, recipient's time, e.g. 20:00.")
    ] = None,
    throttle: Annotated[int | None, typer.Option(help="At most this many SMS a minute.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="A tag (repeat for more).")] = None,
    replies: Annotated[
        Replies, typer.Option(help="Replies become requests or go to the unrecognised list.")
    ] = Replies.REQUEST,
    override_consent: Annotated[
        bool, typer.Option(help="Send to customers without consent too (audited).")
    ] = False,
    at: Annotated[str | None, typer.Option(help="When to start, if scheduled.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a mailing (a draft); prints its id."""
    window = None
    if days or window_from or window_to:
        if not (days and window_from and window_to):
            fail("a send window needs --days, --from and --to.")
        window = _do(lambda: check_window(days.split(","), window_from, window_to))
    spec = MailingSpec(
        name=name,
        text=_text(text, text_file),
        template_id=template,
        sender=sender_,
        connection=connection,
        priority=priority,
        validity_hours=validity_hours,
        window=window,
        throttle_per_minute=throttle,
        tags=tuple(tag or ()),
        replies=replies,
        override_consent=override_consent,
        scheduled_at=_instant(at) if at else None,
    )
    service = _service(data_dir, database_url)
    made = _do(
        lambda: mailings.create_mailing(service, spec, actor=Actor.cli(), trail=service.trail)
    )
    out.print(f"created mailing {made.id} ({made.spec.name})", markup=False, highlight=False)


@contextmanager
def _checking(total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr while recipients are checked; yields the callback. The bar
    appears with the first chunk checked, so a file refused at once prints only its error."""
    columns = (TextColumn("checking recipients"), BarColumn(), MofNCompleteColumn())
    bar = Progress(*columns, console=err)
    task = bar.add_task("check", total=total)

    def advance(done: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, completed=done, total=max(total or 0, done) or None)

    try:
        yield advance
    finally:
        if bar.live.is_started:
            done = bar.tasks[0].completed
            bar.update(task, completed=done, total=done)
            bar.stop()


@app.command("add")
def add(
    mailing_id: MailingId,
    csv: Annotated[Path | None, typer.Option(help="A CSV file: numbers and variables.")] = None,
    numbers: Annotated[
        str | None, typer.Option(help="Numbers, one per line or separated by commas or semicolons.")
    ] = None,
    customers: Annotated[bool, typer.Option(help="Customers matching the filters.")] = False,
    language: Annotated[str | None, typer.Option(help="Customers of this language.")] = None,
    tag: Annotated[str | None, typer.Option(help="Customers with this tag.")] = None,
    created_from: Annotated[str | None, typer.Option(help="Customers created from.")] = None,
    created_to: Annotated[str | None, typer.Option(help="Customers created before.")] = None,
    open_request: Annotated[
        bool | None, typer.Option(help="Customers with (or without) an open request.")
    ] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add recipients to a draft: from a CSV file, a list of numbers, or customers by filter.
    Each is checked at once; prints the counts and the rows not valid."""
    if sum(x for x in (csv is not None, numbers is not None, customers)) != 1:
        fail("give exactly one of --csv FILE, --numbers '...' or --customers.")
    service = _service(data_dir, database_url)
    _do(lambda: mailings.get_mailing(service, mailing_id))
    if csv is not None:
        if not csv.is_file():
            fail(escape(f"there is no file {csv}."))
        data = csv.read_bytes()
        with _checking(max(data.count(b"\n"), 1)) as progress:
            report = _do(lambda: mailings.add_csv(service, mailing_id, data, progress=progress))
    elif numbers is not None:
        with _checking(None) as progress:
            report = _do(
                lambda: mailings.add_pasted(service, mailing_id, numbers, progress=progress)
            )
    else:
        wanted = CustomerFilter(
            language=language,
            tag=tag.strip().lower() if tag else None,
            created_from=_instant(created_from) if created_from else None,
            created_to=_instant(created_to) if created_to else None,
            has_open_request=open_request,
        )
        with _checking(None) as progress:
            report = _do(
                lambda: mailings.add_customers(service, mailing_id, wanted, progress=progress)
            )
    if as_json:
        _echo_json(report.as_dict())
    else:
        print_report(report.as_dict())


@app.command("summary")
def summary(
    mailing_id: MailingId,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """What the mailing would send: recipients by check result, SMS, segments, cost."""
    found = _do(lambda: prepare.summarise(_service(data_dir, database_url), mailing_id)).as_dict()
    if as_json:
        _echo_json(found)
        return
    counts = found["counts"]
    out.print(", ".join(f"{k} {v}" for k, v in counts.items()), markup=False, highlight=False)
    cost = ", ".join(f"{v} {k}" for k, v in found["estimated_cost"].items()) or "unknown"
    out.print(
        f"{found['messages']} SMS, {found['segments']} segments, estimated cost {cost}"
        + (
            f" ({found['unpriced_messages']} without a price)" if found["unpriced_messages"] else ""
        ),
        markup=False,
        highlight=False,
    )
    for refused in found["refused"]:
        out.print(
            f"  refused {refused['recipients']}: {refused['reason']}", markup=False, highlight=False
        )


@app.command("preview")
def preview(
    mailing_id: MailingId,
    number: Annotated[str | None, typer.Option(help="As this number would get it.")] = None,
    recipient: Annotated[int | None, typer.Option(help="As this recipient (id) gets it.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Show the SMS one recipient (the first, by default) would get."""
    service = _service(data_dir, database_url)
    if number is None and recipient is None:
        with service.engine.connect() as conn:
            first = store.list_recipients(conn, mailing_id, limit=1, result=Check.VALID)
        if not first:
            _do(lambda: mailings.get_mailing(service, mailing_id))
            fail("the mailing has no valid recipient; give --number.")
        recipient = first[0].id
    shown = _do(lambda: prepare.preview(service, mailing_id, recipient_id=recipient, number=number))
    out.print(
        f"to {shown['to']}: {shown['characters']} characters, {shown['encoding']}, "
        f"{shown['segments']} segment(s)",
        markup=False,
        highlight=False,
    )
    for line in shown["text"].splitlines() or [""]:
        out.print(f"  | {line}", markup=False, highlight=False)


@app.command("test")
def test(
    mailing_id: MailingId,
    number: Annotated[str, typer.Argument(help="Your own number.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Queue the mailing's SMS to one number (your own) now, to see it on a phone."""
    sent = _do(lambda: prepare.send_test(_service(data_dir, database_url), mailing_id, number))
    out.print(
        f"test SMS {sent['message_id']} queued to {sent['to']}", markup=False, highlight=False
    )
    if sent.get("values_from"):
        out.print(
            f"  not a recipient: filled in with the values of line {sent['values_from']}",
            markup=False,
            highlight=False,
        )


def _act(data_dir: Path | None, database_url: str | None, mailing_id: str, action: str) -> None:
    service = _service(data_dir, database_url)
    events = service.events
    if action == "cancel":
        moved = _do(lambda: sender.cancel(service, mailing_id, events))
    elif action == "pause":
        moved = _do(lambda: sender.pause(service, mailing_id, events))
    else:
        moved = _do(lambda: sender.change_status(service, mailing_id, Action(action), events))
    out.print(f"mailing {moved.id} is {moved.status.value}", markup=False, highlight=False)


@app.command("schedule")
def schedule(
    mailing_id: MailingId,
    at: Annotated[str, typer.Option(help="When to start, e.g. 2026-06-15T09:00+02:00.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Schedule a draft to start at a time (a running `smsdesk serve` starts it)."""
    service = _service(data_dir, database_url)
    starts = _instant(at)
    found = _do(lambda: mailings.get_mailing(service, mailing_id))
    _do(
        lambda: mailings.update_mailing(
            service, mailing_id, replace(found.spec, scheduled_at=starts)
        )
    )
    _act(data_dir, database_url, mailing_id, Action.SCHEDULE.value)


def _register_step(action: Action, summary: str) -> None:
    def step(
        mailing_id: MailingId, data_dir: DataDir = None, database_url: DatabaseUrl = None
    ) -> None:
        _act(data_dir, database_url, mailing_id, action.value)

    step.__doc__ = summary
    app.command(action.value)(step)


for _action, _summary in (
    (Action.START, "Start sending now (a running `smsdesk serve` sends it)."),
    (Action.PAUSE, "Pause: messages still queued are taken back until it resumes."),
    (Action.RESUME, "Resume a paused mailing."),
    (Action.CANCEL, "Cancel: nothing more is sent; queued messages are cancelled."),
):
    _register_step(_action, _summary)


def _statistics(service: Service, mailing_id: str) -> tuple[Status, dict[str, Any]]:
    found = _do(lambda: mailings.get_mailing(service, mailing_id))
    return found.status, _do(lambda: mailing_stats.statistics(service, mailing_id))


@app.command("stats")
def stats(
    mailing_id: MailingId,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Recipients blocked by reason, and messages by status."""
    status, found = _statistics(_service(data_dir, database_url), mailing_id)
    if as_json:
        _echo_json({"mailing_status": status.value, **found})
    else:
        print_stats(status, found)


@app.command("watch")
def watch(
    mailing_id: MailingId,
    interval: Annotated[float, typer.Option(min=0.01, help="Seconds between looks.")] = 1.0,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """A progress bar while the mailing sends, until it is done, cancelled or paused."""
    service = _service(data_dir, database_url)
    status, found = _statistics(service, mailing_id)
    if status is Status.DRAFT:
        fail("the mailing is a draft; start or schedule it first.")
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=err) as bar:
        task = bar.add_task(status.value, total=None)
        while True:
            done, total = progress_of(found)
            bar.update(task, completed=done, total=total, description=status.value)
            if status in FINISHED:
                break
            time.sleep(interval)
            status, found = _statistics(service, mailing_id)
    print_stats(status, found)


@app.command("export")
def export(
    mailing_id: MailingId,
    output: Annotated[Path, typer.Option("--output", "-o", help="The CSV file to write.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write every recipient with its check result, status and provider code to a CSV file."""
    service = _service(data_dir, database_url)
    _do(lambda: mailings.get_mailing(service, mailing_id))
    try:
        with output.open("w", encoding="utf-8", newline="") as file:
            rows = write_export(service, mailing_id, file)
    except OSError as exc:
        fail(escape(f"cannot write {output}: {exc.strerror or exc}"))
    err.print(f"{rows} recipient(s) written to {output}", markup=False, highlight=False)
