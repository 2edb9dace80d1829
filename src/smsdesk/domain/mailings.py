"""A mailing: one text sent to many recipients, with a life cycle, a send window and a throttle.

The value (`MailingSpec`) is what an administrator sets; `check_spec` refuses what cannot be
sent, naming the field. The life cycle is a small state machine:

    draft ──schedule──> scheduled ──start──> sending ──finish──> done
      │  <──unschedule──┘    │                │  ^
      └──────start───────────┼──────────> ... pause  resume
                             │                v  │
      any but done ──cancel──┴──────────>  paused ──> cancelled

`transition` says what an action makes of a status, or refuses it with a message that says
which statuses allow it. Every refusal carries its English sentence with `{placeholders}`
(`msgid`) and `params`, so the web answers translate it.

A mailing's text uses `{customer.name}`, `{customer.number}` and per-recipient variables
(`{first_name}`: a column of the uploaded CSV); `{{` and `}}` are literal braces.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import time
from typing import Any

from smsdesk.domain.errors import DomainError
from smsdesk.domain.routing import check_tag
from smsdesk.domain.sender import validate_sender

MAX_NAME = 200
MAX_TEXT = 10_000
MAX_THROTTLE = 100_000  # messages per minute
MAX_VALIDITY_HOURS = 24 * 14
DEFAULT_PRIORITY = 3  # below service SMS, so a mailing never delays them
CUSTOMER_VARIABLES = ("customer.name", "customer.number")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class MailingProblem(DomainError):
    """A refusal about a mailing; `msgid` and `params` make the message translatable."""

    def __init__(self, msgid: str, *, field: str, **params: Any) -> None:
        super().__init__(msgid.format(**params), field=field)
        self.msgid = msgid
        self.params = {key: str(value) for key, value in params.items()}


class Status(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    DONE = "done"
    CANCELLED = "cancelled"


class Action(enum.StrEnum):
    SCHEDULE = "schedule"
    UNSCHEDULE = "unschedule"
    START = "start"
    PAUSE = "pause"
    RESUME = "resume"
    FINISH = "finish"
    CANCEL = "cancel"


class Replies(enum.StrEnum):
    """Where replies to a mailing go: a request linked to it, or the unrecognised list."""

    REQUEST = "request"
    UNRECOGNISED = "unrecognised"


# action -> (the statuses it may start from, the status it leads to)
TRANSITIONS: dict[Action, tuple[frozenset[Status], Status]] = {
    Action.SCHEDULE: (frozenset({Status.DRAFT}), Status.SCHEDULED),
    Action.UNSCHEDULE: (frozenset({Status.SCHEDULED}), Status.DRAFT),
    Action.START: (frozenset({Status.DRAFT, Status.SCHEDULED}), Status.SENDING),
    Action.PAUSE: (frozenset({Status.SENDING}), Status.PAUSED),
    Action.RESUME: (frozenset({Status.PAUSED}), Status.SENDING),
    Action.FINISH: (frozenset({Status.SENDING}), Status.DONE),
    Action.CANCEL: (
        frozenset({Status.DRAFT, Status.SCHEDULED, Status.SENDING, Status.PAUSED}),
        Status.CANCELLED,
    ),
}

REFUSED = "A mailing that is {status} cannot {action}; only a mailing that is {allowed} can."
NOT_A_DRAFT = "The mailing is {status}; only a draft can be {what}."


def transition(status: Status, action: Action) -> Status:
    """The status `action` leads to from `status`; MailingProblem if it is not allowed."""
    allowed, target = TRANSITIONS[action]
    if status not in allowed:
        names = " or ".join(sorted(s.value for s in allowed))
        raise MailingProblem(
            REFUSED, field="status", status=status.value, action=action.value, allowed=names
        )
    return target


def require_draft(status: Status, what: str) -> None:
    """Editing, adding recipients and deleting are for drafts only (`what`: 'changed', ...)."""
    if status is not Status.DRAFT:
        raise MailingProblem(NOT_A_DRAFT, field="status", status=status.value, what=what)


@dataclass(frozen=True, slots=True)
class SendWindow:
    """Days of the week (0 = Monday) and a local time span [start, end), in the recipient's
    time zone; a span over midnight is not supported (use two days' hours instead)."""

    days: frozenset[int]
    start: time
    end: time

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": [DAY_NAMES[d] for d in sorted(self.days)],
            "from": self.start.strftime("%H:%M"),
            "to": self.end.strftime("%H:%M"),
        }


def _clock_time(value: str, field: str) -> time:
    try:
        hours, minutes = value.strip().split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise MailingProblem(
            "'{value}' is not a time of day; write it as 09:00.", field=field, value=value
        ) from None


def check_window(days: Sequence[str | int], start: str, end: str) -> SendWindow:
    """A send window from day names (mon..sun) or numbers (0 = Monday) and HH:MM times."""
    checked: set[int] = set()
    for day in days:
        name = str(day).strip().lower()[:3]
        if isinstance(day, int) and 0 <= day <= 6:
            checked.add(day)
        elif name in DAY_NAMES:
            checked.add(DAY_NAMES.index(name))
        else:
            raise MailingProblem(
                "'{day}' is not a day of the week; use mon, tue, wed, thu, fri, sat or sun.",
                field="window.days",
                day=day,
            )
    if not checked:
        raise MailingProblem(
            "The send window has no days; choose at least one day of the week.",
            field="window.days",
        )
    opens, closes = _clock_time(start, "window.from"), _clock_time(end, "window.to")
    if closes <= opens:
        raise MailingProblem(
            "The send window closes at {end}, before it opens at {start}; a window cannot "
            "span midnight.",
            field="window.to",
            start=start,
            end=end,
        )
    return SendWindow(frozenset(checked), opens, closes)


def window_from_dict(data: Mapping[str, Any] | None) -> SendWindow | None:
    """A stored window (`SendWindow.as_dict`) read back."""
    if not data:
        return None
    return check_window(data["days"], data["from"], data["to"])


@dataclass(frozen=True, slots=True)
class MailingSpec:
    """What an administrator sets; a text of its own or a reply template's id."""

    name: str
    text: str | None = None
    template_id: str | None = None
    sender: str | None = None  # None: the configured sender
    connection: str | None = None  # a connection's id or name; None: the routes decide
    priority: int = DEFAULT_PRIORITY
    validity_hours: float | None = None  # None: the configured validity
    window: SendWindow | None = None  # None: any time
    throttle_per_minute: int | None = None  # None: as fast as the connection allows
    tags: tuple[str, ...] = ()
    replies: Replies = Replies.REQUEST
    override_consent: bool = False
    scheduled_at: float | None = None


def _text_problem(msgid: str, **params: Any) -> MailingProblem:
    return MailingProblem(msgid, field="text", **params)


def text_parts(text: str) -> list[str | tuple[str]]:
    """The text as literal pieces and (variable,) placeholders; MailingProblem if unreadable."""
    parts: list[str | tuple[str]] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char in "{}" and text.startswith(char * 2, index):
            literal.append(char)
            index += 2
            continue
        if char == "}":
            raise _text_problem(
                "A lone }} at position {position}; write }}}} for a literal brace.",
                position=index + 1,
            )
        if char != "{":
            literal.append(char)
            index += 1
            continue
        end = text.find("}", index + 1)
        name = text[index + 1 : end].strip() if end > 0 else ""
        if end < 0 or not _VARIABLE.match(name):
            raise _text_problem(
                "The {{ at position {position} does not start a variable such as "
                "{{first_name}}; write {{{{ for a literal brace.",
                position=index + 1,
            )
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append((name,))
        index = end + 1
    if literal:
        parts.append("".join(literal))
    return parts


def text_variables(text: str) -> tuple[str, ...]:
    """The variables a text uses, each once, in order of appearance."""
    return tuple(dict.fromkeys(p[0] for p in text_parts(text) if isinstance(p, tuple)))


def render(text: str, values: Mapping[str, str | None]) -> str:
    """The text for one recipient; MailingProblem naming the first variable without a value."""
    out: list[str] = []
    for part in text_parts(text):
        if isinstance(part, str):
            out.append(part)
            continue
        value = values.get(part[0])
        if value is None or not value.strip():
            raise MailingProblem(
                "The text needs {{{name}}}, which this recipient has no value for.",
                field=f"variables.{part[0]}",
                name=part[0],
            )
        out.append(value)
    return "".join(out)


def _check_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise MailingProblem("The mailing's name is empty; enter a name.", field="name")
    if len(cleaned) > MAX_NAME:
        raise MailingProblem(
            "The name is {count} characters long; at most {limit} are allowed.",
            field="name",
            count=len(cleaned),
            limit=MAX_NAME,
        )
    return cleaned


def _check_content(spec: MailingSpec) -> str | None:
    if (spec.text is None) == (spec.template_id is None):
        raise MailingProblem(
            "Give the mailing either its own text or a reply template, not both or neither.",
            field="text",
        )
    if spec.text is None:
        return None
    if not spec.text.strip():
        raise _text_problem("The mailing's text is empty; write the SMS it sends.")
    if len(spec.text) > MAX_TEXT:
        raise _text_problem(
            "The text has {count} characters; at most {limit} are allowed.",
            count=len(spec.text),
            limit=MAX_TEXT,
        )
    text_parts(spec.text)
    return spec.text


def _check_numbers(spec: MailingSpec) -> None:
    if spec.priority not in (1, 2, 3):
        raise MailingProblem(
            "Priority {priority} does not exist; use 1 (fastest), 2 or 3.",
            field="priority",
            priority=spec.priority,
        )
    validity = spec.validity_hours
    if validity is not None and not 0 < validity <= MAX_VALIDITY_HOURS:
        raise MailingProblem(
            "Validity {hours} is out of range; give more than 0 and at most 336 hours.",
            field="validity_hours",
            hours=f"{validity:g}",
        )
    throttle = spec.throttle_per_minute
    if throttle is not None and not 1 <= throttle <= MAX_THROTTLE:
        raise MailingProblem(
            "The throttle must be from 1 to {limit} messages a minute, not {value}.",
            field="throttle_per_minute",
            limit=MAX_THROTTLE,
            value=throttle,
        )


def check_spec(spec: MailingSpec) -> MailingSpec:
    """The spec with its name and tags cleaned; MailingProblem (or the sender's and tags'
    own refusals) naming the field otherwise."""
    name = _check_name(spec.name)
    text = _check_content(spec)
    _check_numbers(spec)
    sender = validate_sender(spec.sender).value if spec.sender is not None else None
    tags = tuple(dict.fromkeys(check_tag(t, field="tags") for t in spec.tags))
    connection = (spec.connection or "").strip() or None
    return replace(spec, name=name, text=text, sender=sender, tags=tags, connection=connection)


@dataclass(frozen=True, slots=True)
class Mailing:
    """A stored mailing: its spec, id, status and times."""

    id: str
    spec: MailingSpec
    status: Status
    created_at: float
    updated_at: float
    created_by: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
