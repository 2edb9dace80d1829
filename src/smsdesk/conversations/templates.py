"""Reply templates: administrators keep them, agents and API clients send them rendered.

What the API, the screens and the CLI call. Names are 1 to 100 characters, unique per language
(in any case); a language is one of the screens' languages or any two-letter code; bodies are
checked by `domain.templating`. Every change is written to the audit trail by the names of the
fields it set, never their text. Rendering takes its values from a request (its customer's name
and number, its id), the agent, and what the caller fills in (prompts, or customer fields).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from smsdesk.conversations.groups import AuditedHost
from smsdesk.conversations.requests import NotFound, get_request, reply_number
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.domain.templating import (
    VARIABLES,
    TemplateProblem,
    check_body,
    placeholders,
    prompt_values,
    render,
)
from smsdesk.domain.text import describe, forbidden_control
from smsdesk.host import Host
from smsdesk.store import customers as customer_store
from smsdesk.store import templates as store
from smsdesk.store.templates import ReplyTemplate

MAX_NAME = 100
FIELDS = ("name", "language", "body")
UI_LANGUAGES = ("en", "nl")

__all__ = [
    "ReplyTemplate",
    "TemplateNotFound",
    "check_language",
    "check_name",
    "create_template",
    "delete_template",
    "find_template",
    "get_template",
    "render_template",
    "search_templates",
    "update_template",
]


class TemplateNotFound(LookupError):
    def __init__(self, wanted: str, language: str | None = None) -> None:
        where = f" in language '{language}'" if language else ""
        super().__init__(f"There is no reply template '{wanted}'{where}.")
        self.message = str(self)


def check_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise TemplateProblem("The template's name is empty; enter a name.", field="name")
    if len(cleaned) > MAX_NAME:
        raise TemplateProblem(
            "The name has {count} characters; at most {limit} are allowed.",
            field="name",
            count=len(cleaned),
            limit=MAX_NAME,
        )
    found = forbidden_control(name.replace("\n", "").replace("\t", "").replace("\r", ""))
    if found is not None:
        raise TemplateProblem(
            "The name contains the control character {character}; remove it.",
            field="name",
            character=describe(found[1]),
        )
    return cleaned


def check_language(language: str) -> str:
    cleaned = language.strip().lower()
    if cleaned not in UI_LANGUAGES and not (
        len(cleaned) == 2 and cleaned.isascii() and cleaned.isalpha()
    ):
        raise TemplateProblem(
            "'{language}' is not a language code; use two letters such as en or nl.",
            field="language",
            language=language,
        )
    return cleaned


class NameTaken(TemplateProblem):
    def __init__(self, name: str, language: str) -> None:
        super().__init__(
            "A template named '{name}' already exists in language '{language}'; choose "
            "another name or edit that template.",
            field="name",
            name=name,
            language=language,
        )


def _refuse_taken(conn: Connection, name: str, language: str, own_id: str | None) -> None:
    other = store.template_by_name(conn, name, language)
    if other is not None and other.id != own_id:
        raise NameTaken(other.name, language)


def _audit(
    conn: Connection,
    host: AuditedHost,
    actor: Actor,
    action: str,
    template_id: str,
    fields: Iterable[str] = (),
    source: str | None = None,
) -> None:
    """One entry naming the fields that were set; a template's name and text stay out."""
    details: dict[str, Any] = {}
    if fields:
        details["fields"] = sorted(fields)
    if source:
        details["source"] = source
    host.trail.record(
        conn,
        actor,
        action,
        target_kind="template",
        target_id=template_id,
        details=details or None,
    )


def _written(service: Host, job: Any, name: str, language: str) -> Any:
    try:
        return store.written(service.writer, job)
    except store.NameClash:
        raise NameTaken(name, language) from None


def get_template(service: Host, template_id: str) -> ReplyTemplate:
    with service.engine.connect() as conn:
        found = store.get_template(conn, template_id)
    if found is None:
        raise TemplateNotFound(template_id)
    return found


def create_template(
    service: AuditedHost,
    actor: Actor,
    *,
    name: str,
    language: str,
    body: str,
    source: str | None = None,
) -> ReplyTemplate:
    """Add a template; `source` ("import") says in the audit entry how it came."""
    checked_name, checked_language = check_name(name), check_language(language)
    checked_body = check_body(body)
    now = service.clock()

    def insert(conn: Connection) -> str:
        _refuse_taken(conn, checked_name, checked_language, None)
        template_id = store.insert_template(
            conn, name=checked_name, language=checked_language, body=checked_body, now=now
        )
        _audit(conn, service, actor, "template.created", template_id, FIELDS, source)
        return template_id

    return get_template(service, _written(service, insert, checked_name, checked_language))


def update_template(
    service: AuditedHost,
    actor: Actor,
    template_id: str,
    *,
    name: str | None = None,
    language: str | None = None,
    body: str | None = None,
    source: str | None = None,
) -> ReplyTemplate:
    """Change what is given; the (name, language) pair stays unique. The audit entry names the
    fields whose value changed (none changed: no entry)."""
    changes: dict[str, str] = {}
    if name is not None:
        changes["name"] = check_name(name)
    if language is not None:
        changes["language"] = check_language(language)
    if body is not None:
        changes["body"] = check_body(body)
    current = get_template(service, template_id)
    new_name = changes.get("name", current.name)
    new_language = changes.get("language", current.language)
    now = service.clock()

    def change(conn: Connection) -> None:
        _refuse_taken(conn, new_name, new_language, template_id)
        before = store.get_template(conn, template_id)
        if before is None or not store.update_template(conn, template_id, changes, now):
            raise TemplateNotFound(template_id)
        changed = [key for key, value in changes.items() if getattr(before, key) != value]
        if changed:
            _audit(conn, service, actor, "template.changed", template_id, changed, source)

    _written(service, change, new_name, new_language)
    return get_template(service, template_id)


def delete_template(service: AuditedHost, actor: Actor, template_id: str) -> None:
    def delete(conn: Connection) -> None:
        if not store.delete_template(conn, template_id):
            raise TemplateNotFound(template_id)
        _audit(conn, service, actor, "template.deleted", template_id)

    service.writer.run_sync(delete)


def search_templates(
    service: Host,
    search: str = "",
    *,
    language: str | None = None,
    first_language: str | None = None,
    limit: int = 500,
) -> list[ReplyTemplate]:
    with service.engine.connect() as conn:
        return store.search_templates(
            conn,
            search=search.strip(),
            language=language or None,
            first_language=first_language,
            limit=limit,
        )


def find_template(
    service: Host, wanted: str, language: str | None = None, *, preferred: str | None = None
) -> ReplyTemplate:
    """A template by id, or by name in `language`; a name in several languages without one
    given is taken in `preferred` (e.g. the customer's language) if it exists there."""
    with service.engine.connect() as conn:
        by_id = store.get_template(conn, wanted)
        if by_id is not None:
            return by_id
        if language:
            found = store.template_by_name(conn, wanted, check_language(language))
            if found is None:
                raise TemplateNotFound(wanted, language)
            return found
        named = store.templates_named(conn, wanted)
    if not named:
        raise TemplateNotFound(wanted)
    if len(named) == 1:
        return named[0]
    chosen = [t for t in named if t.language == preferred]
    if chosen:
        return chosen[0]
    raise TemplateProblem(
        "The template '{name}' exists in {languages}; give the language.",
        field="language",
        name=wanted,
        languages=", ".join(t.language for t in named),
    )


# -- rendering -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Context:
    """The values a request (or a customer) gives a template, and the customer's language."""

    values: dict[str, str | None]
    language: str | None = None


def request_context(conn: Connection, request_id: str, default_country_code: str) -> Context:
    """The request's id, its customer's name and the number a reply goes to."""
    request = get_request(conn, request_id)
    try:
        number: str | None = reply_number(conn, request, default_country_code)
    except DomainError:
        number = None
    customer = customer_store.get_customer(conn, request.customer_id)
    return Context(
        {
            "request.id": request.id,
            "customer.name": request.customer_name,
            "customer.number": number,
        },
        customer.language if customer is not None else None,
    )


def customer_context(conn: Connection, wanted: str, default_country_code: str) -> Context:
    """A customer by id or by one of its numbers (written as the customer would)."""
    customer = customer_store.get_customer(conn, wanted)
    if customer is None:
        try:
            number = normalise_msisdn(wanted, default_country_code or None)
        except DomainError:
            number = None
        customer = customer_store.customer_by_number(conn, number) if number else None
        if customer is None:
            raise NotFound(f"There is no customer '{wanted}'.")
        return Context(
            {"customer.name": customer.name, "customer.number": number}, customer.language
        )
    first = customer.numbers[0] if customer.numbers else None
    return Context({"customer.name": customer.name, "customer.number": first}, customer.language)


def recipient_context(conn: Connection, number: str) -> Context:
    """For a send to a number: that number, and the name of the customer it belongs to."""
    customer = customer_store.customer_by_number(conn, number)
    return Context(
        {"customer.number": number, "customer.name": customer.name if customer else None},
        customer.language if customer is not None else None,
    )


def render_template(
    template: ReplyTemplate,
    context: Mapping[str, str | None],
    variables: Mapping[str, str | None] | None = None,
) -> str:
    """The template's text with the context's values and the caller's `variables` (prompts by
    their question, or a variable's name to give or replace its value).

    A name in `variables` the template does not use is refused, so a mistyped question is
    not silently ignored; a placeholder left without a value raises MissingVariable.
    """
    given = prompt_values(variables or {})
    used = {p.name for p in placeholders(template.body)}
    for name in given:
        if name not in used and name not in VARIABLES:
            raise TemplateProblem(
                "The template '{template}' does not ask for '{name}'.",
                field="variables",
                template=template.name,
                name=name.removeprefix("prompt:"),
            )
    values: dict[str, str | None] = dict(context)
    values.update({k: v for k, v in given.items() if v is not None and v.strip()})
    return render(template.body, values)


def exported(templates: Iterable[ReplyTemplate]) -> list[dict[str, str]]:
    """Templates as the TOML file's [[template]] tables hold them."""
    return [{"name": t.name, "language": t.language, "body": t.body} for t in templates]


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What happened to one [[template]] entry: added, updated, unchanged or refused."""

    index: int
    name: str
    language: str
    outcome: str
    reason: str = ""


def import_templates(
    service: AuditedHost, actor: Actor, entries: list[Any], *, dry_run: bool = False
) -> list[ImportResult]:
    """Add or update (by name and language) each entry; a bad entry is reported and skipped.
    Each template added or changed has its audit entry, marked as imported."""
    results: list[ImportResult] = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            results.append(ImportResult(index, "", "", "refused", "not a table"))
            continue
        raw = {k: entry.get(k) for k in ("name", "language", "body")}
        name, language = str(raw["name"] or ""), str(raw["language"] or "")
        missing = [k for k, v in raw.items() if not isinstance(v, str)]
        unknown = sorted(set(entry) - set(raw))
        if missing or unknown:
            reason = (
                f"needs {', '.join(missing)} as text"
                if missing
                else f"unknown keys: {', '.join(unknown)}"
            )
            results.append(ImportResult(index, name, language, "refused", reason))
            continue
        body = str(raw["body"])
        results.append(_import_one(service, actor, index, name, language, body, dry_run))
    return results


def _import_one(
    service: AuditedHost,
    actor: Actor,
    index: int,
    name: str,
    language: str,
    body: str,
    dry_run: bool,
) -> ImportResult:
    try:
        checked_name, checked_language = check_name(name), check_language(language)
        check_body(body)
        with service.engine.connect() as conn:
            current = store.template_by_name(conn, checked_name, checked_language)
        if current is None:
            if not dry_run:
                create_template(
                    service, actor, name=name, language=language, body=body, source="import"
                )
            return ImportResult(index, checked_name, checked_language, "added")
        if current.body == body and current.name == checked_name:
            return ImportResult(index, checked_name, checked_language, "unchanged")
        if not dry_run:
            update_template(
                service, actor, current.id, name=checked_name, body=body, source="import"
            )
        return ImportResult(index, checked_name, checked_language, "updated")
    except DomainError as exc:
        return ImportResult(index, name, language, "refused", f"{exc.field}: {exc.message}")
