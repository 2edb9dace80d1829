"""Checking what administrators type for a customer: a name, a language code, mobile numbers.

Pure functions: the API, the CLI and the CSV import check with them before anything is written,
so the store only ever sees clean values, and each error names the field it concerns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from smsdesk.domain.errors import DomainError
from smsdesk.domain.phone import normalise_msisdn
from smsdesk.domain.routing import check_tag

MAX_NAME = 200


def check_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise DomainError("The customer's name is empty; enter a name.", field="name")
    if len(cleaned) > MAX_NAME:
        raise DomainError(
            f"The name is {len(cleaned)} characters long; at most {MAX_NAME} are allowed.",
            field="name",
        )
    return cleaned


def check_language(language: str) -> str:
    cleaned = language.strip().lower()
    if not 2 <= len(cleaned) <= 10 or not cleaned.replace("-", "").isalpha():
        raise DomainError(
            f"'{language}' is not a language code; use a code such as en, nl or nb-no.",
            field="language",
        )
    return cleaned


def check_numbers(
    raw: Iterable[str], default_country_code: str | None, *, field: str = "numbers"
) -> tuple[str, ...]:
    """Each number in E.164, duplicates dropped, order kept; at least one."""
    numbers: list[str] = []
    for index, value in enumerate(raw):
        try:
            number = normalise_msisdn(value, default_country_code or None)
        except DomainError as exc:
            raise DomainError(exc.message, field=f"{field}.{index}") from None
        if number not in numbers:
            numbers.append(number)
    if not numbers:
        raise DomainError("Give the customer at least one mobile number.", field=field)
    return tuple(numbers)


MAX_TAGS = 20
MAX_TAG = 50


class CustomerProblem(DomainError):
    """A refusal about a customer's input; `msgid` and `params` make it translatable."""

    def __init__(self, msgid: str, *, field: str, **params: Any) -> None:
        super().__init__(msgid.format(**params), field=field)
        self.msgid = msgid
        self.params = params


def check_tags(raw: Iterable[str]) -> tuple[str, ...]:
    """Tags in lower case, duplicates dropped; at most MAX_TAGS of MAX_TAG characters."""
    tags: list[str] = []
    for index, value in enumerate(raw):
        tag = check_tag(value, field=f"tags.{index}").lower()
        if len(tag) > MAX_TAG:
            raise CustomerProblem(
                "The tag '{value}' is longer than {limit} characters; use a shorter one.",
                field=f"tags.{index}",
                value=tag,
                limit=MAX_TAG,
            )
        if tag not in tags:
            tags.append(tag)
    if len(tags) > MAX_TAGS:
        raise CustomerProblem(
            "A customer carries at most {limit} tags; {count} were given.",
            field="tags",
            limit=MAX_TAGS,
            count=len(tags),
        )
    return tuple(tags)
