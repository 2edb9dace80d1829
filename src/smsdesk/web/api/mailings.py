"""Mailings: /api/v1/mailings (reading needs an API key, changes an admin key).

A mailing is created as a draft; recipients are added as a CSV file (the body as text/csv, or
a form's file), a JSON list of numbers, pasted text, or customers by filter, and each is
checked at once; the summary gives the counts by check result and the estimated segments and
cost before anything is sent. Refusals are 422 answers in the caller's language.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from smsdesk import mailings
from smsdesk.domain.mailing_checks import Check
from smsdesk.domain.mailings import (
    Action,
    Mailing,
    MailingSpec,
    Replies,
    SendWindow,
    Status,
    check_window,
)
from smsdesk.domain.times import iso
from smsdesk.mailings import prepare, sender, stats
from smsdesk.store import mailings as store
from smsdesk.store.apikeys import ApiKey
from smsdesk.store.customers import CustomerNotFound
from smsdesk.web.actors import key_actor
from smsdesk.web.api.customers import _file_from_multipart
from smsdesk.web.auth import admin_key, api_key, service_of
from smsdesk.web.errors import ApiError
from smsdesk.web.jsonresponse import Json

router = APIRouter(prefix="/api/v1/mailings", tags=["mailings"])
RecipientStatus = Literal[
    "waiting",
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "expired",
    "cancelled",
    "opted_out",
    "refused",
]


class WindowIn(BaseModel):
    model_config = {"extra": "forbid", "populate_by_name": True}

    days: list[str] = Field(..., max_length=7, examples=[["mon", "tue", "wed", "thu", "fri"]])
    opens: str = Field(..., alias="from", max_length=5, examples=["09:00"])
    closes: str = Field(..., alias="to", max_length=5, examples=["20:00"])

    def checked(self) -> SendWindow:
        return check_window(self.days, self.opens, self.closes)


class MailingIn(BaseModel):
    model_config = {"extra": "forbid"}

    name: str = Field(..., max_length=1000, examples=["Outage 12 May"])
    text: str | None = Field(
        None,
        max_length=10_000,
        description="The SMS; {customer.name}, {customer.number} and a CSV column's name "
        "(e.g. {first_name}) are filled in per recipient.",
    )
    template_id: str | None = Field(None, max_length=26, description="A reply template instead.")
    sender: str | None = Field(None, max_length=20, description="Default: the configured one.")
    connection: str | None = Field(
        None, max_length=100, description="A connection's id or name; default: the routes."
    )
    priority: int = Field(3, description="1 (fastest), 2 or 3; mailings default to 3.")
    validity_hours: float | None = Field(None, description="More than 0, at most 336.")
    window: WindowIn | None = Field(
        None, description="Send only on these days between these times, recipient's local time."
    )
    throttle_per_minute: int | None = Field(None, description="At most this many SMS a minute.")
    tags: list[str] = Field(default_factory=list, max_length=20)
    replies: Replies = Field(Replies.REQUEST, description="request or unrecognised")
    override_consent: bool = Field(
        False, description="Send to customers without consent too (recorded in the audit)."
    )
    scheduled_at: datetime | None = None

    def spec(self) -> MailingSpec:
        return MailingSpec(
            name=self.name,
            text=self.text,
            template_id=self.template_id,
            sender=self.sender,
            connection=self.connection,
            priority=self.priority,
            validity_hours=self.validity_hours,
            window=self.window.checked() if self.window else None,
            throttle_per_minute=self.throttle_per_minute,
            tags=tuple(self.tags),
            replies=self.replies,
            override_consent=self.override_consent,
            scheduled_at=self.scheduled_at.timestamp() if self.scheduled_at else None,
        )


class CustomersIn(BaseModel):
    model_config = {"extra": "forbid"}

    language: str | None = Field(None, max_length=10)
    created_from: datetime | None = None
    created_to: datetime | None = None
    has_open_request: bool | None = None
    tag: str | None = Field(None, max_length=64, description="Customers carrying this tag.")


class RecipientsIn(BaseModel):
    model_config = {"extra": "forbid"}

    numbers: list[str] | None = Field(None, max_length=100_000)
    text: str | None = Field(None, max_length=5_000_000, description="Pasted numbers.")
    customers: CustomersIn | None = None


def _not_found(exc: LookupError) -> ApiError:
    return ApiError(404, "not_found", getattr(exc, "message", str(exc)))


def _found(request: Request, mailing_id: str) -> Mailing:
    try:
        return mailings.get_mailing(service_of(request), mailing_id)
    except mailings.MailingNotFound as exc:
        raise _not_found(exc) from None


class ConsentIn(BaseModel):
    model_config = {"extra": "forbid"}

    given: bool = Field(..., description="true: consents to mailings; false: withdrew")
    source: str = Field("api", min_length=1, max_length=40, examples=["web form"])


def _consent_out(found: dict[str, Any]) -> dict[str, Any]:
    return {**found, "changed_at": iso(found["changed_at"])}


@router.get("/consents/{customer_id}", summary="A customer's consent to mailings")
def get_consent(customer_id: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    try:
        return Json(_consent_out(mailings.consent(service_of(request), customer_id)))
    except CustomerNotFound as exc:
        raise _not_found(exc) from None


@router.put("/consents/{customer_id}", summary="Record a customer's consent to mailings")
def put_consent(
    customer_id: str, body: ConsentIn, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    service = service_of(request)
    try:
        found = mailings.set_consent(
            service,
            customer_id,
            given=body.given,
            source=body.source.strip(),
            actor=key_actor(request, key),
            trail=service.trail,
        )
    except CustomerNotFound as exc:
        raise _not_found(exc) from None
    return Json(_consent_out(found))


@router.post("", status_code=201, summary="Create a mailing (a draft)")
def create(body: MailingIn, request: Request, key: ApiKey = Depends(admin_key)) -> Json:
    service = service_of(request)
    mailing = mailings.create_mailing(
        service, body.spec(), actor=key_actor(request, key), trail=service.trail
    )
    return Json(stats.mailing_out(mailing), 201)


@router.get("", summary="Mailings, newest first")
def list_all(
    request: Request,
    _: ApiKey = Depends(api_key),
    status: Status | None = Query(None),
    cursor: str | None = Query(None, max_length=26, description="next_cursor of the last page"),
    limit: int = Query(50, ge=1, le=500),
) -> Json:
    found = mailings.list_mailings(
        service_of(request), status=status, before=cursor, limit=limit + 1
    )
    page = found[:limit]
    next_cursor = page[-1].id if len(found) > limit else None
    return Json({"mailings": [stats.mailing_out(m) for m in page], "next_cursor": next_cursor})


@router.get("/{mailing_id}", summary="One mailing")
def get(mailing_id: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    return Json(stats.mailing_out(_found(request, mailing_id)))


@router.put("/{mailing_id}", summary="Change a draft")
def update(
    mailing_id: str, body: MailingIn, request: Request, key: ApiKey = Depends(admin_key)
) -> Json:
    service = service_of(request)
    _found(request, mailing_id)
    mailing = mailings.update_mailing(
        service, mailing_id, body.spec(), actor=key_actor(request, key), trail=service.trail
    )
    return Json(stats.mailing_out(mailing))


@router.delete("/{mailing_id}", status_code=204, summary="Delete a draft")
def delete(mailing_id: str, request: Request, _: ApiKey = Depends(admin_key)) -> Response:
    try:
        mailings.delete_mailing(service_of(request), mailing_id)
    except mailings.MailingNotFound as exc:
        raise _not_found(exc) from None
    return Response(status_code=204)


def _add_json(request: Request, mailing_id: str, body: RecipientsIn) -> mailings.AddReport:
    service = service_of(request)
    given = [x is not None for x in (body.numbers, body.text, body.customers)]
    if sum(given) != 1:
        raise ApiError(
            422,
            "invalid_field",
            "Give one of numbers, text or customers.",
            [{"field": "body", "message": "Give one of numbers, text or customers."}],
        )
    if body.numbers is not None:
        return mailings.add_pasted(service, mailing_id, "\n".join(body.numbers))
    if body.text is not None:
        return mailings.add_pasted(service, mailing_id, body.text)
    wanted = body.customers or CustomersIn()
    return mailings.add_customers(
        service,
        mailing_id,
        mailings.CustomerFilter(
            language=wanted.language.strip().lower() if wanted.language else None,
            created_from=wanted.created_from.timestamp() if wanted.created_from else None,
            created_to=wanted.created_to.timestamp() if wanted.created_to else None,
            has_open_request=wanted.has_open_request,
            tag=wanted.tag.strip().lower() if wanted.tag else None,
        ),
    )


@router.post("/{mailing_id}/recipients", summary="Add recipients and check them")
async def add_recipients(mailing_id: str, request: Request, _: ApiKey = Depends(admin_key)) -> Json:
    """A CSV file (text/csv body or a form's `file`), or JSON: {"numbers": [...]},
    {"text": "pasted numbers"} or {"customers": {"language": "nl", ...}}. The answer counts
    each check result and lists the rows that are not valid, with the reason."""
    _found(request, mailing_id)
    content_type = request.headers.get("content-type", "")
    raw = await request.body()
    if content_type.startswith("application/json"):
        try:
            body = RecipientsIn.model_validate_json(raw or b"{}")
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            ) from None
        report = await run_in_threadpool(_add_json, request, mailing_id, body)
    else:
        if content_type.startswith("multipart/form-data"):
            raw = _file_from_multipart(content_type, raw)
        report = await run_in_threadpool(mailings.add_csv, service_of(request), mailing_id, raw)
    return Json(report.as_dict())


@router.get("/{mailing_id}/recipients", summary="Recipients, in the order given")
def recipients(
    mailing_id: str,
    request: Request,
    _: ApiKey = Depends(api_key),
    check: Check | None = Query(None, description="Only this check result"),
    result: Check | None = Query(None, description="The same as check (older name)"),
    status: RecipientStatus | None = Query(None, description="Only recipients in this status"),
    after: int = Query(0, ge=0, description="next_after of the previous page"),
    limit: int = Query(100, ge=1, le=1000),
) -> Json:
    """Each recipient with its check result and reason, its message's status, the
    provider's code and the status, send and delivery times (kept after the message is
    purged, except the send time of a delivered one)."""
    _found(request, mailing_id)
    with service_of(request).engine.connect() as conn:
        rows = store.list_recipients(
            conn,
            mailing_id,
            after=after,
            limit=limit,
            result=check or result,
            status=status,
        )
    return Json(
        {
            "recipients": [stats.recipient_out(row) for row in rows],
            "next_after": rows[-1].id if len(rows) == limit else None,
        }
    )


@router.get("/{mailing_id}/recipients.csv", summary="Every recipient as CSV")
def recipients_csv(mailing_id: str, request: Request, _: ApiKey = Depends(api_key)) -> Response:
    """UTF-8 with a header row: line, given, number, check, reason, message_id, status,
    provider_code, status_at. Streamed a page at a time."""
    service = service_of(request)
    try:
        chunks = stats.export_csv(service, mailing_id)
    except mailings.MailingNotFound as exc:
        raise _not_found(exc) from None
    day = (iso(service.clock()) or "")[:10]
    disposition = f'attachment; filename="mailing-{mailing_id}-{day}.csv"'
    return StreamingResponse(
        chunks,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": disposition},
    )


class RemoveIn(BaseModel):
    model_config = {"extra": "forbid"}

    ids: list[int] = Field(..., max_length=100_000, description="Recipient ids to remove")


@router.delete("/{mailing_id}/recipients", summary="Remove a draft's recipients")
async def remove_recipients(
    mailing_id: str,
    request: Request,
    _: ApiKey = Depends(admin_key),
    check: Check | None = Query(None, description="Only those with this check result"),
) -> Json:
    """All of them, those with one check result (?check=invalid), or a JSON body
    {"ids": [...]}. Refused (422) once the mailing is no draft. Answers how many went and
    the counts left."""
    _found(request, mailing_id)
    raw = await request.body()
    ids = None
    if raw.strip():
        try:
            ids = RemoveIn.model_validate_json(raw).ids
        except ValidationError as exc:
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]
            ) from None
    service = service_of(request)
    removed = await run_in_threadpool(
        mailings.remove_recipients, service, mailing_id, result=check, ids=ids
    )
    with service.engine.connect() as conn:
        counts = store.check_counts(conn, mailing_id)
    return Json({"removed": removed, "counts": counts.as_dict()})


@router.get("/{mailing_id}/summary", summary="Counts, segments and cost before sending")
def summary(mailing_id: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    try:
        found = prepare.summarise(service_of(request), mailing_id)
    except mailings.MailingNotFound as exc:
        raise _not_found(exc) from None
    return Json(found.as_dict())


@router.get("/{mailing_id}/preview", summary="The SMS one recipient would get")
def preview(
    mailing_id: str,
    request: Request,
    _: ApiKey = Depends(api_key),
    recipient: int | None = Query(None, description="A recipient's id"),
    number: str | None = Query(None, max_length=40, description="Or any number"),
) -> Json:
    if (recipient is None) == (number is None):
        message = "Give either recipient (an id) or number."
        raise ApiError(422, "invalid_field", message, [{"field": "recipient", "message": message}])
    try:
        found = prepare.preview(
            service_of(request), mailing_id, recipient_id=recipient, number=number
        )
    except (mailings.MailingNotFound, store.RecipientNotFound) as exc:
        raise _not_found(exc) from None
    return Json(found)


class TestIn(BaseModel):
    model_config = {"extra": "forbid"}

    number: str = Field(..., max_length=40, description="Your own mobile number")


@router.post("/{mailing_id}/test", summary="Send the mailing's SMS to one number (your own)")
def send_test(
    mailing_id: str, body: TestIn, request: Request, _: ApiKey = Depends(admin_key)
) -> Json:
    """Queued at once, at priority 1, whatever the mailing's status, window or throttle."""
    try:
        sent = prepare.send_test(service_of(request), mailing_id, body.number)
    except mailings.MailingNotFound as exc:
        raise _not_found(exc) from None
    return Json(sent, 201)


@router.get("/{mailing_id}/statistics", summary="What became of the recipients, live")
def statistics(mailing_id: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    """Recipients by status (waiting, queued, sending, sent, delivered, undelivered,
    failed, expired, cancelled), blocked by reason (invalid, duplicate, opted_out,
    no_consent, refused), replies and the opt-outs they caused."""
    try:
        return Json(stats.statistics(service_of(request), mailing_id))
    except mailings.MailingNotFound as exc:
        raise _not_found(exc) from None


@router.get("/{mailing_id}/delivery", summary="SMS sent, delivered and failed over time")
def delivery(
    mailing_id: str,
    request: Request,
    _: ApiKey = Depends(api_key),
    buckets: int = Query(24, ge=1, le=500, description="At most this many stretches"),
) -> Json:
    """Stretches of a round width (a minute ... a week) from the first send to the last
    report, empty ones included: SMS sent in each, and delivered or failed (undelivered,
    failed, expired) by their report's time."""
    try:
        found = stats.delivery_over_time(service_of(request), mailing_id, buckets)
    except mailings.MailingNotFound as exc:
        raise _not_found(exc) from None
    width = int(found[1].start - found[0].start) if len(found) > 1 else None
    return Json(
        {
            "bucket_seconds": width,
            "buckets": [
                {
                    "start": iso(b.start),
                    "sent": b.sent,
                    "delivered": b.delivered,
                    "failed": b.failed,
                }
                for b in found
            ],
        }
    )


@router.post("/{mailing_id}/{action}", summary="Schedule, start, pause, resume or cancel")
def act(
    mailing_id: str,
    action: Literal["schedule", "unschedule", "start", "pause", "resume", "cancel"],
    request: Request,
    _: ApiKey = Depends(admin_key),
) -> Json:
    """Moves the mailing through its life cycle; pause takes back its messages still queued
    (sent again on resume), cancel cancels them. A step the status does not allow is a 422
    naming the statuses that allow it."""
    service = service_of(request)
    _found(request, mailing_id)
    if action == "cancel":
        mailing = sender.cancel(service, mailing_id, service.events)
    elif action == "pause":
        mailing = sender.pause(service, mailing_id, service.events)
    else:
        mailing = sender.change_status(service, mailing_id, Action(action), service.events)
    return Json(stats.mailing_out(mailing))
