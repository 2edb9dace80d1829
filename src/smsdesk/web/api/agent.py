"""The original product's messaging agent over REST: /api/v1/agent.

    GET  /plugins                 GetPlugins(): the modules that can send
    POST /send                    SendMessages(plugin, OutgoingMessage[]): one status each, in order
    POST /delivery-status         SetDeliveryStatus(plugin, externalMessageId, status, description)
    POST /delivery-status/query   GetDeliveryStatus(messagingIds[]): one status each, in order

Statuses are our status names, not integers (the original's integer codes were never
documented). Messages sent here go through the outbox like any other, so they are retried,
rate-limited and reported on the same way.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from smsdesk import metrics
from smsdesk.domain.errors import DomainError
from smsdesk.domain.message import Status
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.domain.sms import StatusReport
from smsdesk.outbox.accept import NewMessage, opted_out_refusals, prepare_message, resolve_module
from smsdesk.providers.base import ModuleInfo
from smsdesk.providers.registry import all_modules
from smsdesk.service import Service
from smsdesk.store import agent as queries
from smsdesk.store import messages as repo
from smsdesk.store import reports
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.auth import admin_key, api_key, service_of
from smsdesk.web.errors import ApiError

router = APIRouter(prefix="/api/v1/agent", tags=["messaging agent"])

MAX_MESSAGES = 1000
UNKNOWN = "unknown"
DESCRIPTIONS = {
    Status.QUEUED.value: "waiting in the outbox to be sent",
    Status.SENDING.value: "being handed to the provider",
    Status.SENT.value: "accepted by the provider; no final delivery report yet",
    Status.DELIVERED.value: "delivered to the phone",
    Status.UNDELIVERED.value: "the provider could not deliver it to the phone",
    Status.FAILED.value: "could not be sent",
    Status.EXPIRED.value: "its validity period ended before it was delivered",
    Status.CANCELLED.value: "cancelled before it was sent",
}
STATUS_DOC = (
    "A status name (no integer codes): queued, sending, sent (accepted by the provider), "
    "delivered, undelivered, failed, expired, cancelled; 'unknown' only in answers, for an id "
    "we do not have. delivered, undelivered, failed, expired and cancelled are final."
)
_STATUS_NAMES = [s.value for s in Status]


class OutgoingMessage(BaseModel):
    """One message of SendMessages, as the original product's OutgoingMessage."""

    model_config = {"extra": "forbid", "populate_by_name": True}

    sender: str | None = Field(
        None, alias="from", max_length=20, description="Sender; empty: the configured one."
    )
    to: str = Field(..., max_length=40, description="Mobile number.")
    content: str = Field(..., max_length=10_000, description="The text.")
    format: str | None = Field(
        None, max_length=40, description="Messaging format; only SMS ('sms/160') is sent."
    )
    parent_messaging_id: str | None = Field(
        None,
        max_length=40,
        description="The earlier message this one follows: its request and session are copied.",
    )
    suggested_session_key: str | None = Field(
        None, max_length=40, description="Session key for threading replies."
    )


class SendMessages(BaseModel):
    model_config = {"extra": "forbid"}

    plugin: str = Field(..., max_length=40, description="The module to send through.")
    messages: list[OutgoingMessage] = Field(..., max_length=MAX_MESSAGES)


class DeliveryStatusOut(BaseModel):
    """MessageDeliveryStatus: our message id, its status and a readable description."""

    messaging_id: str | None = Field(None, description="Our message id; null if not accepted.")
    status: str = Field(
        ..., description=STATUS_DOC, json_schema_extra={"enum": [*_STATUS_NAMES, UNKNOWN]}
    )
    status_description: str


class SetDeliveryStatus(BaseModel):
    model_config = {"extra": "forbid"}

    plugin: str = Field(..., max_length=40, description="The module the message went through.")
    external_message_id: str = Field(
        ..., min_length=1, max_length=100, description="The provider's id of the message."
    )
    status: Status = Field(..., description=STATUS_DOC)
    status_description: str = Field("", max_length=1000)


class SetDeliveryStatusOut(BaseModel):
    outcome: str = Field(
        ...,
        description="applied; duplicate (already that status); stale (ignored: a final status "
        "is never replaced, e.g. a late 'sent' after 'delivered'); unmatched (no message has "
        "this provider id yet: kept, and applied when its send is recorded).",
        json_schema_extra={"enum": ["applied", "duplicate", "stale", "unmatched"]},
    )
    messaging_id: str | None
    status: str | None = Field(None, description=STATUS_DOC)


class DeliveryStatusQuery(BaseModel):
    model_config = {"extra": "forbid"}

    messaging_ids: list[str] = Field(..., max_length=MAX_MESSAGES)


class PluginOut(BaseModel):
    """ProviderInfo: a module that can send."""

    name: str
    title: str
    description: str
    supported_formats: list[str]
    supports_config: bool = Field(description="Always false: modules use the saved settings.")
    supports_status_query: bool
    default: bool = Field(description="Whether it is the module of the SMS configuration.")


def _plugin(name: str, config: SmsConfiguration) -> ModuleInfo:
    try:
        return resolve_module(name, config)
    except DomainError as exc:
        raise ApiError(
            422, "invalid_field", exc.message, [{"field": "plugin", "message": exc.message}]
        ) from None


@router.get("/plugins", summary="GetPlugins: the modules that can send")
def get_plugins(request: Request, _: ApiKey = Depends(api_key)) -> list[PluginOut]:
    config = service_of(request).settings.load()
    return [
        PluginOut(
            name=info.name,
            title=info.title,
            description=info.description,
            supported_formats=["sms/160"],
            supports_config=False,
            supports_status_query=info.supports_status_query,
            default=info.name == config.module,
        )
        for info in all_modules()
        if info.available
    ]


def _failed(reason: str) -> dict[str, Any]:
    return {"messaging_id": None, "status": Status.FAILED.value, "status_description": reason}


def _parents(service: Service, ids: set[str]) -> dict[str, Any]:
    if not ids:
        return {}
    with service.engine.connect() as conn:
        return queries.thread_parents(conn, ids)


def _prepare(
    item: OutgoingMessage,
    module: str,
    config: SmsConfiguration,
    now: float,
    key: ApiKey,
    parent: Any,
) -> dict[str, Any]:
    """The row for one message, threaded onto its parent's request; DomainError if invalid."""
    fmt = (item.format or "").strip().lower()
    if fmt and not fmt.startswith("sms"):
        raise DomainError(
            f"Format '{item.format}' cannot be sent; this service sends SMS ('sms/160').",
            field="format",
        )
    request_id = parent.request_id if parent is not None else None
    session_key = item.suggested_session_key or (
        parent.session_key if parent is not None and request_id else None
    )
    return prepare_message(
        NewMessage(to=item.to, text=item.content, sender=item.sender or None, module=module),
        config,
        now,
        api_key_id=key.id,
        request_id=request_id,
        session_key=session_key,
    )


def _refusals(service: Service, rows: list[dict[str, Any]]) -> dict[int, DomainError]:
    with service.engine.connect() as conn:
        return opted_out_refusals(conn, rows)


@router.post(
    "/send",
    summary="SendMessages: send a list of messages through a module",
    response_model=list[DeliveryStatusOut],
)
async def send_messages(
    body: SendMessages, request: Request, key: ApiKey = Depends(api_key)
) -> list[dict[str, Any]]:
    """One status per message, in the same order: *queued* with its id, or *failed* with why.

    A message whose `parent_messaging_id` names one of our messages that belongs to a request
    joins that request and, unless it suggests its own, takes its session key. An unknown
    parent is ignored.
    """
    service = service_of(request)
    config = service.settings.load()
    module = _plugin(body.plugin, config).name
    now = service.clock()
    parents = _parents(
        service, {i.parent_messaging_id for i in body.messages if i.parent_messaging_id}
    )
    prepared: list[dict[str, Any] | DomainError] = []
    for item in body.messages:
        try:
            parent = parents.get(item.parent_messaging_id or "")
            prepared.append(_prepare(item, module, config, now, key, parent))
        except DomainError as exc:
            prepared.append(exc)
    valid = [p for p in prepared if isinstance(p, dict)]
    refused = await run_in_threadpool(_refusals, service, valid)
    refused_ids = {valid[i]["id"]: error for i, error in refused.items()}
    rows: list[dict[str, Any]] = []
    answer: list[dict[str, Any]] = []
    for outcome in prepared:
        if isinstance(outcome, dict):
            outcome = refused_ids.get(outcome["id"], outcome)
        if isinstance(outcome, DomainError):
            answer.append(_failed(f"{outcome.field}: {outcome.message}"))
            continue
        rows.append(outcome)
        answer.append(
            {
                "messaging_id": outcome["id"],
                "status": outcome["status"],
                "status_description": DESCRIPTIONS[outcome["status"]],
            }
        )
    if rows:
        await service.writer.run(repo.NewMessages(rows, "agent"))
        for name, count in Counter(row["module"] for row in rows).items():
            metrics.ACCEPTED.labels(name).inc(count)
        service.wake_dispatcher()
    return answer


@router.post(
    "/delivery-status",
    summary="SetDeliveryStatus: a status for the message a module knows by this id",
    response_model=SetDeliveryStatusOut,
)
async def set_delivery_status(
    body: SetDeliveryStatus, request: Request, _: ApiKey = Depends(admin_key)
) -> dict[str, Any]:
    """Applied like a provider's delivery report: repeats change nothing and a final status
    is never replaced. An id no message has yet is kept and applied once its send is recorded.
    """
    service = service_of(request)
    module = _plugin(body.plugin, service.settings.load()).name
    report = StatusReport(
        body.external_message_id,
        body.status,
        body.status.value,
        body.status_description or "set through the messaging-agent API",
    )
    now = service.clock()
    events = service.events
    tally, row = await service.writer.run(
        lambda c: reports.apply_and_find(c, module, report, now, events=events, source="agent")
    )
    metrics.count_reports(module, tally)
    counts = {
        "applied": tally.applied,
        "duplicate": tally.duplicate,
        "stale": tally.stale,
        "unmatched": tally.unmatched,
    }
    outcome = next((name for name, n in counts.items() if n), "unmatched")
    return {
        "outcome": outcome,
        "messaging_id": row.id if row is not None else None,
        "status": row.status if row is not None else None,
    }


def _statuses(service: Service, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Status and description of each known message among `ids`."""
    wanted = set(ids)
    if not wanted:
        return {}
    with service.engine.connect() as conn:
        rows = queries.statuses(conn, wanted)
        details = queries.latest_details(conn, wanted)
    found = {}
    for row in rows:
        description = DESCRIPTIONS.get(row.status, row.status)
        said = row.error if row.status == Status.FAILED.value else details.get(row.id)
        if said and said != description:
            description = f"{description}: {said}"
        found[row.id] = {
            "messaging_id": row.id,
            "status": row.status,
            "status_description": description,
        }
    return found


@router.post(
    "/delivery-status/query",
    summary="GetDeliveryStatus: the status of each of our message ids",
    response_model=list[DeliveryStatusOut],
)
async def get_delivery_status(
    body: DeliveryStatusQuery, request: Request, _: ApiKey = Depends(api_key)
) -> list[dict[str, Any]]:
    """One status per id, in the same order; an id we do not have is *unknown*."""
    service = service_of(request)
    found = await run_in_threadpool(_statuses, service, body.messaging_ids)
    return [
        found.get(
            i,
            {"messaging_id": i, "status": UNKNOWN, "status_description": "no message has this id"},
        )
        for i in body.messaging_ids
    ]
