"""The mailing form: what was typed, read into a `MailingSpec`, and each refusal put beside
its field.

The domain names a refusal's field with dots (`window.from`, `variables.first_name`); the
form's inputs have flat names, so `FIELD_OF` says where a refusal is shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from smsdesk.domain.mailings import (
    DAY_NAMES,
    DEFAULT_PRIORITY,
    Mailing,
    MailingProblem,
    MailingSpec,
    Replies,
    check_spec,
    check_window,
)

TEXT_FIELDS = (
    "name",
    "content",
    "text",
    "template_id",
    "sender",
    "connection",
    "priority",
    "validity_hours",
    "window_from",
    "window_to",
    "throttle_per_minute",
    "tags",
    "replies",
)
FIELD_OF = {
    "window.days": "window_days",
    "window.from": "window_from",
    "window.to": "window_to",
    "template_id": "template_id",
}
SHOWN = frozenset({*TEXT_FIELDS, "window_days", "override_consent"})
NOT_A_NUMBER = "'{value}' is not a number; enter digits, such as {example}."


@dataclass
class MailingForm:
    """The form as typed (shown again after a refusal) and its errors by input name."""

    values: dict[str, str]
    days: list[str] = field(default_factory=list)
    override_consent: bool = False
    errors: dict[str, str] = field(default_factory=dict)


def blank_form() -> MailingForm:
    values = dict.fromkeys(TEXT_FIELDS, "")
    values.update(content="text", priority=str(DEFAULT_PRIORITY), replies=Replies.REQUEST.value)
    return MailingForm(values)


def form_of(mailing: Mailing) -> MailingForm:
    """A stored mailing as its form shows it."""
    spec = mailing.spec
    window = spec.window.as_dict() if spec.window else None
    values = {
        "name": spec.name,
        "content": "template" if spec.template_id else "text",
        "text": spec.text or "",
        "template_id": spec.template_id or "",
        "sender": spec.sender or "",
        "connection": spec.connection or "",
        "priority": str(spec.priority),
        "validity_hours": "" if spec.validity_hours is None else f"{spec.validity_hours:g}",
        "window_from": window["from"] if window else "",
        "window_to": window["to"] if window else "",
        "throttle_per_minute": str(spec.throttle_per_minute or ""),
        "tags": ", ".join(spec.tags),
        "replies": spec.replies.value,
    }
    days = list(window["days"]) if window else []
    return MailingForm(values, days, spec.override_consent)


def read_form(fields: dict[str, str], days: list[str], *, may_override: bool) -> MailingForm:
    """The posted form; line breaks as LF, days in week order."""
    values = {name: fields.get(name, "").replace("\r\n", "\n") for name in TEXT_FIELDS}
    chosen = [d for d in DAY_NAMES if d in days]
    override = may_override and fields.get("override_consent") == "on"
    return MailingForm(values, chosen, override)


def _number(value: str, name: str, example: str, kind: type[Any]) -> Any:
    if not value.strip():
        return None
    try:
        return kind(value.strip().replace(",", "."))
    except ValueError:
        raise MailingProblem(NOT_A_NUMBER, field=name, value=value, example=example) from None


def spec_of(form: MailingForm, scheduled_at: float | None = None) -> MailingSpec:
    """The checked spec; MailingProblem (or the sender's, tags' refusals) naming the field."""
    v = form.values
    window = None
    if form.days or v["window_from"].strip() or v["window_to"].strip():
        window = check_window(form.days, v["window_from"], v["window_to"])
    use_template = v["content"] == "template"
    spec = MailingSpec(
        name=v["name"],
        text=None if use_template else v["text"],
        template_id=(v["template_id"] or None) if use_template else None,
        sender=v["sender"].strip() or None,
        connection=v["connection"].strip() or None,
        priority=_number(v["priority"], "priority", "3", int) or DEFAULT_PRIORITY,
        validity_hours=_number(v["validity_hours"], "validity_hours", "24", float),
        window=window,
        throttle_per_minute=_number(v["throttle_per_minute"], "throttle_per_minute", "600", int),
        tags=tuple(t for t in (p.strip() for p in v["tags"].split(",")) if t),
        replies=Replies.UNRECOGNISED if v["replies"] == "unrecognised" else Replies.REQUEST,
        override_consent=form.override_consent,
        scheduled_at=scheduled_at,
    )
    if use_template and spec.template_id is None:
        raise MailingProblem("Choose a reply template, or write a text.", field="template_id")
    return replace(check_spec(spec), scheduled_at=scheduled_at)


def error_field(name: str) -> str:
    """The input a refusal about `name` is shown beside (the text for its variables)."""
    shown = FIELD_OF.get(name, name)
    if shown.startswith("variables."):
        return "text"
    return shown if shown in SHOWN else "form"
