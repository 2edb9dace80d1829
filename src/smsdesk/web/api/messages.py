"""Sending and reading messages: /api/v1/messages.

A batch is written to the audit trail once, with its counts, in the transaction that stores
it. Single sends are not: each message row names its API key, and a chained audit write per
message would halve the rate at which messages are accepted.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Header, Query, Request
from starlette.concurrency import run_in_threadpool

from smsdesk import metrics
from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.message import Status, check_cancel, check_resend
from smsdesk.domain.templating import MissingVariable
from smsdesk.outbox.accept import NewMessage, prepare_message, refusals, schedule_notice
from smsdesk.service import Service
from smsdesk.store import messages as repo
from smsdesk.store.apikeys import ApiKey
from smsdesk.web.actors import key_actor
from smsdesk.web.api import bulk_messages
from smsdesk.web.api.schemas import (
    SendBatch,
    SendMessage,
    accepted_out,
    event_out,
    message_out,
)
from smsdesk.web.api.templates import missing_variable, text_for_recipient
from smsdesk.web.auth import api_key, service_of
from smsdesk.web.errors import ApiError, error_body
from smsdesk.web.jsonresponse import Json
from smsdesk.web.shared_calls import shared_call

router = APIRouter(prefix="/api/v1/messages", tags=["messages"])


def _new_message(item: SendMessage, service: Service) -> NewMessage:
    """The message to prepare; a template is rendered for the recipient first."""
    text = item.text
    if item.template is not None:
        text = text_for_recipient(service, item.to, item.template, item.language, item.variables)
    return NewMessage(
        to=item.to,
        text=text or "",
        sender=item.sender,
        priority=item.priority,
        module=item.module,
        validity_hours=item.validity_hours,
        reference=item.reference,
        scheduled_at=item.scheduled_at.timestamp() if item.scheduled_at else None,
    )


def _new_messages(items: list[SendMessage], service: Service) -> list[NewMessage | DomainError]:
    """Each item's message, or why its template could not be rendered."""
    built: list[NewMessage | DomainError] = []
    for item in items:
        try:
            built.append(_new_message(item, service))
        except DomainError as exc:
            built.append(exc)
    return built


def _check_transactional(key: ApiKey, wanted: bool) -> None:
    if wanted and not key.may_send_transactional:
        raise ApiError(
            403,
            "forbidden",
            "This API key may not send transactional messages (which reach numbers that "
            "opted out); use an admin key or one created with 'smsdesk apikey create "
            "--transactional'.",
        )


async def _opt_out_refusals(service: Service, rows: list[dict[str, Any]]) -> dict[int, DomainError]:
    """Refusals of opted-out recipients: from memory when it can answer, else from a thread."""
    candidates = {row["recipient"] for row in rows if not row["transactional"]}
    opt_outs = service.opt_outs
    found = opt_outs.opted_out_in_memory(candidates)
    if found is None:
        # Stale: one look at the database for every request waiting now, then memory again.
        await shared_call((opt_outs, "refresh"), opt_outs.refresh)
        found = opt_outs.opted_out_in_memory(candidates)
    if found is None:
        found = await run_in_threadpool(opt_outs.opted_out, candidates)
    return refusals(rows, found)


async def _commit(
    service: Service,
    rows: list[dict[str, Any]],
    idempotency: dict[str, Any] | None,
    audit: tuple[Actor, dict[str, Any]] | None = None,
) -> None:
    """Store the rows; with `audit` (a batch), its one audit entry in the same transaction."""
    job = repo.NewMessages(rows, "api", [idempotency] if idempotency is not None else [])
    if audit is None:
        await service.writer.run(job)  # merged with other requests' rows into one insert
    else:
        actor, details = audit

        def batch_job(conn: Any) -> None:
            job(conn)
            service.trail.record(
                conn, actor, "message.batch_accepted", target_kind="batch", details=details
            )

        await service.writer.run(batch_job)
    for module, count in Counter(row["module"] for row in rows).items():
        metrics.ACCEPTED.labels(module).inc(count)
    service.wake_dispatcher()


def _replay(service: Service, key: ApiKey, idem_key: str, request_hash: str) -> Json | None:
    with service.engine.connect() as conn:
        row = repo.get_idempotency(conn, key.id, idem_key)
    if row is None:
        return None
    if row.request_hash != request_hash:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used with a different request; "
            "use a new key for a new request.",
        )
    return Json(
        orjson.loads(row.response), row.status_code, headers={"Idempotent-Replayed": "true"}
    )


async def _respond(
    service: Service,
    key: ApiKey,
    idem_key: str | None,
    request_hash: str,
    rows: list[dict[str, Any]],
    body: dict[str, Any],
    status: int,
    audit: tuple[Actor, dict[str, Any]] | None = None,
) -> Json:
    idempotency = None
    if idem_key:
        idempotency = {
            "api_key_id": key.id,
            "key": idem_key,
            "request_hash": request_hash,
            "response": orjson.dumps(body).decode(),
            "status_code": status,
            "created_at": time.time(),
        }
    try:
        await _commit(service, rows, idempotency, audit)
    except repo.IdempotencyKeyTaken:
        replay = _replay(service, key, idem_key or "", request_hash) if idem_key else None
        if replay is None:
            raise
        return replay
    return Json(body, status)


def _request_hash(body: SendMessage | SendBatch) -> str:
    """What an Idempotency-Key is bound to (only needed when the request carries one)."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def _check_idem_key(value: str | None) -> str | None:
    if value is not None and not 1 <= len(value) <= 200:
        raise ApiError(
            422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 200 characters long."
        )
    return value


@router.post("", status_code=201, summary="Send one SMS")
async def send_message(
    item: SendMessage,
    request: Request,
    key: ApiKey = Depends(api_key),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> Json:
    """Validate, store and queue one SMS; the answer comes after the message is committed."""
    service = service_of(request)
    idem = _check_idem_key(idempotency_key)
    request_hash = _request_hash(item) if idem else ""
    if idem and (replay := _replay(service, key, idem, request_hash)):
        return replay
    row, body = await prepare_single(service, key, item)
    return await _respond(service, key, idem, request_hash, [row], body, 201)


async def prepare_single(
    service: Service, key: ApiKey, item: SendMessage
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One SMS's row and answer, or its refusal raised; nothing is stored yet."""
    _check_transactional(key, item.transactional)
    config = service.settings.load()
    try:
        # Only a template may need the database; a plain text needs no hop to a thread.
        if item.template is None:
            wanted = _new_message(item, service)
        else:
            wanted = await run_in_threadpool(_new_message, item, service)
    except MissingVariable as exc:
        raise missing_variable(exc) from None
    row = prepare_message(
        wanted,
        config,
        service.clock(),
        api_key_id=key.id,
        transactional=item.transactional,
    )
    refusals = await _opt_out_refusals(service, [row])
    if refusals:
        raise refusals[0]
    return row, accepted_out(row, schedule_notice(wanted, row))


async def store_single(
    service: Service, key: ApiKey, row: dict[str, Any], body: dict[str, Any]
) -> Json:
    """Commit a prepared SMS sent without an Idempotency-Key; its 201 answer."""
    return await _respond(service, key, None, "", [row], body, 201)


@router.post("/batch", summary="Send up to 1,000 SMS in one request")
async def send_batch(
    batch: SendBatch,
    request: Request,
    key: ApiKey = Depends(api_key),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key"),
) -> Json:
    """One result per message, in order: accepted with its id, or rejected with the reason."""
    service = service_of(request)
    idem = _check_idem_key(idempotency_key)
    request_hash = _request_hash(batch) if idem else ""
    if idem and (replay := _replay(service, key, idem, request_hash)):
        return replay
    config = service.settings.load()
    now = service.clock()
    rows: list[dict[str, Any]] = []
    results: list[dict[str, Any]] = []
    items = batch.items()
    _check_transactional(key, any(item.transactional for item in items))
    prepared: list[dict[str, Any] | DomainError] = []
    notices: dict[str, str] = {}
    built = await run_in_threadpool(_new_messages, items, service)
    for item, message in zip(items, built, strict=True):
        if isinstance(message, DomainError):
            prepared.append(message)
            continue
        try:
            row = prepare_message(
                message, config, now, api_key_id=key.id, transactional=item.transactional
            )
        except DomainError as exc:
            prepared.append(exc)
            continue
        prepared.append(row)
        if notice := schedule_notice(message, row):
            notices[row["id"]] = notice
    valid = [p for p in prepared if isinstance(p, dict)]
    refused = await _opt_out_refusals(service, valid)
    refused_ids = {valid[i]["id"]: error for i, error in refused.items()}
    for index, outcome in enumerate(prepared):
        if isinstance(outcome, dict):
            outcome = refused_ids.get(outcome["id"], outcome)
        if isinstance(outcome, DomainError):
            field_error = {"field": outcome.field, "message": outcome.message}
            results.append(
                {
                    "index": index,
                    "accepted": False,
                    **error_body("invalid_field", outcome.message, [field_error]),
                }
            )
            continue
        rows.append(outcome)
        accepted = accepted_out(outcome, notices.get(outcome["id"]))
        results.append({"index": index, "accepted": True, "message": accepted})
    body = {"accepted": len(rows), "rejected": len(results) - len(rows), "results": results}
    counts = {"accepted": len(rows), "rejected": len(results) - len(rows)}
    audit = (key_actor(request, key), counts)
    return await _respond(service, key, idem, request_hash, rows, body, 200, audit)


@router.get("/{message_id}", summary="A message with its timeline")
def get_message(message_id: str, request: Request, _: ApiKey = Depends(api_key)) -> Json:
    service = service_of(request)
    with service.engine.connect() as conn:
        row = repo.get_message(conn, message_id)
        if row is None:
            raise ApiError(404, "not_found", f"There is no message with id '{message_id}'.")
        timeline = repo.get_timeline(conn, message_id)
    return Json({**message_out(row), "timeline": [event_out(e) for e in timeline]})


@router.get("", summary="List messages, newest first")
def list_messages(
    request: Request,
    _: ApiKey = Depends(api_key),
    status: Status | None = None,
    module: str | None = None,
    to: str | None = Query(None, description="Recipient in E.164, e.g. +31612345678"),
    priority: int | None = Query(None, ge=1, le=3),
    since: float | None = Query(None, description="Created at or after (Unix seconds)"),
    until: float | None = Query(None, description="Created before (Unix seconds)"),
    cursor: str | None = Query(None, description="The next_cursor of the previous page"),
    limit: int = Query(50, ge=1, le=1000),
) -> Json:
    service = service_of(request)
    flt = repo.MessageFilter(status.value if status else None, module, to, since, until, priority)
    with service.engine.connect() as conn:
        rows = repo.list_messages(conn, flt, before_id=cursor, limit=limit + 1)
    page = rows[:limit]
    next_cursor = page[-1].id if len(rows) > limit else None
    return Json({"messages": [message_out(r) for r in page], "next_cursor": next_cursor})


def _operator_action(request: Request, key: ApiKey, message_id: str, action: str) -> Json:
    """Cancel or resend, with its audit entry in the same transaction."""
    service = service_of(request)
    with service.engine.connect() as conn:
        row = repo.get_message(conn, message_id)
    if row is None:
        raise ApiError(404, "not_found", f"There is no message with id '{message_id}'.")
    current = Status(row.status)
    new = check_cancel(current) if action == "cancel" else check_resend(current)
    actor = key_actor(request, key)

    def change(conn: Any) -> bool:
        changed = repo.change_status(
            conn, message_id, current, new, service.clock(), f"{action} by operator", service.events
        )
        if changed:
            verb = "cancelled" if action == "cancel" else "resent"
            service.trail.record(
                conn, actor, f"message.{verb}", target_kind="message", target_id=message_id
            )
        return bool(changed)

    done = service.writer.run_sync(change)
    if not done:
        raise ApiError(409, "conflict", "The message changed meanwhile; reload and try again.")
    service.wake_dispatcher()
    return get_message(message_id, request)


@router.post("/{message_id}/cancel", summary="Cancel a queued message")
def cancel_message(message_id: str, request: Request, key: ApiKey = Depends(api_key)) -> Json:
    return _operator_action(request, key, message_id, "cancel")


@router.post("/{message_id}/resend", summary="Queue a failed, expired or undelivered message again")
def resend_message(message_id: str, request: Request, key: ApiKey = Depends(api_key)) -> Json:
    return _operator_action(request, key, message_id, "resend")


router.include_router(bulk_messages.router)  # POST /api/v1/messages/bulk
