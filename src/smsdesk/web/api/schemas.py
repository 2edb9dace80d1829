"""Request and response bodies of the REST API."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails

from smsdesk.domain.times import iso

MAX_BATCH = 1000


def _not_a_boolean(value: Any) -> Any:
    """JSON true is not the number 1: a boolean where a number belongs is a caller's mistake."""
    if isinstance(value, bool):
        raise ValueError(f"Give a number here, not {str(value).lower()}.")
    return value


Priority = Annotated[int | None, BeforeValidator(_not_a_boolean)]
Hours = Annotated[float | None, BeforeValidator(_not_a_boolean)]


# The messages of one batch share their creation time: format it once, not per message.
_iso_cached = lru_cache(maxsize=64)(iso)


class SendMessage(BaseModel):
    """One SMS to send; fields left out come from the SMS configuration."""

    model_config = {"extra": "forbid"}

    to: str = Field(
        ...,
        max_length=40,
        description="Mobile number; without country code the default country code is added.",
        examples=["+31612345678"],
    )
    text: str | None = Field(
        None,
        max_length=10_000,
        description="The message; longer than one SMS is "
        "sent in parts, up to the configured maximum. Give either text or template.",
    )
    template: str | None = Field(
        None,
        max_length=100,
        description="A reply template's id or name, instead of text; {customer.number} is the "
        "recipient, {customer.name} the customer holding that number.",
        examples=["Order shipped"],
    )
    language: str | None = Field(
        None,
        max_length=10,
        description="The language of a template given by name (default: the customer's, or "
        "the only language it exists in).",
    )
    variables: dict[str, str] | None = Field(
        None,
        description="Answers to the template's prompts by their question, and values for its "
        "variables (e.g. agent.name, request.id, customer.name).",
        examples=[{"order number": "A-1042", "agent.name": "Sam"}],
    )
    sender: str | None = Field(None, max_length=20, description="Overrides the configured sender.")
    priority: Priority = Field(None, description="SMS priority: 1 (fastest), 2 or 3.")
    module: str | None = Field(
        None, max_length=40, description="Send through this module instead of the configured one."
    )
    scheduled_at: datetime | None = Field(
        None,
        description="Do not send before this time: from now up to 35 days ahead; up to 5 "
        "minutes in the past counts as now (the answer's notice says so).",
    )
    validity_hours: Hours = Field(
        None, description="Give up after this many hours: more than 0, at most 336."
    )
    reference: str | None = Field(None, max_length=100, description="Your own reference.")
    transactional: bool = Field(
        False,
        description="Send even if the number opted out (STOP), e.g. a one-time code. Only for "
        "admin keys and keys created with --transactional.",
    )

    @model_validator(mode="after")
    def _text_or_template(self) -> SendMessage:
        check_text_or_template(self.text, self.template, self.language, self.variables)
        return self


def check_text_or_template(
    text: str | None, template: str | None, language: str | None, variables: Any
) -> None:
    """A message has a text or a template; without either, `text` is the missing field."""
    if text is None and template is None:
        missing = InitErrorDetails(type="missing", loc=("text",), input=None)
        raise ValidationError.from_exception_data("SendMessage", [missing])
    if text is not None and template is not None:
        raise ValueError("Give either 'text' or 'template', not both.")
    if template is None and (language is not None or variables is not None):
        raise ValueError("'language' and 'variables' go with 'template'.")


class SendBatch(BaseModel):
    """Up to 1,000 messages: either a list of messages, or one text to a list of numbers."""

    model_config = {"extra": "forbid"}

    messages: list[SendMessage] | None = Field(None, max_length=MAX_BATCH)
    to: list[str] | None = Field(None, max_length=MAX_BATCH)
    text: str | None = Field(None, max_length=10_000)
    template: str | None = Field(None, max_length=100)
    language: str | None = Field(None, max_length=10)
    variables: dict[str, str] | None = None
    sender: str | None = Field(None, max_length=20)
    priority: Priority = None
    module: str | None = Field(None, max_length=40)
    scheduled_at: datetime | None = None
    validity_hours: Hours = None
    transactional: bool = False

    @model_validator(mode="after")
    def _one_form(self) -> SendBatch:
        if (self.messages is None) == (self.to is None):
            raise ValueError(
                "Give either 'messages' (a list of messages) or 'to' (a list of "
                "numbers) with 'text', not both or neither."
            )
        if self.to is not None:
            if self.text is None and self.template is None:
                raise ValueError("'text' or 'template' is required with 'to'.")
            check_text_or_template(self.text, self.template, self.language, self.variables)
        return self

    def items(self) -> list[SendMessage]:
        if self.messages is not None:
            return self.messages
        return [
            SendMessage(
                to=number,
                text=self.text,
                template=self.template,
                language=self.language,
                variables=self.variables,
                sender=self.sender,
                priority=self.priority,
                module=self.module,
                scheduled_at=self.scheduled_at,
                validity_hours=self.validity_hours,
                transactional=self.transactional,
            )
            for number in self.to or []
        ]


def message_out(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "module": row.module,
        "to": row.recipient,
        "sender": row.sender,
        "text": row.body,
        "encoding": row.encoding,
        "segments": row.segments,
        "priority": row.priority,
        "attempts": row.attempts,
        "created_at": iso(row.created_at),
        "scheduled_at": iso(row.scheduled_at),
        "sent_at": iso(row.sent_at),
        "final_at": iso(row.final_at),
        "expires_at": iso(row.expires_at),
        "provider_message_id": row.provider_message_id,
        "status_code": row.status_code,
        "error": row.error,
        "reference": row.reference,
        "test": bool(row.is_test),
        **route_out(row.route_name, row.estimated_cost, row.cost_currency),
    }


def route_out(route: str | None, cost: Any, currency: str | None) -> dict[str, Any]:
    """The route a message took and its estimated cost (a decimal string), when known."""
    return {
        "route": route,
        "estimated_cost": None if cost is None else str(cost),
        "cost_currency": currency,
    }


def accepted_out(row: dict[str, Any], notice: str | None = None) -> dict[str, Any]:
    """An accepted message; `notice` (only when given) tells what was decided for the caller."""
    body = {
        "id": row["id"],
        "status": row["status"],
        "module": row["module"],
        "to": row["recipient"],
        "sender": row["sender"],
        "encoding": row["encoding"],
        "segments": row["segments"],
        "priority": row["priority"],
        "created_at": _iso_cached(row["created_at"]),
        "scheduled_at": _iso_cached(row["scheduled_at"]),
        **route_out(row.get("route_name"), row.get("estimated_cost"), row.get("cost_currency")),
    }
    if notice:
        body["notice"] = notice
    return body


def event_out(row: Any) -> dict[str, Any]:
    return {
        "at": iso(row.at),
        "status": row.status,
        "applied": bool(row.applied),
        "source": row.source,
        "code": row.code,
        "detail": row.detail,
    }


class SendTest(BaseModel):
    """Send test: a number, a text, and optionally unsaved settings to send with."""

    model_config = {"extra": "forbid"}

    to: str = Field(..., max_length=40)
    text: str = Field(..., max_length=10_000)
    settings: dict[str, Any] | None = Field(
        None,
        description="SMS configuration as entered (same shape as PUT /settings); "
        "omitted: the saved configuration.",
    )
