"""`smsdesk templates`: list, add, edit, delete, export and import reply templates.

The TOML file holds one `[[template]]` table per template with `name`, `language` and `body`;
importing updates the template of the same name and language, or adds it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

import tomli_w
import typer
from rich.markup import escape
from rich.table import Table

from smsdesk.commands.common import DatabaseUrl, DataDir, err, fail, open_service, out, when
from smsdesk.conversations import templates
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.templating import prompts
from smsdesk.service import Service

app = typer.Typer(help="Reply templates agents pick in the reply box.", no_args_is_help=True)

Language = Annotated[
    str | None, typer.Option("--language", "-l", help="Language code, e.g. en or nl.")
]
Wanted = Annotated[str, typer.Argument(help="The template's id, or its name (with --language).")]
Body = Annotated[
    str | None,
    typer.Option(
        help="The text: {customer.name}, {customer.number}, {request.id}, {agent.name}, "
        "{prompt:a question}; {{ and }} for braces."
    ),
]
BodyFile = Annotated[
    Path | None, typer.Option("--body-file", help="Read the text from this file (UTF-8).")
]


def _print(template: templates.ReplyTemplate) -> None:
    line = f"{template.id}  {template.name}  [{template.language}]"
    out.print(line, markup=False, highlight=False)
    asked = prompts(template.body)
    if asked:
        out.print(f"  asks for: {', '.join(asked)}", markup=False, highlight=False)
    out.print(f"  updated:  {when(template.updated_at)}", markup=False, highlight=False)
    for text_line in template.body.splitlines() or [""]:
        out.print(f"  | {text_line}", markup=False, highlight=False)


def _problem(exc: Exception) -> None:
    if isinstance(exc, DomainError):
        fail(escape(f"{exc.field}: {exc.message}"))
    fail(escape(getattr(exc, "message", str(exc))))


_ERRORS = (DomainError, templates.TemplateNotFound)


def _body(body: str | None, body_file: Path | None) -> str | None:
    if body_file is None:
        return body
    if body is not None:
        fail("give --body or --body-file, not both.")
    if not body_file.is_file():
        fail(f"there is no file {body_file}.")
    return body_file.read_text(encoding="utf-8").removesuffix("\n")


def _find(service: Service, wanted: str, language: str | None) -> templates.ReplyTemplate:
    try:
        return templates.find_template(service, wanted, language)
    except _ERRORS as exc:
        _problem(exc)
        raise


@app.command("list")
def list_(
    search: Annotated[
        str, typer.Option("--search", "-s", help="Part of the name or of the text.")
    ] = "",
    language: Language = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List reply templates by name."""
    found = templates.search_templates(
        open_service(data_dir, database_url), search, language=language
    )
    table = Table("id", "name", "language", "asks for", "text")
    for t in found:
        preview = t.body if len(t.body) <= 60 else t.body[:59] + "…"
        table.add_row(t.id, t.name, t.language, ", ".join(prompts(t.body)), preview)
    out.print(table)
    if not found:
        err.print("no templates" + (f" match '{search}'" if search else ""))


@app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The template's name, e.g. 'Order shipped'.")],
    language: Annotated[str, typer.Option("--language", "-l", help="e.g. en or nl.")],
    body: Body = None,
    body_file: BodyFile = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add a reply template."""
    text = _body(body, body_file)
    if text is None:
        fail("give the text with --body or --body-file.")
        return
    service = open_service(data_dir, database_url)
    try:
        _print(
            templates.create_template(service, Actor.cli(), name=name, language=language, body=text)
        )
    except _ERRORS as exc:
        _problem(exc)


@app.command("edit")
def edit(
    template: Wanted,
    language: Language = None,
    name: Annotated[str | None, typer.Option(help="The new name.")] = None,
    new_language: Annotated[str | None, typer.Option(help="The new language.")] = None,
    body: Body = None,
    body_file: BodyFile = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Change a template's name, language or text."""
    text = _body(body, body_file)
    service = open_service(data_dir, database_url)
    found = _find(service, template, language)
    try:
        _print(
            templates.update_template(
                service, Actor.cli(), found.id, name=name, language=new_language, body=text
            )
        )
    except _ERRORS as exc:
        _problem(exc)


@app.command("delete")
def delete(
    template: Wanted,
    language: Language = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Delete a reply template."""
    service = open_service(data_dir, database_url)
    found = _find(service, template, language)
    try:
        templates.delete_template(service, Actor.cli(), found.id)
    except _ERRORS as exc:
        _problem(exc)
    out.print(f"deleted {found.id} ({found.name}, {found.language})", markup=False)


@app.command("export")
def export(
    file: Annotated[Path, typer.Argument(help="The TOML file to write ('-' for the screen).")],
    language: Language = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Write the templates to a TOML file, one [[template]] table each."""
    found = templates.search_templates(open_service(data_dir, database_url), language=language)
    document = tomli_w.dumps({"template": templates.exported(found)}, multiline_strings=True)
    if str(file) == "-":
        out.out(document, end="", highlight=False)
        return
    file.write_text(document, encoding="utf-8")
    err.print(f"{len(found)} template(s) written to {file}", markup=False, highlight=False)


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A TOML file with [[template]] tables.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would change.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Add or update templates from TOML (by name and language); one line per entry.

    Exits with 1 if any entry was refused; the others are still imported.
    """
    if not file.is_file():
        fail(f"there is no file {file}.")
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        fail(escape(f"{file} is not a TOML file: {exc}"))
        return
    entries = document.get("template")
    if not isinstance(entries, list):
        fail(escape(f"{file} has no [[template]] tables (each with name, language and body)."))
        return
    service = open_service(data_dir, database_url)
    results = templates.import_templates(service, Actor.cli(), entries, dry_run=dry_run)
    would = "would be " if dry_run else ""
    for result in results:
        what = f"template {result.index} ({result.name or '?'}, {result.language or '?'})"
        if result.outcome == "refused":
            err.print(f"{what}: refused: {result.reason}", markup=False, highlight=False)
        else:
            out.print(f"{what}: {would}{result.outcome}", markup=False, highlight=False)
    outcomes = ("added", "updated", "unchanged", "refused")
    counts = {o: sum(r.outcome == o for r in results) for o in outcomes}
    summary = ", ".join(f"{counts[o]} {would}{o}" for o in ("added", "updated"))
    out.print(f"{summary}, {counts['unchanged']} unchanged, {counts['refused']} refused")
    if counts["refused"]:
        raise typer.Exit(1)
