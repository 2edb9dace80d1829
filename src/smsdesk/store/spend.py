"""Spend controls where messages are stored: the allowed countries and the daily caps.

`charge` runs in the transaction that inserts outbound messages (`store.messages.
insert_messages`), so a refusal rolls the whole insert back: nothing of a refused request is
stored. It reads the `spend` section of the stored SMS configuration in that transaction, so
every process sees a changed cap at once.

Counters are one row per UTC day and scope (total, a country, an API key) in `spend_counters`,
charged with a conditional upsert:

    INSERT ... ON CONFLICT (day, scope, country, api_key_id)
    DO UPDATE SET messages = messages + :n WHERE messages + :n <= :cap RETURNING messages

No row back means the cap would be passed: the message is refused. SQLite (3.35+) and
PostgreSQL both run this statement; on PostgreSQL the row lock serialises concurrent charges,
so two processes cannot both take the last message of a cap.

When a charge brings a counter to the alert percentage of its cap, the `spend.threshold` event
fires, once per day per cap (a conditional update of `alerted` decides which charge does it).
Test sends (Send test) are never charged.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from smsdesk.domain.phone import region_of
from smsdesk.domain.spend_settings import Rule, SpendRefused, SpendSettings
from smsdesk.events import SPEND_THRESHOLD, EventSink
from smsdesk.store import db
from smsdesk.store.tables import settings, spend_counters

__all__ = [
    "SpendRefused",
    "SpendUsage",
    "admitted",
    "charge",
    "report_alerts_to",
    "usage",
    "utc_day",
]
log = logging.getLogger(__name__)

# Messages smsdesk sends on its own (opt-out confirmations, out-of-hours answers, agents'
# notifications) are stored in transactions that do other work too: a refused one is left out
# (and logged) rather than failing the inbound SMS or notification that caused it.
AUTOMATIC_SOURCES = frozenset({"inbound", "out_of_hours", "notification"})

sc = spend_counters
TOTAL, COUNTRY, API_KEY = "total", "country", "api_key"
RULES: dict[str, Rule] = {TOTAL: "daily_total", COUNTRY: "daily_country", API_KEY: "api_key_daily"}
_sinks: weakref.WeakKeyDictionary[Engine, EventSink] = db.per_engine()


def report_alerts_to(engine: Engine, events: EventSink) -> None:
    """Send the `spend.threshold` events of charges in `engine`'s transactions to `events`
    (the service does this once; `insert_messages` has no sink of its own)."""
    _sinks[engine] = events


def utc_day(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


@lru_cache(maxsize=8)
def _parsed(document: str) -> tuple[SpendSettings, str]:
    doc = json.loads(document)
    return SpendSettings.model_validate(doc.get("spend") or {}), doc.get("default_country_code", "")


# Built once: every group commit of new messages reads it.
_STORED_DOCUMENT = sa.select(settings.c.value).where(settings.c.key == "sms")


def stored_settings(conn: Connection) -> tuple[SpendSettings, str]:
    """The stored spend section and default country code (defaults when never saved)."""
    value = conn.execute(_STORED_DOCUMENT).scalar()
    return _parsed(value) if value else (SpendSettings(), "")


@lru_cache(maxsize=4096)
def _country(recipient: str) -> str | None:
    region = region_of(recipient)
    return region if region and region not in ("ZZ", "001") else None


Scope = tuple[str, str, str]  # scope, country, api key id


def _cap(spend: SpendSettings, scope: Scope) -> int | None:
    kind, country, key = scope
    if kind == TOTAL:
        return spend.daily_total
    if kind == COUNTRY:
        return spend.daily_per_country.get(country)
    return spend.daily_per_api_key.get(key)


@dataclass(slots=True)
class _Tally:
    messages: int = 0
    segments: int = 0
    cost: Decimal = Decimal(0)


def _tally(rows: Sequence[dict[str, Any]], allowed: frozenset[str] | None) -> dict[Scope, _Tally]:
    """Messages, segments and cost per cap scope. Rows are summed per (country, API key)
    first: a group commit holds thousands of rows and only a few such pairs."""
    pairs: dict[tuple[str | None, str], _Tally] = {}
    for row in rows:
        country = row.get("country") or _country(row["recipient"])
        pair = (country, row.get("api_key_id") or "")
        tally = pairs.get(pair)
        if tally is None:
            if allowed is not None and country not in allowed:
                raise SpendRefused("country_not_allowed", country=country or "?")
            tally = pairs[pair] = _Tally()
        tally.messages += 1
        tally.segments += int(row.get("segments") or 1)
        cost = row.get("estimated_cost")
        if cost:
            tally.cost += Decimal(cost)
    tallies: dict[Scope, _Tally] = {}
    for (country, key), tally in pairs.items():
        scopes = [(TOTAL, "", ""), (COUNTRY, country or "", "")]
        if key:
            scopes.append((API_KEY, "", key))
        for scope in scopes:
            total = tallies.setdefault(scope, _Tally())
            total.messages += tally.messages
            total.segments += tally.segments
            total.cost += tally.cost
    return tallies


def charge(
    conn: Connection,
    rows: Sequence[dict[str, Any]],
    now: float,
    events: EventSink | None = None,
) -> None:
    """Count `rows` against today's caps; raise SpendRefused (nothing counted) when a
    recipient's country is not allowed or a cap would be passed. Test sends are free."""
    chargeable = [row for row in rows if not row.get("is_test")]
    if not chargeable:
        return
    spend, default_country_code = stored_settings(conn)
    tallies = _tally(chargeable, spend.allowed_regions(default_country_code))
    day = utc_day(now)
    if all(_cap(spend, scope) is None for scope in tallies):
        _add_uncapped(conn, day, tallies)
        return
    for scope, tally in tallies.items():
        cap = _cap(spend, scope)
        counted = _add(conn, day, scope, tally, cap)
        if counted is None:
            raise SpendRefused(
                RULES[scope[0]], cap, _used(conn, day, scope), country=scope[1] or None
            )
        if cap and counted * 100 >= cap * spend.alert_percent:
            _alert(conn, day, scope, cap, counted, spend.alert_percent, events)


def admitted(
    conn: Connection, rows: Sequence[dict[str, Any]], source: str
) -> Sequence[dict[str, Any]]:
    """The rows that may be stored, charged: every row or SpendRefused for callers' messages;
    for automatic ones (`AUTOMATIC_SOURCES`) those within the controls, the others left out."""
    now = max((row["created_at"] for row in rows), default=0.0)
    if source not in AUTOMATIC_SOURCES:
        charge(conn, rows, now)
        return rows
    kept: list[dict[str, Any]] = []
    for row in rows:
        try:
            with conn.begin_nested():
                charge(conn, [row], now)
        except SpendRefused as exc:
            log.warning("automatic SMS %s not queued (%s): %s", row["id"], source, exc.rule)
        else:
            kept.append(row)
    return kept


# One statement for SQLite and PostgreSQL, built once: it runs for every stored message.
_INSERT = (
    "INSERT INTO spend_counters "
    "(day, scope, country, api_key_id, messages, segments, cost, alerted) VALUES "
)
_ADD_ON_CONFLICT = """
ON CONFLICT (day, scope, country, api_key_id) DO UPDATE SET
    messages = spend_counters.messages + excluded.messages,
    segments = spend_counters.segments + excluded.segments,
    cost = spend_counters.cost + excluded.cost
"""
_UPSERT = (
    _INSERT
    + "(:day, :scope, :country, :api_key_id, :messages, :segments, :cost, :alerted)"
    + _ADD_ON_CONFLICT
)
_COUNT = sa.text(_UPSERT + "RETURNING messages").bindparams(
    sa.bindparam("cost", type_=sa.Numeric(14, 5)), sa.bindparam("alerted", type_=sa.Boolean)
)
_COUNT_UNDER_CAP = sa.text(
    _UPSERT + "WHERE spend_counters.messages + excluded.messages <= :cap RETURNING messages"
).bindparams(
    sa.bindparam("cost", type_=sa.Numeric(14, 5)), sa.bindparam("alerted", type_=sa.Boolean)
)


@lru_cache(maxsize=16)
def _add_uncapped_statement(count: int) -> sa.TextClause:
    """One upsert of `count` counters (day, then scope, country, key and tally i)."""
    rows = ", ".join(
        f"(:day, :scope{i}, :country{i}, :key{i}, :messages{i}, :segments{i}, :cost{i}, false)"
        for i in range(count)
    )
    costs = (sa.bindparam(f"cost{i}", type_=sa.Numeric(14, 5)) for i in range(count))
    return sa.text(_INSERT + rows + _ADD_ON_CONFLICT).bindparams(*costs)


def _add_uncapped(conn: Connection, day: str, tallies: dict[Scope, _Tally]) -> None:
    """Count every scope in one statement when none has a cap (the default): nothing is
    refused and no alert can fire, so no scope's new count is needed. A group commit of
    accepts then writes its counters in one statement instead of one per scope, the total's
    row first as in `charge`, so concurrent charges lock the rows in the same order."""
    values: dict[str, Any] = {"day": day}
    for i, ((kind, country, key), tally) in enumerate(tallies.items()):
        values |= {
            f"scope{i}": kind,
            f"country{i}": country,
            f"key{i}": key,
            f"messages{i}": tally.messages,
            f"segments{i}": tally.segments,
            f"cost{i}": tally.cost,
        }
    conn.execute(_add_uncapped_statement(len(tallies)), values)


def _add(conn: Connection, day: str, scope: Scope, tally: _Tally, cap: int | None) -> int | None:
    """The counter after adding `tally`, or None when that would pass `cap`."""
    if cap is not None and tally.messages > cap:
        return None
    kind, country, key = scope
    values = {
        "day": day,
        "scope": kind,
        "country": country,
        "api_key_id": key,
        "messages": tally.messages,
        "segments": tally.segments,
        "cost": tally.cost,
        "alerted": False,
    }
    if cap is None:
        return conn.execute(_COUNT, values).scalar()
    return conn.execute(_COUNT_UNDER_CAP, {**values, "cap": cap}).scalar()


def _key(day: str, scope: Scope) -> sa.ColumnElement[bool]:
    kind, country, key = scope
    return sa.and_(
        sc.c.day == day, sc.c.scope == kind, sc.c.country == country, sc.c.api_key_id == key
    )


def _used(conn: Connection, day: str, scope: Scope) -> int:
    return conn.execute(sa.select(sc.c.messages).where(_key(day, scope))).scalar() or 0


def _alert(
    conn: Connection,
    day: str,
    scope: Scope,
    cap: int,
    used: int,
    percent: int,
    events: EventSink | None,
) -> None:
    """Fire `spend.threshold` for this cap unless a charge did so today already."""
    marked = conn.execute(
        sc.update().where(_key(day, scope), sc.c.alerted.is_(False)).values(alerted=True)
    )
    sink = events or _sinks.get(conn.engine)
    if marked.rowcount != 1 or sink is None:
        return
    kind, country, key = scope
    payload = {
        "rule": RULES[kind],
        "day": day,
        "cap": cap,
        "used": used,
        "alert_percent": percent,
        "country": country or None,
        "api_key_id": key or None,
    }
    sink.emit(conn, SPEND_THRESHOLD, [payload])


@dataclass(frozen=True, slots=True)
class SpendUsage:
    """What one scope used on a day, and its cap (None: no cap)."""

    scope: str
    country: str
    api_key_id: str
    messages: int
    segments: int
    cost: Decimal
    cap: int | None
    alerted: bool


def usage(conn: Connection, day: str) -> list[SpendUsage]:
    """Every counter of a UTC day (`utc_day`), total first, with the caps stored now."""
    spend, _ = stored_settings(conn)
    rows = conn.execute(
        sa.select(sc)
        .where(sc.c.day == day)
        .order_by(sc.c.scope.desc(), sc.c.country, sc.c.api_key_id)
    )
    found = [
        SpendUsage(
            scope=row.scope,
            country=row.country,
            api_key_id=row.api_key_id,
            messages=row.messages,
            segments=row.segments,
            cost=Decimal(row.cost or 0),
            cap=_cap(spend, (row.scope, row.country, row.api_key_id)),
            alerted=bool(row.alerted),
        )
        for row in rows
    ]
    return sorted(found, key=lambda u: (u.scope != TOTAL, u.scope, u.country, u.api_key_id))
