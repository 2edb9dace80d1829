"""Requests (tickets) and their conversations in the database.

A request belongs to a customer; its conversation is the list of SMS that joined it, inbound
ones by their inbound message, outbound ones by their message. Functions that change data take
the caller's connection and run as writer jobs; reads take any connection.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection

from smsdesk.store import live
from smsdesk.store import messages as repo
from smsdesk.store.tables import (
    customer_numbers,
    customers,
    groups,
    inbound_messages,
    messages,
    request_messages,
    requests,
    users,
)

# A customer's SMS joins a request in one of these states; a closed one it only reopens when
# the SMS answers that request itself.
OPEN_STATUSES = ("open", "pending")


@dataclass(frozen=True, slots=True)
class RequestFilter:
    """What a list of requests is narrowed to; None: any."""

    status: str | None = None
    customer_id: str | None = None
    category: str | None = None


def _with_customer_name() -> sa.Select[Any]:
    """Requests with their customer's name, their owner's name and their group's name."""
    owner = users.alias("owner")
    return (
        sa.select(
            requests,
            customers.c.name.label("customer_name"),
            owner.c.username.label("owner_name"),
            groups.c.name.label("group_name"),
        )
        .join(customers, customers.c.id == requests.c.customer_id, isouter=True)
        .join(owner, owner.c.id == requests.c.owner_id, isouter=True)
        .join(groups, groups.c.id == requests.c.group_id, isouter=True)
    )


def list_requests(
    conn: Connection, flt: RequestFilter, *, before_id: str | None, limit: int
) -> list[sa.Row[Any]]:
    """Newest first, paged by id; each row carries the customer's name."""
    query = _with_customer_name()
    if flt.status:
        query = query.where(requests.c.status == flt.status)
    if flt.customer_id:
        query = query.where(requests.c.customer_id == flt.customer_id)
    if flt.category:
        query = query.where(requests.c.category == flt.category)
    if before_id:
        query = query.where(requests.c.id < before_id)
    return list(conn.execute(query.order_by(requests.c.id.desc()).limit(limit)).all())


def get_request(conn: Connection, request_id: str) -> sa.Row[Any] | None:
    """The request with its customer's name, or None."""
    return conn.execute(_with_customer_name().where(requests.c.id == request_id)).first()


def find_requests(
    conn: Connection, status: str, search: str, before_id: str | None, limit: int
) -> list[sa.Row[Any]]:
    """Newest first, paged by id; with the customer's name and first number, searchable.

    `status` "all" keeps every status; `search` matches part of the title, of the customer's
    name (any case) or of one of the customer's numbers.
    """
    first_number = (
        sa.select(sa.func.min(customer_numbers.c.number))
        .where(customer_numbers.c.customer_id == requests.c.customer_id)
        .scalar_subquery()
    )
    query = sa.select(
        requests,
        customers.c.name.label("customer_name"),
        first_number.label("customer_number"),
    ).join(customers, customers.c.id == requests.c.customer_id, isouter=True)
    if status != "all":
        query = query.where(requests.c.status == status)
    if search:
        number_matches = sa.exists().where(
            customer_numbers.c.customer_id == requests.c.customer_id,
            customer_numbers.c.number.contains(search, autoescape=True),
        )
        query = query.where(
            sa.or_(
                requests.c.title.icontains(search, autoescape=True),
                customers.c.name.icontains(search, autoescape=True),
                number_matches,
            )
        )
    if before_id:
        query = query.where(requests.c.id < before_id)
    return list(conn.execute(query.order_by(requests.c.id.desc()).limit(limit)).all())


def conversation_rows(conn: Connection, request_id: str) -> list[sa.Row[Any]]:
    """The request's entries in the order they joined it, outbound ones with their message's
    status, status code, error and recipient, inbound ones with their inbound SMS's state
    (opt_out for a STOP)."""
    return list(
        conn.execute(
            sa.select(
                request_messages,
                messages.c.status.label("message_status"),
                messages.c.status_code,
                messages.c.error,
                messages.c.recipient,
                inbound_messages.c.state.label("inbound_state"),
            )
            .join(messages, messages.c.id == request_messages.c.message_id, isouter=True)
            .join(
                inbound_messages,
                inbound_messages.c.id == request_messages.c.inbound_id,
                isouter=True,
            )
            .where(request_messages.c.request_id == request_id)
            .order_by(request_messages.c.id)
        ).all()
    )


def set_request_fields(
    conn: Connection, request_id: str, changes: dict[str, Any], now: float
) -> None:
    """Write checked values of a request's columns."""
    if changes:
        conn.execute(
            requests.update().where(requests.c.id == request_id).values(**changes, updated_at=now)
        )
        live.request_changed(conn, [request_id], list(changes), now)


def last_inbound_sender(conn: Connection, request_id: str) -> str | None:
    """The sender (as received) of the newest inbound SMS in the request's conversation."""
    found = conn.execute(
        sa.select(inbound_messages.c.sender)
        .join(request_messages, request_messages.c.inbound_id == inbound_messages.c.id)
        .where(request_messages.c.request_id == request_id)
        .order_by(request_messages.c.at.desc(), request_messages.c.id.desc())
        .limit(1)
    ).scalar()
    return None if found is None else str(found)


def first_number(conn: Connection, customer_id: str) -> str | None:
    """The customer's lowest number, or None if it has none."""
    found = conn.execute(
        sa.select(customer_numbers.c.number)
        .where(customer_numbers.c.customer_id == customer_id)
        .order_by(customer_numbers.c.number)
        .limit(1)
    ).scalar()
    return None if found is None else str(found)


def record_reply(
    conn: Connection,
    request_id: str,
    row: dict[str, Any],
    author: str,
    status: str | None,
    now: float,
) -> None:
    """Store the reply SMS (already prepared and checked) and add it to the conversation."""
    repo.insert_messages(conn, [row], "reply")
    conn.execute(
        request_messages.insert().values(
            request_id=request_id,
            direction="out",
            message_id=row["id"],
            body=row["body"],
            author=author,
            at=now,
        )
    )
    values: dict[str, Any] = {"updated_at": now, "last_activity_at": now}
    if status is not None:
        values["status"] = status
    conn.execute(requests.update().where(requests.c.id == request_id).values(**values))


def add_inbound_entry(
    conn: Connection, request_id: str, inbound_id: str, body: str, author: str, at: float
) -> None:
    """Add an inbound SMS to a request's conversation."""
    conn.execute(
        request_messages.insert().values(
            request_id=request_id,
            direction="in",
            inbound_id=inbound_id,
            body=body,
            author=author,
            at=at,
        )
    )


def reopen(conn: Connection, request_id: str, now: float, last_activity_at: float) -> None:
    """Mark a request open again after its customer wrote."""
    conn.execute(
        requests.update()
        .where(requests.c.id == request_id)
        .values(
            status="open",
            updated_at=now,
            last_activity_at=last_activity_at,
            last_customer_message_at=last_activity_at,
        )
    )


# -- what a batch of inbound SMS threads on --------------------------------------------------


def replied_to(conn: Connection, numbers: Iterable[str], since: float) -> dict[str, str]:
    """number -> the request of the latest SMS sent from a request to it since `since`."""
    wanted = set(numbers)
    found: dict[str, str] = {}
    if not wanted:
        return found
    for number, request_id in conn.execute(
        sa.select(messages.c.recipient, messages.c.request_id)
        .where(
            messages.c.recipient.in_(wanted),
            messages.c.request_id.is_not(None),
            messages.c.created_at >= since,
        )
        .order_by(messages.c.created_at)
    ):
        found[number] = request_id
    return found


def threadable_requests(
    conn: Connection,
    *,
    customer_ids: set[str],
    session_keys: set[str],
    request_ids: set[str],
    since: float,
) -> list[tuple[str, str, str, str, float]]:
    """Requests an SMS may join, oldest activity first: the customers' open or pending ones
    active since `since`, and those with one of the session keys or ids.

    Each: (id, customer_id, status, session_key, last_activity_at).
    """
    conditions = []
    if customer_ids:
        conditions.append(
            sa.and_(
                requests.c.customer_id.in_(customer_ids),
                requests.c.status.in_(OPEN_STATUSES),
                requests.c.last_activity_at >= since,
            )
        )
    if session_keys:
        conditions.append(requests.c.session_key.in_(session_keys))
    if request_ids:
        conditions.append(requests.c.id.in_(request_ids))
    if not conditions:
        return []
    rows = conn.execute(
        sa.select(
            requests.c.id,
            requests.c.customer_id,
            requests.c.status,
            requests.c.session_key,
            requests.c.last_activity_at,
        )
        .where(sa.or_(*conditions))
        .order_by(requests.c.last_activity_at)
    )
    return [(r.id, r.customer_id, r.status, r.session_key, r.last_activity_at) for r in rows]


def insert_requests(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Add complete request rows (requests opened by inbound SMS)."""
    if rows:
        conn.execute(requests.insert(), list(rows))
        live.request_changed(conn, [row["id"] for row in rows], ["created"], rows[0]["created_at"])


def touch_requests(conn: Connection, touched: Sequence[dict[str, Any]], now: float) -> None:
    """Set status (`st`), last activity (`last`) and the customer's last message (`customer`)
    of requests (`rid`) an SMS joined."""
    if touched:
        conn.execute(
            requests.update()
            .where(requests.c.id == sa.bindparam("rid"))
            .values(
                status=sa.bindparam("st"),
                last_activity_at=sa.bindparam("last"),
                last_customer_message_at=sa.bindparam("customer"),
                updated_at=now,
            ),
            list(touched),
        )


def insert_entries(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Add conversation entries (complete request_messages rows)."""
    if rows:
        conn.execute(request_messages.insert(), list(rows))


# -- conversations started by agents ---------------------------------------------------------


def start_request(
    conn: Connection, request: dict[str, Any], message: dict[str, Any], author: str
) -> None:
    """Store a request an agent started, its first SMS (prepared and checked) and the
    conversation entry linking them."""
    now = request["created_at"]
    conn.execute(requests.insert().values(**request))
    repo.insert_messages(conn, [message], "reply")
    conn.execute(
        request_messages.insert().values(
            request_id=request["id"],
            direction="out",
            message_id=message["id"],
            body=message["body"],
            author=author,
            at=now,
        )
    )
    live.request_changed(conn, [request["id"]], ["created"], now)


def group_id_of(conn: Connection, wanted: str) -> str | None:
    """The id of the group with id or name `wanted` (any case), or None."""
    found = conn.execute(
        sa.select(groups.c.id)
        .where(sa.or_(groups.c.id == wanted, sa.func.lower(groups.c.name) == wanted.lower()))
        .limit(1)
    ).scalar()
    return None if found is None else str(found)


def user_id_of(conn: Connection, wanted: str) -> int | None:
    """The id of the user named `wanted` (or with that id), or None."""
    condition = users.c.username == wanted
    if wanted.isdigit():
        condition = sa.or_(condition, users.c.id == int(wanted))
    found = conn.execute(sa.select(users.c.id).where(condition).limit(1)).scalar()
    return None if found is None else int(found)
