"""Checking a mailing's recipients before anything is sent: pure, so it is tested on its own.

Each recipient gets one result, decided in this order:

    invalid      the number cannot receive SMS (the reason says why)
    duplicate    the number is already a recipient of the mailing (or earlier in the list)
    opted_out    the number texted STOP; never sent to, whatever the consent override
    no_consent   its customer gave no consent for mailings, or withdrew it (or no customer
                 has the number), unless an administrator overrides consent
    valid        it will be sent

The caller looks up what the database knows (opt-outs, owners, consents, numbers already in
the mailing) for the numbers `normalise_rows` found, and hands it in as `Lookups`; a long list
is checked chunk by chunk, the numbers seen so far carried from chunk to chunk.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from smsdesk.domain.errors import DomainError
from smsdesk.domain.phone import normalise_msisdn


class Check(enum.StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    DUPLICATE = "duplicate"
    OPTED_OUT = "opted_out"
    NO_CONSENT = "no_consent"


@dataclass(frozen=True, slots=True)
class RecipientInput:
    """A recipient as given: the line it came from, the number as written, its variables."""

    line: int
    number: str
    variables: Mapping[str, str] = field(default_factory=dict)
    customer_id: str | None = None  # known when the recipients come from customers


@dataclass(frozen=True, slots=True)
class Normalised:
    given: RecipientInput
    number: str | None  # E.164, None when invalid
    reason: str | None = None  # why it is invalid


@dataclass(frozen=True, slots=True)
class CheckedRecipient:
    line: int
    given: str
    number: str | None
    customer_id: str | None
    variables: Mapping[str, str]
    result: Check
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "number": self.number or self.given,
            "customer_id": self.customer_id,
            "result": self.result.value,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Lookups:
    """What the database knows about a chunk's numbers."""

    opted_out: Set[str] = frozenset()
    owners: Mapping[str, str] = field(default_factory=dict)  # number -> customer id
    consent: Mapping[str, bool] = field(default_factory=dict)  # customer id -> given?
    seen: Set[str] = frozenset()  # numbers already recipients of the mailing


@dataclass
class CheckCounts:
    valid: int = 0
    invalid: int = 0
    duplicate: int = 0
    opted_out: int = 0
    no_consent: int = 0

    @property
    def total(self) -> int:
        return self.valid + self.invalid + self.duplicate + self.opted_out + self.no_consent

    def add(self, result: Check, count: int = 1) -> None:
        setattr(self, result.value, getattr(self, result.value) + count)

    def as_dict(self) -> dict[str, int]:
        return {**{c.value: getattr(self, c.value) for c in Check}, "total": self.total}


@dataclass
class CheckReport:
    rows: list[CheckedRecipient]
    counts: CheckCounts


def normalise_rows(
    rows: Iterable[RecipientInput], default_country_code: str | None
) -> list[Normalised]:
    """Each row's number in E.164, or why it cannot be."""
    found: list[Normalised] = []
    for row in rows:
        try:
            found.append(Normalised(row, normalise_msisdn(row.number, default_country_code)))
        except DomainError as exc:
            found.append(Normalised(row, None, exc.message))
    return found


def _result(
    item: Normalised,
    customer_id: str | None,
    lookups: Lookups,
    earlier: Mapping[str, int],
    override_consent: bool,
) -> tuple[Check, str | None]:
    number = item.number
    if number is None:
        return Check.INVALID, item.reason
    if number in earlier:
        return Check.DUPLICATE, f"{number} is also on line {earlier[number]}."
    if number in lookups.seen:
        return Check.DUPLICATE, f"{number} is already a recipient of this mailing."
    if number in lookups.opted_out:
        return Check.OPTED_OUT, f"{number} opted out of SMS (replied STOP)."
    if override_consent:
        return Check.VALID, None
    if customer_id is None:
        return Check.NO_CONSENT, f"{number} is no customer's number, so no consent is recorded."
    given = lookups.consent.get(customer_id)
    if given is None:
        return Check.NO_CONSENT, "The customer has not consented to mailings."
    if not given:
        return Check.NO_CONSENT, "The customer withdrew consent to mailings."
    return Check.VALID, None


def check_normalised(
    items: Iterable[Normalised], lookups: Lookups, *, override_consent: bool = False
) -> CheckReport:
    """Each row's result (see the module docstring) and the counts."""
    earlier: dict[str, int] = {}
    rows: list[CheckedRecipient] = []
    counts = CheckCounts()
    for item in items:
        given = item.given
        customer_id = given.customer_id or (
            lookups.owners.get(item.number) if item.number else None
        )
        result, reason = _result(item, customer_id, lookups, earlier, override_consent)
        if item.number is not None and item.number not in earlier:
            earlier[item.number] = given.line
        rows.append(
            CheckedRecipient(
                given.line, given.number, item.number, customer_id, given.variables, result, reason
            )
        )
        counts.add(result)
    return CheckReport(rows, counts)


def check_recipients(
    rows: Iterable[RecipientInput],
    lookups: Lookups,
    *,
    default_country_code: str | None,
    override_consent: bool = False,
) -> CheckReport:
    """`normalise_rows` then `check_normalised`, for lookups known up front."""
    return check_normalised(
        normalise_rows(rows, default_country_code), lookups, override_consent=override_consent
    )
