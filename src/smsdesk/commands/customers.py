"""`smsdesk customers`: add, list, show, update, remove, import, erase and export customers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from smsdesk import customers
from smsdesk.commands.common import DatabaseUrl, DataDir, err, fail, open_service, out, when
from smsdesk.customers import erasure, export
from smsdesk.customers.csv_import import import_customers
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.service import Service

app = typer.Typer(help="Customers and their mobile numbers.", no_args_is_help=True)

Numbers = Annotated[
    list[str] | None,
    typer.Option(
        "--number",
        "-n",
        help="A mobile number (repeatable); without country code the default one is added.",
    ),
]
Language = Annotated[str | None, typer.Option(help="Language code, e.g. en or nl.")]
Tags = Annotated[
    list[str] | None,
    typer.Option("--tag", "-t", help="A tag to choose mailing audiences by (repeatable)."),
]
CustomerId = Annotated[str, typer.Argument(help="The customer's id (or one of its numbers).")]


def _problem(exc: Exception) -> None:
    """End the command with the error's message (and the field it concerns)."""
    if isinstance(exc, DomainError) and not isinstance(exc, customers.NumberTaken):
        fail(f"{exc.field}: {exc.message}")
    fail(getattr(exc, "message", str(exc)))


_ERRORS = (DomainError, customers.CustomerNotFound, customers.CustomerInUse)


def _resolve(service: Service, id_or_number: str) -> str:
    """A customer id, also when given one of the customer's numbers."""
    try:
        return customers.get_customer(service, id_or_number).id
    except customers.CustomerNotFound as missing:
        try:
            found = customers.find_by_number(service, id_or_number)
        except DomainError:
            found = None
        if found is None:
            _problem(missing)
            raise
        return found.id


def _print(customer: customers.Customer) -> None:
    origin = "  (created from an SMS)" if customer.created_from_sms else ""
    out.print(f"{customer.id}  {customer.name}{origin}", markup=False, highlight=False)
    out.print(f"  language: {customer.language}", markup=False, highlight=False)
    for number in customer.numbers:
        out.print(f"  number:   {number}", markup=False, highlight=False)
    if customer.tags:
        out.print(f"  tags:     {' '.join(customer.tags)}", markup=False, highlight=False)
    out.print(f"  created:  {when(customer.created_at)}", markup=False, highlight=False)
    out.print(f"  updated:  {when(customer.updated_at)}", markup=False, highlight=False)


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The customer's name.")],
    number: Numbers = None,
    language: Language = None,
    tag: Tags = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a customer with one or more mobile numbers."""
    service = open_service(data_dir, database_url)
    try:
        customer = customers.create_customer(
            service, name=name, numbers=number or [], language=language, tags=tag or []
        )
    except _ERRORS as exc:
        _problem(exc)
        return
    _print(customer)


@app.command("list")
def list_(
    search: Annotated[
        str | None, typer.Option("--search", "-s", help="Part of a name or a number.")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List customers, newest first."""
    found = customers.search_customers(open_service(data_dir, database_url), search, limit=limit)
    table = Table("id", "name", "numbers", "language", "created", "from SMS")
    for c in found:
        sms = "yes" if c.created_from_sms else ""
        table.add_row(c.id, c.name, " ".join(c.numbers), c.language, when(c.created_at), sms)
    out.print(table)
    if not found:
        err.print("no customers" + (f" match '{search}'" if search else ""))


@app.command("show")
def show(customer: CustomerId, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Show a customer with its numbers."""
    service = open_service(data_dir, database_url)
    _print(customers.get_customer(service, _resolve(service, customer)))


@app.command("update")
def update(
    customer: CustomerId,
    name: Annotated[str | None, typer.Option(help="The new name.")] = None,
    language: Language = None,
    number: Annotated[
        list[str] | None,
        typer.Option("--number", "-n", help="Replace all numbers with these (repeatable)."),
    ] = None,
    add_number: Annotated[
        list[str] | None, typer.Option(help="Add this number (repeatable).")
    ] = None,
    remove_number: Annotated[
        list[str] | None, typer.Option(help="Remove this number (repeatable).")
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", "-t", help="Replace all tags with these (repeatable)."),
    ] = None,
    no_tags: Annotated[bool, typer.Option("--no-tags", help="Remove every tag.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a customer's name, language, numbers or tags."""
    service = open_service(data_dir, database_url)
    customer_id = _resolve(service, customer)
    tags = [] if no_tags else tag
    try:
        result = customers.update_customer(
            service, customer_id, name=name, language=language, numbers=number, tags=tags
        )
        for extra in add_number or []:
            result = customers.add_number(service, customer_id, extra)
        for gone in remove_number or []:
            result = customers.remove_number(service, customer_id, gone)
    except _ERRORS as exc:
        _problem(exc)
        return
    _print(result)


@app.command("remove")
def remove(
    customer: CustomerId, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Delete a customer and its numbers (not possible once it has requests)."""
    service = open_service(data_dir, database_url)
    customer_id = _resolve(service, customer)
    try:
        customers.delete_customer(service, customer_id)
    except _ERRORS as exc:
        _problem(exc)
    out.print(f"removed {customer_id}")


@app.command("import")
def import_(
    file: Annotated[
        Path, typer.Argument(help="A CSV file with a header row: name, mobile, language.")
    ],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Import customers from CSV; rows whose number is known update that customer.

    Exits with 1 if any row was skipped (each is listed with its line number).
    """
    if not file.is_file():
        fail(f"there is no file {file}.")
    service = open_service(data_dir, database_url)
    columns = (TextColumn("Importing"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("Importing", total=None)
            report = import_customers(
                service,
                file.read_bytes(),
                progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
    except DomainError as exc:
        fail(exc.message)
        return
    for row in report.rows:
        if row.status == "skipped":
            err.print(f"line {row.line}: skipped: {row.reason}", markup=False, highlight=False)
    if report.ignored_columns:
        err.print(f"ignored columns: {', '.join(report.ignored_columns)}", markup=False)
    summary = report.as_dict()
    out.print(
        f"{summary['created']} created, {summary['updated']} updated, {summary['skipped']} skipped",
        highlight=False,
    )
    if summary["skipped"]:
        raise typer.Exit(1)


OptionalCustomer = Annotated[
    str | None, typer.Argument(help="The customer's id (or give --number instead).")
]
ByNumber = Annotated[
    str | None,
    typer.Option(
        "--number",
        "-n",
        help="A mobile number: its customer, or (when no customer holds it) the number's own "
        "messages and inbound SMS.",
    ),
]


def _one_of(customer: str | None, number: str | None) -> None:
    if (customer is None) == (number is None):
        fail("give either a customer id or --number.")


def _described(service: Service, customer: str | None, number: str | None) -> str:
    """What is about to be erased, in words, for the confirmation question."""
    try:
        found = (
            customers.get_customer(service, customer)
            if customer is not None
            else customers.find_by_number(service, number or "")
        )
    except (customers.CustomerNotFound, DomainError) as exc:
        _problem(exc)
        raise
    if found is None:
        return f"every message and inbound SMS of {number}"
    return f"customer {found.id} ({found.name}, {', '.join(found.numbers) or 'no numbers'})"


@app.command("erase")
def erase(
    customer: OptionalCustomer = None,
    number: ByNumber = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Erase a customer with their numbers, requests, messages and inbound SMS.

    An opt-out is kept as a keyed hash of the number, so the number still receives nothing.
    This cannot be undone; it is recorded in the audit trail.
    """
    _one_of(customer, number)
    service = open_service(data_dir, database_url)
    what = _described(service, customer, number)
    if not yes and not typer.confirm(f"Erase {what}? This cannot be undone.", err=True):
        fail("nothing was erased.")
    try:
        if customer is not None:
            erased = erasure.erase_customer(service, customer, Actor.cli())
        else:
            erased = erasure.erase_number(service, number or "", Actor.cli())
    except (*_ERRORS, erasure.MessageBeingSent) as exc:
        _problem(exc)
        return
    counts = ", ".join(f"{kind}: {count}" for kind, count in sorted(erased.counts.items()))
    out.print(f"erased {erased.customer_id or 'the number'} ({counts})", highlight=False)


@app.command("export")
def export_(
    customer: OptionalCustomer = None,
    number: ByNumber = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the JSON here (default: stdout).")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Everything held about a customer or a number, as JSON (recorded in the audit trail)."""
    _one_of(customer, number)
    service = open_service(data_dir, database_url)
    document: dict[str, Any]
    try:
        if customer is not None:
            document = export.export_customer(service, customer, Actor.cli())
        else:
            document = export.export_number(service, number or "", Actor.cli())
    except _ERRORS as exc:
        _problem(exc)
        return
    if number is not None and export.is_empty(document):
        fail(f"nothing is held about the number {number}.")
    text = json.dumps(document, ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    err.print(f"wrote {output}", markup=False, highlight=False)
