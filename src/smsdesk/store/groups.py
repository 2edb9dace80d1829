"""Groups (teams) of users, routing rules, owners, read marks and the requests overviews.

Values are checked by `conversations.groups` and `conversations.assignment` before they get
here. Writes take the writer's connection; reads any connection. The overviews' counts use the
indexes on requests (owner, status) and (group, status); each is one aggregate query.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite

from smsdesk.store.requests import OPEN_STATUSES
from smsdesk.store.tables import (
    customer_numbers,
    customers,
    group_members,
    groups,
    request_reads,
    requests,
    routing_rules,
    users,
)

VIEWS = ("mine", "unassigned", "my_groups", "waiting", "all")


@dataclass(frozen=True, slots=True)
class Group:
    id: str
    name: str
    description: str
    round_robin: bool
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class Member:
    user_id: int
    username: str
    role: str
    last_assigned_at: float | None
    last_active_at: float | None


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    position: int
    kind: str
    value: str
    group_id: str
    group_name: str


def _group(row: Any) -> Group:
    return Group(
        row.id, row.name, row.description, bool(row.round_robin), row.created_at, row.updated_at
    )


# -- groups ------------------------------------------------------------------------------------


def list_groups(conn: Connection) -> list[Group]:
    return [_group(r) for r in conn.execute(sa.select(groups).order_by(groups.c.name))]


def get_group(conn: Connection, group_id: str) -> Group | None:
    row = conn.execute(sa.select(groups).where(groups.c.id == group_id)).first()
    return _group(row) if row is not None else None


def group_by_name(conn: Connection, name: str) -> Group | None:
    """The group of this name, compared in any case."""
    row = conn.execute(
        sa.select(groups).where(sa.func.lower(groups.c.name) == name.lower())
    ).first()
    return _group(row) if row is not None else None


def insert_group(conn: Connection, values: dict[str, Any]) -> None:
    conn.execute(groups.insert().values(**values))


def update_group(conn: Connection, group_id: str, values: dict[str, Any]) -> None:
    conn.execute(groups.update().where(groups.c.id == group_id).values(**values))


def open_requests_in(conn: Connection, group_id: str) -> int:
    """How many open or pending requests the group holds."""
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(requests)
            .where(requests.c.group_id == group_id, requests.c.status.in_(OPEN_STATUSES))
        ).scalar_one()
    )


def delete_group(conn: Connection, group_id: str) -> None:
    """The group, its members and its routing rules; its closed requests keep no group."""
    conn.execute(requests.update().where(requests.c.group_id == group_id).values(group_id=None))
    conn.execute(routing_rules.delete().where(routing_rules.c.group_id == group_id))
    conn.execute(group_members.delete().where(group_members.c.group_id == group_id))
    conn.execute(groups.delete().where(groups.c.id == group_id))


def member_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.select(group_members.c.group_id, sa.func.count()).group_by(group_members.c.group_id)
    )
    return {group_id: int(count) for group_id, count in rows}


# -- members -----------------------------------------------------------------------------------


def members(conn: Connection, group_id: str) -> list[Member]:
    rows = conn.execute(
        sa.select(
            users.c.id,
            users.c.username,
            users.c.role,
            group_members.c.last_assigned_at,
            users.c.last_active_at,
        )
        .join(users, users.c.id == group_members.c.user_id)
        .where(group_members.c.group_id == group_id)
        .order_by(users.c.username)
    )
    return [Member(*row) for row in rows]


def is_member(conn: Connection, group_id: str, user_id: int) -> bool:
    return (
        conn.execute(
            sa.select(group_members.c.user_id).where(
                group_members.c.group_id == group_id, group_members.c.user_id == user_id
            )
        ).first()
        is not None
    )


def add_member(conn: Connection, group_id: str, user_id: int) -> bool:
    """Add the user to the group; False if they were a member already."""
    if is_member(conn, group_id, user_id):
        return False
    conn.execute(group_members.insert().values(group_id=group_id, user_id=user_id))
    return True


def remove_member(conn: Connection, group_id: str, user_id: int) -> bool:
    """Take the user out of the group; False if they were not a member."""
    gone = conn.execute(
        group_members.delete().where(
            group_members.c.group_id == group_id, group_members.c.user_id == user_id
        )
    )
    return bool(gone.rowcount)


def groups_of(conn: Connection, user_id: int) -> list[str]:
    """The ids of the groups the user is a member of."""
    rows = conn.execute(
        sa.select(group_members.c.group_id).where(group_members.c.user_id == user_id)
    )
    return [r[0] for r in rows]


def share_a_group(conn: Connection, user_id: int, other_id: int) -> bool:
    mine = sa.select(group_members.c.group_id).where(group_members.c.user_id == user_id)
    found = conn.execute(
        sa.select(group_members.c.user_id)
        .where(group_members.c.user_id == other_id, group_members.c.group_id.in_(mine))
        .limit(1)
    ).first()
    return found is not None


def user_by_name(conn: Connection, username: str) -> tuple[int, str] | None:
    """(id, username) of the user with this name in any case, or None."""
    row = conn.execute(
        sa.select(users.c.id, users.c.username).where(
            sa.func.lower(users.c.username) == username.lower()
        )
    ).first()
    return (int(row.id), str(row.username)) if row is not None else None


def user_by_id(conn: Connection, user_id: int) -> tuple[int, str] | None:
    row = conn.execute(sa.select(users.c.id, users.c.username).where(users.c.id == user_id)).first()
    return (int(row.id), str(row.username)) if row is not None else None


def all_users(conn: Connection) -> list[tuple[int, str]]:
    rows = conn.execute(sa.select(users.c.id, users.c.username).order_by(users.c.username))
    return [(int(r.id), str(r.username)) for r in rows]


def present_members(conn: Connection, group_ids: Iterable[str], since: float) -> list[Any]:
    """Members active since `since` of these groups: (group_id, user_id, last_assigned_at)."""
    wanted = set(group_ids)
    if not wanted:
        return []
    return list(
        conn.execute(
            sa.select(
                group_members.c.group_id, group_members.c.user_id, group_members.c.last_assigned_at
            )
            .join(users, users.c.id == group_members.c.user_id)
            .where(group_members.c.group_id.in_(wanted), users.c.last_active_at >= since)
        ).all()
    )


def mark_assigned(conn: Connection, assigned: Sequence[tuple[str, int]], at: float) -> None:
    """Record that each (group, user) was given a request at `at` (round-robin order)."""
    for group_id, user_id in assigned:
        conn.execute(
            group_members.update()
            .where(group_members.c.group_id == group_id, group_members.c.user_id == user_id)
            .values(last_assigned_at=at)
        )


def round_robin_groups(conn: Connection, group_ids: Iterable[str]) -> set[str]:
    wanted = set(group_ids)
    if not wanted:
        return set()
    rows = conn.execute(
        sa.select(groups.c.id).where(groups.c.id.in_(wanted), groups.c.round_robin.is_(True))
    )
    return {r[0] for r in rows}


# -- routing rules -----------------------------------------------------------------------------


def list_rules(conn: Connection) -> list[Rule]:
    rows = conn.execute(
        sa.select(
            routing_rules.c.id,
            routing_rules.c.position,
            routing_rules.c.kind,
            routing_rules.c.value,
            routing_rules.c.group_id,
            groups.c.name,
        )
        .join(groups, groups.c.id == routing_rules.c.group_id)
        .order_by(routing_rules.c.position, routing_rules.c.created_at)
    )
    return [Rule(*row) for row in rows]


def insert_rule(conn: Connection, values: dict[str, Any]) -> None:
    top = conn.execute(sa.select(sa.func.max(routing_rules.c.position))).scalar()
    conn.execute(routing_rules.insert().values(**values, position=int(top or 0) + 1))


def delete_rule(conn: Connection, rule_id: str) -> bool:
    return bool(conn.execute(routing_rules.delete().where(routing_rules.c.id == rule_id)).rowcount)


def set_positions(conn: Connection, ordered_ids: Sequence[str]) -> None:
    for position, rule_id in enumerate(ordered_ids, start=1):
        conn.execute(
            routing_rules.update().where(routing_rules.c.id == rule_id).values(position=position)
        )


# -- owners and read marks ---------------------------------------------------------------------


def mark_seen(conn: Connection, request_id: str, user_id: int, at: float) -> None:
    """The user has seen the request's conversation as it is at `at`."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(request_reads).values(
        request_id=request_id, user_id=user_id, seen_at=at
    )
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=["request_id", "user_id"], set_={"seen_at": insert.excluded.seen_at}
        )
    )


def touch_presence(conn: Connection, user_id: int, at: float) -> None:
    conn.execute(users.update().where(users.c.id == user_id).values(last_active_at=at))


# -- overviews ---------------------------------------------------------------------------------


def _waiting() -> Any:
    """Pending, or open with our message after the customer's last one."""
    return sa.or_(
        requests.c.status == "pending",
        sa.and_(
            requests.c.status == "open",
            sa.or_(
                requests.c.last_customer_message_at.is_(None),
                requests.c.last_customer_message_at < requests.c.last_activity_at,
            ),
        ),
    )


def view_condition(view: str, user_id: int) -> Any:
    """Which requests a view holds (all of them: any status; the others: open or pending)."""
    active = requests.c.status.in_(OPEN_STATUSES)
    if view == "mine":
        return sa.and_(requests.c.owner_id == user_id, active)
    if view == "unassigned":
        return sa.and_(requests.c.owner_id.is_(None), active)
    if view == "my_groups":
        mine = sa.select(group_members.c.group_id).where(group_members.c.user_id == user_id)
        return sa.and_(requests.c.group_id.in_(mine), active)
    if view == "waiting":
        return sa.and_(active, _waiting())
    return sa.true()


def view_counts(conn: Connection, user_id: int) -> dict[str, int]:
    """How many open or pending requests each view holds, in one round trip."""

    def count(condition: Any) -> Any:
        return sa.select(sa.func.count()).select_from(requests).where(condition).scalar_subquery()

    active = requests.c.status.in_(OPEN_STATUSES)
    row = conn.execute(
        sa.select(
            count(view_condition("mine", user_id)),
            count(view_condition("unassigned", user_id)),
            count(view_condition("my_groups", user_id)),
            count(view_condition("waiting", user_id)),
            count(active),
        )
    ).one()
    return dict(zip(VIEWS, (int(v or 0) for v in row), strict=True))


def find_in_view(
    conn: Connection,
    view: str,
    user_id: int,
    status: str,
    search: str,
    before_id: str | None,
    limit: int,
) -> list[sa.Row[Any]]:
    """A view's requests newest first, paged by id; with the customer's name and first number,
    the owner's name, the group's name and `unread` (a customer message the user has not seen).

    `status` "all" keeps every status the view holds, "active" open and pending; `search`
    matches part of the title, of the customer's name (any case) or of one of their numbers.
    """
    first_number = (
        sa.select(sa.func.min(customer_numbers.c.number))
        .where(customer_numbers.c.customer_id == requests.c.customer_id)
        .scalar_subquery()
    )
    seen = (
        sa.select(request_reads.c.seen_at)
        .where(request_reads.c.request_id == requests.c.id, request_reads.c.user_id == user_id)
        .scalar_subquery()
    )
    unread = sa.and_(
        requests.c.last_customer_message_at.is_not(None),
        sa.or_(seen.is_(None), requests.c.last_customer_message_at > seen),
    )
    # The page's ids first (index order, nothing computed per row), then their details:
    # the name, number and unread subqueries then run for one page of rows only.
    chosen = sa.select(requests.c.id).where(view_condition(view, user_id))
    if status == "active":
        chosen = chosen.where(requests.c.status.in_(OPEN_STATUSES))
    elif status != "all":
        chosen = chosen.where(requests.c.status == status)
    if search:
        # The matching customers are found once (a scan of names and of numbers), not per
        # request: a correlated lookup per request made a search read every request's rows.
        matching_customers = sa.union_all(
            sa.select(customers.c.id).where(customers.c.name.icontains(search, autoescape=True)),
            sa.select(customer_numbers.c.customer_id).where(
                customer_numbers.c.number.contains(search, autoescape=True)
            ),
        )
        chosen = chosen.where(
            sa.or_(
                requests.c.title.icontains(search, autoescape=True),
                requests.c.customer_id.in_(matching_customers),
            )
        )
    if before_id:
        chosen = chosen.where(requests.c.id < before_id)
    ids = [row[0] for row in conn.execute(chosen.order_by(requests.c.id.desc()).limit(limit))]
    if not ids:
        return []
    owner = users.alias("owner")
    query = (
        sa.select(
            requests,
            customers.c.name.label("customer_name"),
            first_number.label("customer_number"),
            owner.c.username.label("owner_name"),
            groups.c.name.label("group_name"),
            sa.case((unread, sa.true()), else_=sa.false()).label("unread"),
        )
        .join(customers, customers.c.id == requests.c.customer_id, isouter=True)
        .join(owner, owner.c.id == requests.c.owner_id, isouter=True)
        .join(groups, groups.c.id == requests.c.group_id, isouter=True)
        .where(requests.c.id.in_(ids))
    )
    return list(conn.execute(query.order_by(requests.c.id.desc())).all())


def assignment_of(conn: Connection, request_id: str) -> Any:
    """(owner_id, owner name, group_id, group name, status) of a request, or None."""
    owner = users.alias("owner")
    return conn.execute(
        sa.select(
            requests.c.owner_id,
            owner.c.username.label("owner_name"),
            requests.c.group_id,
            groups.c.name.label("group_name"),
            requests.c.status,
        )
        .join(owner, owner.c.id == requests.c.owner_id, isouter=True)
        .join(groups, groups.c.id == requests.c.group_id, isouter=True)
        .where(requests.c.id == request_id)
    ).first()


# -- opening hours and the out-of-hours answer -------------------------------------------------


def hours_of(conn: Connection, group_id: str) -> Any:
    """(time_zone, hours, holidays, out_of_hours_reply) of a group, or None."""
    return conn.execute(
        sa.select(
            groups.c.time_zone, groups.c.hours, groups.c.holidays, groups.c.out_of_hours_reply
        ).where(groups.c.id == group_id)
    ).first()


def all_hours(conn: Connection) -> dict[str, Any]:
    """group id -> (time_zone, hours, holidays, out_of_hours_reply) of every group."""
    rows = conn.execute(
        sa.select(
            groups.c.id,
            groups.c.time_zone,
            groups.c.hours,
            groups.c.holidays,
            groups.c.out_of_hours_reply,
        )
    )
    return {row.id: row for row in rows}


def out_of_hours_facts(conn: Connection, request_ids: Iterable[str]) -> list[Any]:
    """For the requests with a group: their session key, out-of-hours mark and period, and
    their group's hours and answer, in one query."""
    wanted = set(request_ids)
    if not wanted:
        return []
    return list(
        conn.execute(
            sa.select(
                requests.c.id,
                requests.c.session_key,
                requests.c.out_of_hours,
                requests.c.out_of_hours_period,
                groups.c.id.label("group_id"),
                groups.c.time_zone,
                groups.c.hours,
                groups.c.holidays,
                groups.c.out_of_hours_reply,
            )
            .join(groups, groups.c.id == requests.c.group_id)
            .where(requests.c.id.in_(wanted))
        ).all()
    )


def mark_out_of_hours(conn: Connection, marks: Sequence[dict[str, Any]]) -> None:
    """Set requests' (`rid`) out-of-hours mark (`flag`) and answered period (`period`)."""
    if marks:
        conn.execute(
            requests.update()
            .where(requests.c.id == sa.bindparam("rid"))
            .values(out_of_hours=sa.bindparam("flag"), out_of_hours_period=sa.bindparam("period")),
            list(marks),
        )
