"""Opening hours of groups and the answer a customer gets outside them.

Setting hours is what the API, the Groups screen and the CLI call; it is checked by
`domain.business_hours` and written to the audit trail.

The inbound pipeline calls `answer_out_of_hours` once per batch, after the batch's SMS joined
their requests: a request of a group that was closed when the customer's SMS arrived is marked
out of hours (a later SMS arriving in opening hours clears the mark), and the group's answer is
queued once per conversation per closed stretch (`requests.out_of_hours_period` keeps the key of
the stretch last answered). The answer is an ordinary SMS to the customer, not transactional:
a number that opted out gets none. It is linked to the request and shows in its conversation
as an automatic message (an outbound entry without an author).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from smsdesk.conversations.groups import AuditedHost, Group, find_group
from smsdesk.domain.audit import Actor
from smsdesk.domain.business_hours import (
    WEEKDAYS,
    HoursProblem,
    OpeningHours,
    check_reply,
    check_time_zone,
    parse_holidays,
    parse_week,
    stored_hours,
)
from smsdesk.domain.errors import DomainError
from smsdesk.domain.settings import SmsConfiguration
from smsdesk.host import Host
from smsdesk.outbox.accept import NewMessage, opted_out_refusals, prepare_message
from smsdesk.store import groups as store
from smsdesk.store import live
from smsdesk.store import messages as outbox_store
from smsdesk.store import requests as request_store

log = logging.getLogger(__name__)

__all__ = [
    "WEEKDAYS",
    "Arrived",
    "GroupHours",
    "HoursProblem",
    "OpeningHours",
    "all_hours",
    "answer_out_of_hours",
    "hours_of_group",
    "set_hours",
]

AUTOMATIC_SOURCE = "out_of_hours"  # the first timeline line of an automatic answer


@dataclass(frozen=True, slots=True)
class GroupHours:
    """A group's opening hours and the answer sent outside them ("" for none)."""

    group: Group
    hours: OpeningHours
    reply: str


def _of(row: Any) -> tuple[OpeningHours, str]:
    return stored_hours(row.time_zone, row.hours, row.holidays), str(row.out_of_hours_reply)


def hours_of_group(host: Host, wanted: str) -> GroupHours:
    """A group's hours, by its id or name; GroupNotFound if there is none."""
    with host.engine.connect() as conn:
        group = find_group(conn, wanted)
        hours, reply = _of(store.hours_of(conn, group.id))
        return GroupHours(group, hours, reply)


def all_hours(host: Host) -> dict[str, tuple[OpeningHours, str]]:
    """group id -> (hours, answer) of every group."""
    with host.engine.connect() as conn:
        return {group_id: _of(row) for group_id, row in store.all_hours(conn).items()}


def set_hours(
    host: AuditedHost,
    actor: Actor,
    wanted: str,
    *,
    time_zone: str | None = None,
    week: Mapping[str, str | Sequence[str]] | None = None,
    holidays: Iterable[str] | None = None,
    reply: str | None = None,
) -> GroupHours:
    """Change what is given: the time zone, the whole week (days left out are closed; no day
    with hours means open around the clock), the holidays, the out-of-hours answer."""
    zone = check_time_zone(time_zone) if time_zone is not None else None
    days = parse_week(week) if week is not None else None
    closed = parse_holidays(holidays) if holidays is not None else None
    answer = check_reply(reply, host.settings.load().max_segments) if reply is not None else None

    def job(conn: Connection) -> GroupHours:
        group = find_group(conn, wanted)
        hours, text = _of(store.hours_of(conn, group.id))
        hours = OpeningHours(
            zone if zone is not None else hours.time_zone,
            days if days is not None else hours.week,
            closed if closed is not None else hours.holidays,
        )
        text = answer if answer is not None else text
        values = {
            "time_zone": hours.time_zone,
            "hours": hours.hours_json(),
            "holidays": hours.holidays_json(),
            "out_of_hours_reply": text,
        }
        store.update_group(conn, group.id, {**values, "updated_at": host.clock()})
        host.trail.record(
            conn,
            actor,
            "group.hours_changed",
            target_kind="group",
            target_id=group.id,
            details={
                "time_zone": hours.time_zone,
                "hours": values["hours"],
                "holidays": len(hours.holidays),
                "out_of_hours_reply": "set" if text else "none",
            },
        )
        return GroupHours(group, hours, text)

    return host.writer.run_sync(job)


# -- the answer (the inbound pipeline) ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrived:
    """A customer's SMS that joined a request: from which number, when."""

    request_id: str
    number: str
    at: float


def answer_out_of_hours(
    conn: Connection, config: SmsConfiguration, arrivals: Sequence[Arrived], now: float
) -> int:
    """Mark the batch's requests out of hours or not and queue the answers; how many."""
    joined = {arrival.request_id for arrival in arrivals}
    facts = {row.id: row for row in store.out_of_hours_facts(conn, joined)}
    if not facts:
        return 0
    hours: dict[str, OpeningHours] = {}
    flags: dict[str, bool] = {}
    periods = {rid: row.out_of_hours_period for rid, row in facts.items()}
    answers: list[tuple[str, str, dict[str, Any]]] = []  # request id, period, message row
    for arrival in sorted(arrivals, key=lambda a: a.at):
        row = facts.get(arrival.request_id)
        if row is None:
            continue
        if row.group_id not in hours:
            hours[row.group_id] = stored_hours(row.time_zone, row.hours, row.holidays)
        period = hours[row.group_id].period(arrival.at)
        flags[row.id] = period is not None
        if period is None or not row.out_of_hours_reply or periods[row.id] == period:
            continue
        if hours[row.group_id].period(now) != period:
            continue  # processed after the group opened again: the answer would be wrong now
        periods[row.id] = period
        try:
            message = prepare_message(
                NewMessage(to=arrival.number, text=row.out_of_hours_reply),
                config,
                now,
                request_id=row.id,
                session_key=row.session_key,
            )
        except DomainError as exc:
            log.warning("out-of-hours answer for request %s not sent: %s", row.id, exc.message)
            continue
        answers.append((row.id, period, message))
    refused = opted_out_refusals(conn, [message for _, _, message in answers])
    sent = [answer for index, answer in enumerate(answers) if index not in refused]
    answered = {rid: period for rid, period, _ in sent}
    _store(conn, sent, now)
    marks = [
        {
            "rid": rid,
            "flag": flag,
            "period": answered.get(rid, facts[rid].out_of_hours_period),
        }
        for rid, flag in flags.items()
        if flag != bool(facts[rid].out_of_hours) or rid in answered
    ]
    if marks:
        store.mark_out_of_hours(conn, marks)
        live.request_changed(conn, [mark["rid"] for mark in marks], ["out_of_hours"], now)
    return len(sent)


def _store(conn: Connection, sent: Sequence[tuple[str, str, dict[str, Any]]], now: float) -> None:
    """The answers as queued SMS and as automatic entries of their conversations."""
    if not sent:
        return
    outbox_store.insert_messages(conn, [message for _, _, message in sent], AUTOMATIC_SOURCE)
    request_store.insert_entries(
        conn,
        [
            {
                "request_id": rid,
                "direction": "out",
                "inbound_id": None,
                "message_id": message["id"],
                "body": message["body"],
                "author": None,
                "at": now,
            }
            for rid, _, message in sent
        ],
    )
