"""Accepting an SMS: validate and normalise it into a row ready to be committed.

Everything a caller can get wrong is checked here, before anything is stored, and reported
with the field it concerns.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection

from smsdesk.domain.connections import Connection as SmsConnection
from smsdesk.domain.encoding import SegmentedText, check_text
from smsdesk.domain.errors import DomainError
from smsdesk.domain.ids import new_id
from smsdesk.domain.message import Status
from smsdesk.domain.phone import normalise_with_region, region_of
from smsdesk.domain.routing import MessageFacts, RouteProblem, RoutingTable, check_tag
from smsdesk.domain.sender import Sender, validate_sender
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.outbox.routing import (
    Plan,
    default_connection,
    explicit_plan,
    for_module,
    named_connection,
    plan_for,
    table_of,
)
from smsdesk.providers.registry import ModuleInfo, UnknownModule, get_module
from smsdesk.sms_configuration import module_settings
from smsdesk.store.optouts import opted_out


@dataclass(frozen=True, slots=True)
class NewMessage:
    """An SMS as a caller asks for it; optional fields fall back to the SMS configuration."""

    to: str
    text: str
    sender: str | None = None
    priority: int | None = None
    module: str | None = None
    scheduled_at: float | None = None
    validity_hours: float | None = None
    reference: str | None = None
    connection: str | None = None
    tag: str | None = None


def resolve_module(name: str | None, config: SmsConfiguration) -> ModuleInfo:
    """The module a message goes through: the one asked for, else the configured one."""
    try:
        info = get_module(name or config.module)
    except UnknownModule as exc:
        raise DomainError(str(exc), field="module") from None
    if not info.available:
        raise DomainError(
            f"The module {info.title} cannot send in this version of smsdesk; "
            "choose another module in the SMS configuration.",
            field="module",
        )
    return info


@dataclass(frozen=True, slots=True)
class ModuleDefaults:
    """What a module's settings decide for every message it sends."""

    priority: int
    delivery_report: bool


_last_defaults: tuple[SmsConfiguration, str, ModuleDefaults] | None = None


def module_defaults(config: SmsConfiguration, module: str) -> ModuleDefaults:
    """A module's SMS priority (Original Intelecom has one, else 2) and delivery-report choice.

    Validating the module's settings costs more than the rest of accepting a message, and the
    configuration object stays the same for many messages, so the last answer is kept.
    """
    global _last_defaults
    last = _last_defaults
    if last is not None and last[0] is config and last[1] == module:
        return last[2]
    settings = module_settings(config, module)
    defaults = ModuleDefaults(
        priority=settings.default_priority(),
        delivery_report=settings.wants_delivery_reports(),
    )
    _last_defaults = (config, module, defaults)
    return defaults


# A scheduled time this far in the past is clock skew between the caller and us: it means now.
SCHEDULE_SKEW = 5 * 60
SCHEDULE_MAX_AHEAD = 35 * 24 * 3600
SENT_NOW = (
    "The scheduled time was less than 5 minutes in the past (clock difference); "
    "the message is sent now."
)


def send_from(scheduled_at: float | None, now: float) -> float:
    """When a message may first be sent: its scheduled time, or now for none or a skewed one.

    A time further in the past is refused rather than sent at once: it is a caller's mistake
    (a wrong date or time zone) that would otherwise go unnoticed.
    """
    if scheduled_at is None:
        return now
    if not now - SCHEDULE_SKEW <= scheduled_at <= now + SCHEDULE_MAX_AHEAD:
        when = "in the past" if scheduled_at < now else "too far ahead"
        raise DomainError(
            f"The scheduled time is {when}; give a time from now up to 35 days ahead "
            "(up to 5 minutes in the past counts as now), or leave it out to send now.",
            field="scheduled_at",
        )
    return max(now, scheduled_at)


def schedule_notice(request: NewMessage, row: dict[str, Any]) -> str | None:
    """What to tell a caller whose scheduled time was taken as now, else None."""
    if request.scheduled_at is not None and row["scheduled_at"] is None:
        return SENT_NOW
    return None


@lru_cache(maxsize=64)
def _checked_sender(raw: str) -> Sender:
    """`validate_sender`, remembered: nearly every message has the configured sender."""
    return validate_sender(raw)


def checked_tag(tag: str | None) -> str | None:
    """A message's tag (for routes and reports), or None."""
    if tag is None or not tag.strip():
        return None
    return check_tag(tag, field="tag")


@lru_cache(maxsize=4096)
def country_of(recipient: str) -> str | None:
    """The ISO country of an E.164 number (remembered: the same numbers come back)."""
    region = region_of(recipient)
    return region if region and region not in ("ZZ", "001") else None


def chosen_connection(
    request: NewMessage, config: SmsConfiguration, table: RoutingTable | None = None
) -> SmsConnection | None:
    """The connection a caller asked for by id or name, or by module; None to follow routes."""
    table = table or table_of(config)
    if request.connection:
        connection = named_connection(table, request.connection)
        if request.module and request.module != connection.module:
            raise RouteProblem(
                "The connection {name} uses module {module}, not {wanted}; give one of the two.",
                field="module",
                name=connection.name,
                module=connection.module,
                wanted=request.module,
            )
        return connection
    if request.module:
        resolve_module(request.module, config)
        return for_module(table, config, request.module)
    return None


_last_connection_defaults: tuple[str, int, ModuleDefaults] | None = None


def connection_defaults(config: SmsConfiguration, connection: SmsConnection) -> ModuleDefaults:
    """What a connection's settings decide for its messages (see `module_defaults`)."""
    global _last_connection_defaults
    if connection.implicit or connection.is_default:
        return module_defaults(config, connection.module)
    last = _last_connection_defaults
    if last is not None and last[:2] == (connection.id, connection.version):
        return last[2]
    model = get_module(connection.module).settings_model
    settings = model.model_validate(dict(connection.settings))
    defaults = ModuleDefaults(settings.default_priority(), settings.wants_delivery_reports())
    _last_connection_defaults = (connection.id, connection.version, defaults)
    return defaults


@lru_cache(maxsize=256)
def _plan_json(connection_ids: tuple[str, ...]) -> str:
    return json.dumps(list(connection_ids))


def route_columns(plan: Plan, country: str | None, tag: str | None) -> dict[str, Any]:
    """The columns of a message row that record its route and connection plan.

    The estimated cost is a decimal string ("0.15000"): exact, and bound by the SQLite driver
    as it is, so the row keeps the fast multi-row insert (`store.bulk.insert_rows`), which every
    column having a value also needs (hence the zero counters).
    """
    choice = plan.choice
    cost = choice.estimated_cost
    return {
        "connection_id": plan.first.id,
        "route_id": choice.route_id,
        "route_name": choice.route_name or None,
        "route_plan": _plan_json(tuple(c.id for c in plan.connections)),
        "plan_index": 0,
        "country": country,
        "tag": tag,
        "estimated_cost": None if cost is None else str(cost),
        "cost_currency": choice.currency,
        "connection_attempts": 0,
        "failovers": 0,
    }


def _checked(
    request: NewMessage, config: SmsConfiguration, base: SmsConnection, api_key_id: str | None
) -> tuple[MessageFacts, SegmentedText]:
    """The routing facts of a valid message, with its checked text; DomainError otherwise."""
    priority = (
        request.priority
        if request.priority is not None
        else connection_defaults(config, base).priority
    )
    if priority not in (1, 2, 3):
        raise DomainError(
            f"Priority {priority} does not exist; use 1 (fastest), 2 or 3.", field="priority"
        )
    recipient, country = normalise_with_region(request.to, config.default_country_code or None)
    sender = _checked_sender(request.sender if request.sender is not None else config.sender)
    text = check_text(request.text, config.max_segments)
    tag = checked_tag(request.tag)
    facts = MessageFacts(recipient, country, sender.value, priority, api_key_id, tag, text.segments)
    return facts, text


def message_facts(
    request: NewMessage, config: SmsConfiguration, *, api_key_id: str | None = None
) -> MessageFacts:
    """What routing sees of a message, checked as accepting checks it (for the explainer:
    `outbox.routing.explain(table_of(config), message_facts(...), health)`)."""
    explicit = chosen_connection(request, config)
    base = explicit or default_connection(table_of(config), config)
    return _checked(request, config, base, api_key_id)[0]


def prepare_message(
    request: NewMessage,
    config: SmsConfiguration,
    now: float,
    *,
    api_key_id: str | None = None,
    is_test: bool = False,
    transactional: bool = False,
    request_id: str | None = None,
    session_key: str | None = None,
) -> dict[str, Any]:
    """Validate a message, choose its route and build its database row; raise DomainError
    naming the field (SpendRefused for a destination outside the allowed countries)."""
    table = table_of(config)
    explicit = chosen_connection(request, config, table)
    base = explicit or default_connection(table, config)
    resolve_module(base.module, config)
    facts, text = _checked(request, config, base, api_key_id)
    if not is_test:
        config.spend.check_destination(facts.country, config.default_country_code)
    validity = (
        request.validity_hours if request.validity_hours is not None else config.validity_hours
    )
    if not 0 < validity <= 24 * 14:
        raise DomainError(
            f"Validity {validity:g} is out of range; give more than 0 and at most 336 hours "
            "(14 days), or leave it out for the configured validity.",
            field="validity_hours",
        )
    start = send_from(request.scheduled_at, now)
    if explicit is not None:
        plan = explicit_plan(explicit, facts.sender)
    else:
        plan = plan_for(table, config, facts)
    first = plan.first
    info = resolve_module(first.module, config) if first is not base else get_module(base.module)
    defaults = connection_defaults(config, first)
    return {
        "id": new_id(),
        "module": info.name,
        "recipient": facts.recipient,
        "sender": plan.choice.sender,
        "body": request.text,
        "encoding": text.encoding.value,
        "segments": text.segments,
        "priority": facts.priority,
        "status": Status.QUEUED.value,
        "created_at": now,
        "updated_at": now,
        "next_attempt_at": start,
        "expires_at": start + validity * 3600,
        "scheduled_at": request.scheduled_at if start > now else None,
        "attempts": 0,
        "reference": request.reference,
        "api_key_id": api_key_id,
        "is_test": is_test,
        "delivery_report": defaults.delivery_report,
        "session_key": session_key,
        "request_id": request_id,
        "transactional": transactional,
        **route_columns(plan, facts.country, facts.tag),
    }


def opted_out_refusals(conn: Connection, rows: Sequence[dict[str, Any]]) -> dict[int, DomainError]:
    """For each row (by index) whose recipient opted out and that is not transactional, why not."""
    candidates = {row["recipient"] for row in rows if not row["transactional"]}
    return refusals(rows, opted_out(conn, candidates) if candidates else set())


def refusals(rows: Sequence[dict[str, Any]], refused: set[str]) -> dict[int, DomainError]:
    """The refusal of each row (by index) whose recipient is in `refused`, unless transactional."""
    return {
        index: DomainError(
            f"{row['recipient']} opted out of SMS (replied with a STOP keyword) and receives "
            "none. Send it only if it is transactional (e.g. a one-time code), with "
            "'transactional': true and an API key allowed to do so.",
            field="to",
        )
        for index, row in enumerate(rows)
        if row["recipient"] in refused and not row["transactional"]
    }
