"""The audit trail: /api/v1/audit (entries, newest first, or CSV) and /api/v1/audit/verify.

Admin API keys only. Logins, configuration changes, user and key management, opt-out changes,
inbound and outbox actions by people, sends by people and API batches are recorded; single
sends through `POST /api/v1/messages` are not recorded one by one: each message names the API
key that sent it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from smsdesk.store import audit as store
from smsdesk.store import audit_export as export
from smsdesk.store.apikeys import ApiKey
from smsdesk.store.audit import AuditFilter
from smsdesk.web.auth import admin_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1", tags=["audit"])

ACTION_HELP = "An action (login.failed), or every action of a kind with a trailing dot (login.)."


def audit_filter(
    action: str | None = Query(None, max_length=40, description=ACTION_HELP),
    actor: str | None = Query(None, max_length=100, description="User, API key or account name"),
    actor_kind: str | None = Query(None, description="user, api_key, cli or system"),
    target_id: str | None = Query(None, max_length=64),
    since: str | None = Query(None, description="From this date or time (ISO 8601, UTC)"),
    until: str | None = Query(None, description="Up to this date (inclusive) or time"),
) -> AuditFilter:
    try:
        return export.make_filter(
            action=action,
            actor=actor,
            actor_kind=actor_kind,
            target_id=target_id,
            since=since,
            until=until,
        )
    except export.BadFilter as exc:
        raise ApiError(
            422, "invalid_field", exc.message, [{"field": exc.field, "message": exc.message}]
        ) from None


def _cursor(value: str | None) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise ApiError(422, "invalid_cursor", "The cursor is the next_cursor of the previous page.")
    return int(value)


@router.get("/audit", summary="Audit entries, newest first (JSON, or CSV with ?format=csv)")
def list_audit(
    request: Request,
    _: ApiKey = Depends(admin_key),
    where: AuditFilter = Depends(audit_filter),
    cursor: str | None = Query(None, description="The next_cursor of the previous page"),
    limit: int = Query(100, ge=1, le=export.MAX_PAGE),
    format: str = Query("json", pattern="^(json|csv)$"),
) -> Response:
    """Single API sends are not audited one by one (each message names its API key); API
    batches are, once per batch with the count."""
    if format == "csv":
        return _csv(request, where)
    with service_of(request).engine.connect() as conn:
        rows = store.list_entries(conn, where, before_id=_cursor(cursor), limit=limit + 1)
    page = rows[:limit]
    return Json(
        {
            "entries": [export.as_dict(r) for r in page],
            "next_cursor": str(page[-1].id) if len(rows) > limit else None,
        }
    )


@router.get("/audit.csv", summary="Every matching audit entry as CSV, newest first")
def audit_csv(
    request: Request,
    _: ApiKey = Depends(admin_key),
    where: AuditFilter = Depends(audit_filter),
) -> Response:
    return _csv(request, where)


def _csv(request: Request, where: AuditFilter) -> Response:
    engine = service_of(request).engine

    def lines() -> Iterator[str]:
        yield export.csv_header()
        for row in export.every_entry(engine, where):
            yield export.csv_row(row)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="smsdesk-audit.csv"'},
    )


@router.get("/audit/verify", summary="Check the audit trail's hash chain")
async def verify_audit(request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    """`intact` is false when an entry was removed, altered or added outside smsdesk;
    `problems` names each break."""
    service = service_of(request)
    result = await run_in_threadpool(_verify, service)
    return Json({"intact": result.intact, "checked": result.checked, "problems": result.problems})


def _verify(service: Any) -> store.Verification:
    key = service.hash_key
    with service.engine.connect() as conn:
        return store.verify(conn, key)
