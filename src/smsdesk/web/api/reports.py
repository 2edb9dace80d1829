"""Delivery reports that matched no message: /api/v1/reports/unmatched.

They are kept, not dropped: a report can arrive before the send is recorded (it is applied
then), or carry an id in a form no message has, which an administrator should see.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request

from smsdesk.domain.times import iso
from smsdesk.store import reports
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.auth import admin_key, service_of
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1/reports", tags=["messages"])


@router.get("/unmatched", summary="Delivery reports that matched no message, newest first")
def list_unmatched(
    request: Request,
    _: ApiKey = Depends(admin_key),
    module: str | None = None,
    cursor: int | None = Query(None, description="The next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=1000),
) -> Json:
    with service_of(request).engine.connect() as conn:
        rows = reports.list_unmatched(conn, module=module, before_id=cursor, limit=limit + 1)
    page = rows[:limit]
    return Json(
        {
            "reports": [
                {
                    "module": r.module,
                    "provider_message_id": r.provider_message_id,
                    "status": r.status,
                    "code": r.code,
                    "received_at": iso(r.received_at),
                }
                for r in page
            ],
            "next_cursor": page[-1].id if len(rows) > limit else None,
        }
    )
