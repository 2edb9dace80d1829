"""Notifications to agents through the API: the queue with what became of each notification
(`GET /api/v1/notifications`), and Send test e-mail (`POST /api/v1/settings/email/test`)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smsdesk.domain.email_settings import is_email_address
from smsdesk.notify.mailer import MailFailed, send_email
from smsdesk.sms_configuration import validate_configuration
from smsdesk.store import notifications as store
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.auth import admin_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1", tags=["notifications"])


class EmailTest(BaseModel):
    """Send one test e-mail to `to`, with the stored e-mail settings or with `email` over them."""

    model_config = {"extra": "forbid"}

    to: str = Field(..., max_length=200)
    email: dict[str, Any] | None = Field(
        None, description="Unsaved e-mail settings to test (the stored password if left out)."
    )


def _row(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "user": row.username,
        "event": row.event,
        "channel": row.channel,
        "request_id": row.request_id,
        "subject": row.subject,
        "status": row.status,
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at if row.status == "pending" else None,
        "last_error": row.last_error,
        "created_at": row.created_at,
        "sent_at": row.sent_at,
    }


@router.get("/notifications", summary="Notifications to agents, newest first")
def list_notifications(
    request: Request,
    status: Literal["pending", "sent", "dead"] | None = Query(None),
    limit: int = Query(50, ge=1, le=500),
    _: ApiKey = Depends(admin_key),
) -> Json:
    service = service_of(request)
    with service.engine.connect() as conn:
        rows = store.list_notifications(conn, status=status, limit=limit)
    return Json({"notifications": [_row(r) for r in rows]})


@router.post("/settings/email/test", summary="Send a test e-mail")
async def email_test(body: EmailTest, request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    """200 when the mail server accepted it; 502 with the server's words when it did not."""
    service = service_of(request)
    stored = await run_in_threadpool(service.settings.load)
    config = validate_configuration({"email": body.email}, stored) if body.email else stored
    to = body.to.strip()
    if not is_email_address(to):
        message = "Enter an e-mail address such as anna@example.org."
        raise ApiError(422, "invalid_field", message, [{"field": "to", "message": message}])
    if not config.email.configured:
        raise ApiError(
            409, "email_not_configured", "Set the e-mail section of the SMS configuration first."
        )
    try:
        await send_email(
            config.email,
            to,
            "smsdesk test e-mail",
            "This e-mail shows that smsdesk can send notifications through this mail server.",
        )
    except MailFailed as exc:
        raise ApiError(502, "email_failed", str(exc)) from None
    return Json({"sent": True, "to": to})
