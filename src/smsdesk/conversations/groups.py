"""Groups (teams) of agents and the rules that route new requests to them.

What the API, the screens and the CLI call. Names are 1 to 100 characters, unique in any case.
A group with open or pending requests cannot be deleted (move or close them first); deleting one
takes its members and routing rules with it. Every change is written to the audit trail.

Routing rules are tried in order when an inbound SMS opens a new request; the first match names
its group: `endpoint_code` (the SMS endpoint code the SMS started with), `keyword` (the first
word of the SMS after the endpoint code, in any case) or `receiving_number` (the number it was
sent to). In a round-robin group the new request goes to the member present (active within
`PRESENT_SECONDS`) who was given one longest ago.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import Connection

from smsdesk.domain.audit import Actor
from smsdesk.domain.errors import DomainError
from smsdesk.domain.ids import new_id
from smsdesk.domain.text import forbidden_control
from smsdesk.host import Host
from smsdesk.store import groups as store
from smsdesk.store.audit import AuditTrail
from smsdesk.store.groups import Group, Member, Rule

MAX_NAME = 100
MAX_DESCRIPTION = 200
RULE_KINDS = ("endpoint_code", "keyword", "receiving_number")
PRESENT_SECONDS = 15 * 60
# Punctuation people put around a keyword ("Billing:", "*billing*").
_AROUND = " \t\r\n.!?,;:*\"'()[]<>-_~"

__all__ = [
    "RULE_KINDS",
    "Group",
    "GroupNotFound",
    "GroupProblem",
    "Member",
    "Router",
    "Rule",
]


class AuditedHost(Host, Protocol):
    """A host whose changes are written to the audit trail."""

    @property
    def trail(self) -> AuditTrail: ...


class GroupProblem(DomainError):
    """A group, member or rule cannot be saved; `msgid` and `params` make the message."""

    field = "name"

    def __init__(self, msgid: str, *, field: str | None = None, **params: Any) -> None:
        super().__init__(msgid.format(**params), field=field)
        self.msgid = msgid
        self.params = {key: str(value) for key, value in params.items()}


class GroupNotFound(LookupError):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def first_word(text: str) -> str:
    """The SMS's first word without surrounding punctuation ("" if it has none)."""
    words = text.split()
    return words[0].strip(_AROUND) if words else ""


def receiving_number(typed: str, default_country_code: str) -> str | None:
    """A number SMS are sent to, as compared: +<digits> (national numbers get the default
    country code), or the digits of a short code; None if it is neither."""
    compact = "".join(c for c in typed if c not in " -()./")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif compact.startswith("0") and default_country_code:
        compact = default_country_code + compact[1:]
    digits = compact.removeprefix("+")
    if not digits.isdigit() or not 3 <= len(digits) <= 15:
        return None
    return compact


def check_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise GroupProblem("The group's name is empty; enter a name.")
    if len(cleaned) > MAX_NAME:
        raise GroupProblem(
            "The name has {count} characters; at most {limit} are allowed.",
            count=len(cleaned),
            limit=MAX_NAME,
        )
    if forbidden_control(cleaned) is not None:
        raise GroupProblem("The name contains a control character; remove it.")
    return cleaned


def _description(text: str) -> str:
    cleaned = " ".join(text.split())
    if len(cleaned) > MAX_DESCRIPTION:
        raise GroupProblem(
            "The description has {count} characters; at most {limit} are allowed.",
            field="description",
            count=len(cleaned),
            limit=MAX_DESCRIPTION,
        )
    return cleaned


def find_group(conn: Connection, wanted: str) -> Group:
    """A group by its id or its name; GroupNotFound if there is none."""
    found = store.get_group(conn, wanted) or store.group_by_name(conn, wanted)
    if found is None:
        raise GroupNotFound(f"There is no group '{wanted}'.")
    return found


def find_user(conn: Connection, wanted: str | int) -> tuple[int, str]:
    """(id, username) of a user by name or id; GroupNotFound if there is none."""
    found = (
        store.user_by_id(conn, wanted)
        if isinstance(wanted, int)
        else store.user_by_name(conn, wanted)
    )
    if found is None:
        raise GroupNotFound(f"There is no user '{wanted}'.")
    return found


def _audit(
    conn: Connection, host: AuditedHost, actor: Actor, action: str, group: str, **details: Any
) -> None:
    host.trail.record(
        conn, actor, action, target_kind="group", target_id=group, details=details or None
    )


def _unique(conn: Connection, name: str, group_id: str | None) -> None:
    taken = store.group_by_name(conn, name)
    if taken is not None and taken.id != group_id:
        raise GroupProblem("There is already a group named '{name}'.", name=taken.name)


def list_groups(host: Host) -> list[tuple[Group, int]]:
    """Every group by name, with its number of members."""
    with host.engine.connect() as conn:
        counts = store.member_counts(conn)
        return [(g, counts.get(g.id, 0)) for g in store.list_groups(conn)]


def create_group(
    host: AuditedHost,
    actor: Actor,
    name: str,
    description: str = "",
    round_robin: bool = False,
) -> Group:
    cleaned = check_name(name)
    text = _description(description)
    group_id = new_id()

    def job(conn: Connection) -> Group:
        _unique(conn, cleaned, None)
        now = host.clock()
        store.insert_group(
            conn,
            {
                "id": group_id,
                "name": cleaned,
                "description": text,
                "round_robin": round_robin,
                "created_at": now,
                "updated_at": now,
            },
        )
        _audit(conn, host, actor, "group.created", group_id, name=cleaned)
        found = store.get_group(conn, group_id)
        assert found is not None
        return found

    return host.writer.run_sync(job)


def change_group(
    host: AuditedHost,
    actor: Actor,
    wanted: str,
    *,
    name: str | None = None,
    description: str | None = None,
    round_robin: bool | None = None,
) -> Group:
    """Rename a group, change its description or switch round-robin on or off."""
    values: dict[str, Any] = {}
    if name is not None:
        values["name"] = check_name(name)
    if description is not None:
        values["description"] = _description(description)
    if round_robin is not None:
        values["round_robin"] = round_robin

    def job(conn: Connection) -> Group:
        group = find_group(conn, wanted)
        if "name" in values:
            _unique(conn, values["name"], group.id)
        if values:
            store.update_group(conn, group.id, {**values, "updated_at": host.clock()})
            _audit(conn, host, actor, "group.changed", group.id, **values)
        found = store.get_group(conn, group.id)
        assert found is not None
        return found

    return host.writer.run_sync(job)


def delete_group(host: AuditedHost, actor: Actor, wanted: str) -> None:
    """Refused while the group holds open or pending requests."""

    def job(conn: Connection) -> None:
        group = find_group(conn, wanted)
        waiting = store.open_requests_in(conn, group.id)
        if waiting:
            raise GroupProblem(
                "The group '{name}' still has {count} open or pending requests; move them to "
                "another group or close them first.",
                field="group",
                name=group.name,
                count=waiting,
            )
        store.delete_group(conn, group.id)
        _audit(conn, host, actor, "group.deleted", group.id, name=group.name)

    host.writer.run_sync(job)


def group_members(host: Host, wanted: str) -> tuple[Group, list[Member]]:
    with host.engine.connect() as conn:
        group = find_group(conn, wanted)
        return group, store.members(conn, group.id)


def add_member(host: AuditedHost, actor: Actor, wanted: str, user: str | int) -> bool:
    """Add a user to a group; False if they were in it already."""

    def job(conn: Connection) -> bool:
        group = find_group(conn, wanted)
        user_id, username = find_user(conn, user)
        added = store.add_member(conn, group.id, user_id)
        if added:
            _audit(conn, host, actor, "group.member_added", group.id, user=username)
        return added

    return host.writer.run_sync(job)


def remove_member(host: AuditedHost, actor: Actor, wanted: str, user: str | int) -> bool:
    """Take a user out of a group; False if they were not in it."""

    def job(conn: Connection) -> bool:
        group = find_group(conn, wanted)
        user_id, username = find_user(conn, user)
        removed = store.remove_member(conn, group.id, user_id)
        if removed:
            _audit(conn, host, actor, "group.member_removed", group.id, user=username)
        return removed

    return host.writer.run_sync(job)


# -- routing rules -----------------------------------------------------------------------------


def check_rule(kind: str, value: str, default_country_code: str) -> str:
    """The rule's value as it is compared: upper-case codes and words, E.164 numbers."""
    if kind not in RULE_KINDS:
        raise GroupProblem(
            "A rule's kind is one of: {kinds}.", field="kind", kinds=", ".join(RULE_KINDS)
        )
    cleaned = value.strip()
    if not cleaned:
        raise GroupProblem("Enter what the rule matches.", field="value")
    if kind == "receiving_number":
        number = receiving_number(cleaned, default_country_code)
        if number is None:
            raise GroupProblem(
                "'{value}' is not a phone number or short code.", field="value", value=cleaned
            )
        return number
    if any(c.isspace() for c in cleaned) or len(cleaned) > 40:
        raise GroupProblem(
            "'{value}' must be one word of at most 40 characters.", field="value", value=cleaned
        )
    return cleaned.upper()


def list_rules(host: Host) -> list[Rule]:
    with host.engine.connect() as conn:
        return store.list_rules(conn)


def add_rule(host: AuditedHost, actor: Actor, kind: str, value: str, group: str) -> Rule:
    """A rule at the end of the list (tried last)."""
    cleaned = check_rule(kind, value, host.settings.load().default_country_code)
    rule_id = new_id()

    def job(conn: Connection) -> Rule:
        target = find_group(conn, group)
        store.insert_rule(
            conn,
            {
                "id": rule_id,
                "kind": kind,
                "value": cleaned,
                "group_id": target.id,
                "created_at": host.clock(),
            },
        )
        _audit(conn, host, actor, "routing_rule.added", target.id, kind=kind, value=cleaned)
        return next(r for r in store.list_rules(conn) if r.id == rule_id)

    return host.writer.run_sync(job)


def delete_rule(host: AuditedHost, actor: Actor, rule_id: str) -> None:
    def job(conn: Connection) -> None:
        rule = next((r for r in store.list_rules(conn) if r.id == rule_id), None)
        if rule is None:
            raise GroupNotFound(f"There is no routing rule '{rule_id}'.")
        store.delete_rule(conn, rule_id)
        _audit(
            conn,
            host,
            actor,
            "routing_rule.deleted",
            rule.group_id,
            kind=rule.kind,
            value=rule.value,
        )

    host.writer.run_sync(job)


def reorder_rules(host: AuditedHost, actor: Actor, ordered_ids: Sequence[str]) -> list[Rule]:
    """Put the rules in this order; every rule must be named once."""

    def job(conn: Connection) -> list[Rule]:
        known = [r.id for r in store.list_rules(conn)]
        if sorted(known) != sorted(ordered_ids) or len(set(ordered_ids)) != len(ordered_ids):
            raise GroupProblem("Name every routing rule once, in the new order.", field="order")
        store.set_positions(conn, ordered_ids)
        host.trail.record(
            conn, actor, "routing_rule.reordered", target_kind="routing_rule", target_id=None
        )
        return store.list_rules(conn)

    return host.writer.run_sync(job)


def move_rule(host: AuditedHost, actor: Actor, rule_id: str, step: int) -> list[Rule]:
    """Move a rule up (-1) or down (+1) one place."""
    ids = [r.id for r in list_rules(host)]
    if rule_id not in ids:
        raise GroupNotFound(f"There is no routing rule '{rule_id}'.")
    at = ids.index(rule_id)
    to = min(max(at + step, 0), len(ids) - 1)
    ids.insert(to, ids.pop(at))
    return reorder_rules(host, actor, ids)


# -- routing new requests (the inbound pipeline) ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Arrival:
    """What routing knows of the SMS that opens a request."""

    endpoint_code: str
    content: str  # the text after the endpoint code
    receiving_number: str


@dataclass(slots=True)
class Router:
    """Routes one batch's new requests: the rules are read once; round-robin turns are kept
    in memory and written at the end."""

    conn: Connection
    now: float
    rules: list[Rule] | None = None
    turns: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    assigned: list[tuple[str, int]] = field(default_factory=list)

    def group_for(self, arrival: Arrival) -> str | None:
        if self.rules is None:
            self.rules = store.list_rules(self.conn)
        word = first_word(arrival.content).upper()
        code = arrival.endpoint_code.strip().upper()
        number = arrival.receiving_number.strip().lstrip("+")
        for rule in self.rules:
            if rule.kind == "endpoint_code" and code and rule.value == code:
                return rule.group_id
            if rule.kind == "keyword" and word and rule.value == word:
                return rule.group_id
            if rule.kind == "receiving_number" and number and rule.value.lstrip("+") == number:
                return rule.group_id
        return None

    def owner_for(self, group_id: str) -> int | None:
        """The next present member of a round-robin group, or None."""
        if group_id not in self.turns:
            self.turns[group_id] = []
            if store.round_robin_groups(self.conn, [group_id]):
                present = store.present_members(self.conn, [group_id], self.now - PRESENT_SECONDS)
                self.turns[group_id] = [
                    (row.last_assigned_at or 0.0, row.user_id) for row in present
                ]
        queue = self.turns[group_id]
        if not queue:
            return None
        queue.sort()
        _, user_id = queue[0]
        queue[0] = (self.now + len(self.assigned) * 1e-6, user_id)
        self.assigned.append((group_id, user_id))
        return user_id

    def write(self) -> None:
        store.mark_assigned(self.conn, self.assigned, self.now)
