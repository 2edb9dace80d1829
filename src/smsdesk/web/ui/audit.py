"""The Audit screen (administrators): who did what and when, filtered, paged, exported as CSV,
and whether the trail's chain is intact."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from smsdesk.service import Service
from smsdesk.store import audit as store
from smsdesk.store import audit_export as export
from smsdesk.store.audit import AuditFilter
from smsdesk.store.users import WebSession
from smsdesk.web.auth import service_of
from smsdesk.web.ui.outbox import N_
from smsdesk.web.ui.render import render
from smsdesk.web.ui.session import admin_session

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
FILTER_FIELDS = ("action", "actor", "since", "until")

# Every action the trail records, as a person reads it (msgids; the template translates).
ACTION_LABELS = {
    "login.succeeded": N_("Logged in"),
    "login.failed": N_("Failed login"),
    "login.logged_out": N_("Logged out"),
    "configuration.changed": N_("Configuration changed"),
    "user.created": N_("User created"),
    "user.password_changed": N_("Password changed"),
    "user.role_changed": N_("Role changed"),
    "user.contact_changed": N_("Contact details or notifications changed"),
    "user.deleted": N_("User deleted"),
    "apikey.created": N_("API key created"),
    "apikey.revoked": N_("API key revoked"),
    "webhook.created": N_("Webhook subscribed"),
    "webhook.changed": N_("Webhook changed"),
    "webhook.deleted": N_("Webhook removed"),
    "optout.added": N_("Number opted out"),
    "optout.removed": N_("Opt-out removed"),
    "secrets.rotated": N_("Secrets re-encrypted under a new key"),
    "secrets.retired": N_("Old secret keys removed"),
    "database.backed_up": N_("Backup made"),
    "database.restored": N_("Backup restored"),
    "inbound.assigned": N_("Inbound SMS accepted"),
    "inbound.deleted": N_("Inbound SMS deleted"),
    "message.resent": N_("Message resent"),
    "message.cancelled": N_("Message cancelled"),
    "message.deleted": N_("Message deleted"),
    "message.test_sent": N_("Test SMS sent"),
    "message.sent": N_("SMS sent from the command line"),
    "message.batch_accepted": N_("Batch of SMS accepted"),
    "request.replied": N_("Reply sent to a request"),
    "customer.erased": N_("Customer erased"),
    "customer.exported": N_("Customer data exported"),
    "retention.purged": N_("Old data purged"),
    "template.created": N_("Reply template added"),
    "template.changed": N_("Reply template changed"),
    "template.deleted": N_("Reply template deleted"),
}

# Groups for the filter: every action starting with the key.
ACTION_GROUPS = {
    "login.": N_("Logins"),
    "configuration.": N_("Configuration"),
    "user.": N_("Users"),
    "apikey.": N_("API keys"),
    "webhook.": N_("Webhooks"),
    "optout.": N_("Opt-outs"),
    "message.": N_("Messages and sends"),
    "inbound.": N_("Inbound SMS"),
    "request.": N_("Requests"),
    "customer.": N_("Customers"),
    "retention.": N_("Data kept and purged"),
    "secrets.": N_("Secret keys"),
    "database.": N_("Backups"),
    "template.": N_("Reply templates"),
}

# What an entry is about, as the screen names it.
TARGET_KINDS = {
    "apikey": N_("API key"),
    "batch": N_("batch"),
    "configuration": N_("SMS configuration"),
    "customer": N_("customer"),
    "group": N_("group"),
    "inbound": N_("inbound SMS"),
    "message": N_("message"),
    "number": N_("number"),
    "request": N_("request"),
    "routing_rule": N_("routing rule"),
    "template": N_("reply template"),
    "user": N_("user"),
    "webhook": N_("webhook"),
}
ACTOR_KINDS = {
    "user": N_("user"),
    "api_key": N_("API key"),
    "cli": N_("command line"),
    "system": N_("smsdesk"),
}


def _filters(request: Request) -> tuple[dict[str, str], AuditFilter, dict[str, str]]:
    """The filters as typed, as a search, and the error of any that could not be read."""
    values = {name: request.query_params.get(name, "").strip() for name in FILTER_FIELDS}
    errors: dict[str, str] = {}
    parsed: dict[str, str | None] = dict(values)
    for name in ("since", "until"):
        try:
            export.parse_time(name, values[name])
        except export.BadFilter:
            errors[name] = N_("Enter a date as YYYY-MM-DD.")
            parsed[name] = None
    where = export.make_filter(
        action=parsed["action"],
        actor=parsed["actor"],
        since=parsed["since"],
        until=parsed["until"],
    )
    return values, where, errors


def _details(raw: str) -> list[tuple[str, str]]:
    try:
        details = json.loads(raw)
    except ValueError:
        return [("", raw)]
    if not isinstance(details, dict):
        return [("", str(details))]
    shown = []
    for key, value in details.items():
        if isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            text = ", ".join(f"{k}: {v}" for k, v in value.items())
        else:
            text = str(value)
        shown.append((key, text))
    return shown


def _entry_view(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at,
        "actor_kind": ACTOR_KINDS.get(row.actor_kind, row.actor_kind),
        "actor_name": row.actor_name,
        "address": row.address,
        "action": row.action,
        "label": ACTION_LABELS.get(row.action),
        "target": " ".join(p for p in (row.target_kind, row.target_id) if p),
        "target_kind": TARGET_KINDS.get(row.target_kind or "", row.target_kind),
        "target_id": row.target_id,
        "details": _details(row.details),
    }


def _page(service: Service, where: AuditFilter, before: int | None) -> list[Any]:
    with service.engine.connect() as conn:
        return store.list_entries(conn, where, before_id=before, limit=PAGE_SIZE + 1)


def _verify(service: Service) -> store.Verification:
    key = service.hash_key
    with service.engine.connect() as conn:
        return store.verify(conn, key)


def _query(values: dict[str, str], **extra: str) -> str:
    return urlencode({k: v for k, v in {**values, **extra}.items() if v})


@router.get("/audit")
async def audit_page(
    request: Request,
    before: str | None = Query(None, max_length=20),
    verify: str | None = Query(None, max_length=1),
    session: WebSession = Depends(admin_session),
) -> Response:
    service = service_of(request)
    values, where, errors = _filters(request)
    cursor = int(before) if before and before.isdigit() else None
    rows = await run_in_threadpool(_page, service, where, cursor)
    shown = rows[:PAGE_SIZE]
    verification = await run_in_threadpool(_verify, service) if verify else None
    return render(
        request,
        "audit.html",
        session,
        values=values,
        errors=errors,
        entries=[_entry_view(r) for r in shown],
        before=cursor,
        next_query=_query(values, before=str(shown[-1].id)) if len(rows) > PAGE_SIZE else None,
        newest_query=_query(values),
        csv_query=_query(values),
        verify_query=_query(values, verify="1"),
        verification=verification,
        action_labels=ACTION_LABELS,
        action_groups=ACTION_GROUPS,
    )


@router.get("/audit.csv")
async def audit_csv(request: Request, session: WebSession = Depends(admin_session)) -> Response:
    """Every entry the filters match (not only the page shown), newest first."""
    engine = service_of(request).engine
    _, where, _errors = _filters(request)

    def lines() -> Any:
        yield export.csv_header()
        for row in export.every_entry(engine, where):
            yield export.csv_row(row)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="smsdesk-audit.csv"'},
    )
