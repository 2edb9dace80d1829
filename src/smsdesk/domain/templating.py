"""Reply templates: texts with variables an agent sends again and again, rendered before sending.

A template body is plain text with placeholders in braces:

    {customer.name}  {customer.number}  {request.id}  {agent.name}   filled from the context
    {prompt:order number}                                            typed by the agent
    {{  }}                                                           a literal { and }

A placeholder that has no value (an unknown customer's name, an unfilled prompt) is refused
with `MissingVariable` naming it; a template is never sent with braces left in. Unknown names
and stray braces are refused when the template is saved (`check_body`), with their position.

Every error carries its English sentence with `{placeholders}` (`msgid`) and the values filled
in (`params`), so a screen can show it translated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from smsdesk.domain.errors import DomainError
from smsdesk.domain.text import describe, forbidden_control, shows_nothing

VARIABLES: tuple[str, ...] = ("customer.name", "customer.number", "request.id", "agent.name")
PROMPT = "prompt:"
MAX_PROMPT = 50
MAX_BODY = 10_000


class TemplateProblem(DomainError):
    """A template or its rendering breaks a rule; `msgid` and `params` make the message."""

    field = "body"

    def __init__(self, msgid: str, *, field: str | None = None, **params: Any) -> None:
        super().__init__(msgid.format(**params), field=field)
        self.msgid = msgid
        self.params = {key: str(value) for key, value in params.items()}


class InvalidTemplate(TemplateProblem):
    """A body that cannot be saved: a stray brace, an unknown variable, a control character."""

    def __init__(self, msgid: str, *, position: int = 0, **params: Any) -> None:
        super().__init__(msgid, position=position, **params)
        self.position = position


class UnknownVariable(InvalidTemplate):
    def __init__(self, name: str, position: int) -> None:
        super().__init__(
            "Unknown variable {{{name}}} at position {position}; use {known} or "
            "{{prompt:a question for the agent}}.",
            position=position,
            name=name,
            known=", ".join("{" + v + "}" for v in VARIABLES),
        )
        self.name = name


class MissingVariable(TemplateProblem):
    """A placeholder without a value at rendering: never sent as braces. The field is
    `variables.<name>`, a prompt named by its question."""

    def __init__(self, name: str) -> None:
        if name.startswith(PROMPT):
            super().__init__(
                "Fill in '{prompt}': the template asks for it.",
                field=f"variables.{name[len(PROMPT) :]}",
                prompt=name[len(PROMPT) :],
            )
        else:
            super().__init__(
                "The template needs {{{name}}}, which has no value here.",
                field=f"variables.{name}",
                name=name,
            )
        self.name = name


@dataclass(frozen=True, slots=True)
class Placeholder:
    """A `{name}` in a body; `position` is the 1-based place of its opening brace."""

    name: str
    position: int

    @property
    def prompt(self) -> str | None:
        return self.name[len(PROMPT) :] if self.name.startswith(PROMPT) else None


Part = str | Placeholder


def _placeholder(inner: str, position: int) -> Placeholder:
    name = inner.strip()
    if name.startswith(PROMPT):
        label = " ".join(name[len(PROMPT) :].split())
        if not label:
            raise InvalidTemplate(
                "The prompt at position {position} has no question; write it like "
                "{{prompt:order number}}.",
                position=position,
            )
        if len(label) > MAX_PROMPT:
            raise InvalidTemplate(
                "The prompt at position {position} is longer than {limit} characters.",
                position=position,
                limit=MAX_PROMPT,
            )
        return Placeholder(PROMPT + label, position)
    if name not in VARIABLES:
        raise UnknownVariable(name, position)
    return Placeholder(name, position)


def parse(body: str) -> tuple[Part, ...]:
    """The body as literal texts and placeholders; InvalidTemplate for what cannot be read."""
    parts: list[Part] = []
    literal: list[str] = []
    index, length = 0, len(body)
    while index < length:
        char = body[index]
        if char in "{}" and body.startswith(char * 2, index):
            literal.append(char)
            index += 2
        elif char == "}":
            raise InvalidTemplate(
                "A lone }} at position {position}; write }}}} for a literal brace.",
                position=index + 1,
            )
        elif char == "{":
            end = body.find("}", index + 1)
            opened = body.find("{", index + 1)
            if end < 0 or 0 <= opened < end:
                raise InvalidTemplate(
                    "The {{ at position {position} is not closed; write {{{{ for a literal brace.",
                    position=index + 1,
                )
            if literal:
                parts.append("".join(literal))
                literal = []
            parts.append(_placeholder(body[index + 1 : end], index + 1))
            index = end + 1
        else:
            literal.append(char)
            index += 1
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def check_body(body: str) -> str:
    """A body fit to save: readable, known variables only, something to show, no controls."""
    if not body.strip() or shows_nothing(body):
        raise InvalidTemplate("The template's text is empty; write the reply it sends.")
    if len(body) > MAX_BODY:
        raise InvalidTemplate(
            "The template's text has {count} characters; at most {limit} are allowed.",
            count=len(body),
            limit=MAX_BODY,
        )
    found = forbidden_control(body)
    if found is not None:
        position, char = found
        raise InvalidTemplate(
            "The text contains the control character {character} at position {position}; "
            "remove it. Only line breaks and tabs are allowed.",
            position=position,
            character=describe(char),
        )
    parse(body)
    return body


def placeholders(body: str) -> tuple[Placeholder, ...]:
    return tuple(part for part in parse(body) if isinstance(part, Placeholder))


def prompts(body: str) -> tuple[str, ...]:
    """The questions the agent answers before sending, each once, in order of appearance."""
    return tuple(dict.fromkeys(p.prompt for p in placeholders(body) if p.prompt is not None))


def render(body: str, values: Mapping[str, str | None]) -> str:
    """The text to send; `values` maps variable names and `prompt:<question>` to their text.

    A value is inserted as it is (braces in it stay braces); a missing or blank value is
    refused with MissingVariable naming the first such placeholder.
    """
    out: list[str] = []
    for part in parse(body):
        if isinstance(part, str):
            out.append(part)
            continue
        value = values.get(part.name)
        if value is None or not value.strip():
            raise MissingVariable(part.name)
        out.append(value)
    return "".join(out)


def prompt_values(filled: Mapping[str, str | None]) -> dict[str, str | None]:
    """Given answers keyed by question (with or without `prompt:`), keyed as `render` wants."""
    values: dict[str, str | None] = {}
    for key, value in filled.items():
        name = key.strip()
        if name in VARIABLES:
            values[name] = value
        else:
            question = name.removeprefix(PROMPT)
            values[PROMPT + " ".join(question.split())] = value
    return values
