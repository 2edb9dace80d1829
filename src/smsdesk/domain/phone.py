"""Phone numbers: normalised to E.164 with the configured default country code.

Numbers are checked with libphonenumber's metadata; only numbers that can receive SMS (mobile,
or numbers a country does not tell apart from mobile) are accepted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NoReturn

import phonenumbers
from phonenumbers import NumberParseException, PhoneMetadata, PhoneNumberType, ValidationResult
from phonenumbers.phonenumberutil import (
    COUNTRY_CODE_TO_REGION_CODE,
    _maybe_strip_national_prefix_carrier_code,
)

from smsdesk.domain.errors import DomainError, InvalidNumber

_MOBILE_CAPABLE = frozenset({PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE})
_ALLOWED = re.compile(r"^[+\d\s().\-/]+$")
_EXAMPLE = "+31612345678"
_NON_GEOGRAPHIC = "001"  # +800, +882, ...: no national numbers, so no use as a default


def parse_country_code(value: str) -> int:
    """A country calling code from '+31', '31' or '0031'; refuse codes no country uses."""
    cleaned = value.strip().replace(" ", "")
    digits = cleaned.removeprefix("+").removeprefix("00") if cleaned else ""
    if digits.isdecimal() and 1 <= len(digits) <= 3:
        code = int(digits)
        if phonenumbers.region_code_for_country_code(code) not in ("ZZ", _NON_GEOGRAPHIC):
            return code
    raise InvalidNumber(
        f"'{value}' is not a country calling code; write it like +31 (Netherlands) or +44.",
        field="default_country_code",
    )


@lru_cache(maxsize=256)
def _region(country_code: int) -> str:
    return phonenumbers.region_code_for_country_code(country_code)


def region_of(e164: str) -> str | None:
    """The ISO region of an E.164 number, e.g. 'NL'."""
    try:
        number = phonenumbers.parse(e164, None)
    except NumberParseException:
        return None
    return phonenumbers.region_code_for_number(number)


# A number written the way APIs send it: '+', the country code, the national number.
_PLAIN_E164 = re.compile(r"\+([1-9]\d{6,14})")


def _parse_plain_e164(raw: str) -> phonenumbers.PhoneNumber | None:
    """The number of a plain E.164 string without the general parser (a tenth of its cost),
    or None when it needs the parser: a national part that starts with 0 (Italy keeps it) or
    with the country's national prefix (which the parser would strip)."""
    found = _PLAIN_E164.fullmatch(raw)
    if found is None:
        return None
    digits = found.group(1)
    for size in (1, 2, 3):  # country calling codes are prefix-free: the first match is it
        code = int(digits[:size])
        if code not in COUNTRY_CODE_TO_REGION_CODE:
            continue
        national = digits[size:]
        if national.startswith("0"):
            return None
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, _region(code))
        if metadata is None:
            return None
        if _maybe_strip_national_prefix_carrier_code(national, metadata)[1] != national:
            return None
        return phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
    return None


def _parse(raw: str, default_country_code: str | None) -> phonenumbers.PhoneNumber:
    plain = _parse_plain_e164(raw)
    if plain is not None:
        return plain
    text = raw.strip().lstrip("( ")
    if text.startswith("00"):
        text = "+" + text[2:]
    international = text.startswith("+")
    if not international and not default_country_code:
        raise InvalidNumber(
            f"'{raw}' has no country code and no default country code is set; write it as "
            f"{_EXAMPLE} or set the default country code in the SMS configuration."
        )
    region = None if international else _region(parse_country_code(default_country_code or ""))
    try:
        return phonenumbers.parse(text, region)
    except NumberParseException as exc:
        raise InvalidNumber(
            f"'{raw}' is not a phone number ({exc._msg}); write it as {_EXAMPLE}."
        ) from None


# libphonenumber's order of types: the first whose pattern matches names the number.
_TYPE_ORDER = (
    ("premium_rate", PhoneNumberType.PREMIUM_RATE),
    ("toll_free", PhoneNumberType.TOLL_FREE),
    ("shared_cost", PhoneNumberType.SHARED_COST),
    ("voip", PhoneNumberType.VOIP),
    ("personal_number", PhoneNumberType.PERSONAL_NUMBER),
    ("pager", PhoneNumberType.PAGER),
    ("uan", PhoneNumberType.UAN),
    ("voicemail", PhoneNumberType.VOICEMAIL),
)
_Desc = tuple[frozenset[int], re.Pattern[str]] | None


def _desc(desc: phonenumbers.PhoneNumberDesc | None) -> _Desc:
    if desc is None or not desc.national_number_pattern:
        return None
    return frozenset(desc.possible_length), re.compile(desc.national_number_pattern)


def _matches(national: str, desc: _Desc) -> bool:
    if desc is None:
        return False
    lengths, pattern = desc
    return (not lengths or len(national) in lengths) and pattern.fullmatch(national) is not None


@dataclass(frozen=True, slots=True)
class _Patterns:
    """A region's number patterns, compiled once, in the order libphonenumber tries them."""

    general: _Desc
    special: tuple[tuple[_Desc, int], ...]
    fixed_line: _Desc
    mobile: _Desc
    same_mobile_and_fixed_line: bool


@lru_cache(maxsize=512)
def _patterns(country_code: int, region: str) -> _Patterns | None:
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    if metadata is None:
        return None
    return _Patterns(
        _desc(metadata.general_desc),
        tuple((_desc(getattr(metadata, name)), kind) for name, kind in _TYPE_ORDER),
        _desc(metadata.fixed_line),
        _desc(metadata.mobile),
        bool(metadata.same_mobile_and_fixed_line_pattern),
    )


def number_kind(number: phonenumbers.PhoneNumber) -> int:
    """`phonenumbers.number_type`, with each region's patterns compiled once: the library
    looks every pattern up again in its regex cache, most of a check's cost on the hot path."""
    found = _patterns(number.country_code, phonenumbers.region_code_for_number(number))
    if found is None:
        return PhoneNumberType.UNKNOWN
    national = phonenumbers.national_significant_number(number)
    if not _matches(national, found.general):
        return PhoneNumberType.UNKNOWN
    for desc, kind in found.special:
        if _matches(national, desc):
            return kind
    if _matches(national, found.fixed_line):
        if found.same_mobile_and_fixed_line or _matches(national, found.mobile):
            return PhoneNumberType.FIXED_LINE_OR_MOBILE
        return PhoneNumberType.FIXED_LINE
    if not found.same_mobile_and_fixed_line and _matches(national, found.mobile):
        return PhoneNumberType.MOBILE
    return PhoneNumberType.UNKNOWN


def _refuse_invalid(raw: str, number: phonenumbers.PhoneNumber) -> NoReturn:
    """Say why an invalid number is refused: wrong length for a mobile, or bad digits."""
    region = _region(number.country_code)
    where = region if region not in ("ZZ", _NON_GEOGRAPHIC) else f"+{number.country_code}"
    length = phonenumbers.is_possible_number_for_type_with_reason(number, PhoneNumberType.MOBILE)
    reason = {
        ValidationResult.TOO_SHORT: f"is too short for a mobile number in {where}",
        ValidationResult.TOO_LONG: f"is too long for a mobile number in {where}",
        ValidationResult.INVALID_LENGTH: (
            f"has the wrong number of digits for a mobile number in {where}"
        ),
    }.get(length, f"is not a valid number in {where}")
    raise InvalidNumber(f"'{raw}' {reason}; check the digits.")


def normalise_msisdn(raw: str, default_country_code: str | None) -> str:
    """The number in E.164 (e.g. +31612345678); InvalidNumber says why when it cannot be."""
    return normalise_with_region(raw, default_country_code)[0]


# Numbers already checked, by (input, default country code): the same numbers come back (a
# mailing's recipients are checked, then estimated; customers write again), and a check costs
# two metadata matches. Plain dict, emptied when full: safe to share between threads.
_KNOWN: dict[tuple[str, str | None], tuple[str, str | None]] = {}
_KNOWN_MAX = 20_000


def normalise_with_region(raw: str, default_country_code: str | None) -> tuple[str, str | None]:
    """The number in E.164 and its ISO region (e.g. 'NL'; None for non-geographic numbers),
    from one parse; InvalidNumber says why when the number is not one that takes SMS."""
    key = (raw, None if raw.lstrip().startswith("+") else default_country_code)
    known = _KNOWN.get(key)
    if known is not None:
        return known
    number = _checked_number(raw, default_country_code)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(number)
    found = (e164, region if region and region not in ("ZZ", _NON_GEOGRAPHIC) else None)
    if len(_KNOWN) >= _KNOWN_MAX:
        _KNOWN.clear()
    _KNOWN[key] = found
    _KNOWN[(e164, None)] = found
    return found


def _checked_number(raw: str, default_country_code: str | None) -> phonenumbers.PhoneNumber:
    if not raw or not raw.strip():
        raise InvalidNumber(f"The mobile number is empty; enter one such as {_EXAMPLE}.")
    if not _ALLOWED.match(raw.strip()):
        raise InvalidNumber(
            f"'{raw}' contains characters that are not part of a phone number; "
            f"use digits and an optional leading +, e.g. {_EXAMPLE}."
        )
    number = _parse(raw, default_country_code)
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible == ValidationResult.TOO_SHORT:
        raise InvalidNumber(
            f"'{raw}' is too short to be a phone number of that country; "
            "enter the full number with its country code."
        )
    if possible == ValidationResult.TOO_LONG:
        raise InvalidNumber(
            f"'{raw}' is too long to be a phone number of that country; check the number."
        )
    if possible == ValidationResult.INVALID_LENGTH:
        raise InvalidNumber(
            f"'{raw}' has the wrong number of digits for that country; check the number."
        )
    if possible == ValidationResult.INVALID_COUNTRY_CODE:
        raise InvalidNumber(f"'{raw}' starts with a country code that does not exist.")
    # The type is UNKNOWN exactly when is_valid_number is false; asking once saves the
    # second metadata match on the hot path.
    kind = number_kind(number)
    if kind == PhoneNumberType.UNKNOWN:
        _refuse_invalid(raw, number)
    if kind not in _MOBILE_CAPABLE:
        what = "a landline" if kind == PhoneNumberType.FIXED_LINE else "not a mobile number"
        raise InvalidNumber(f"'{raw}' is {what} and cannot receive SMS; enter a mobile number.")
    return number


# A sender given as bare digits may be an international number without its "+".
_DIGITS = re.compile(r"^\d{6,15}$")


def sender_number(raw: str, default_country_code: str) -> str:
    """The sender in E.164; DomainError says why it is not a number we can answer.

    Providers hand senders as E.164, as digits with the country code but no '+', or in the
    national format; all three are tried, in that order of likelihood for the input.
    """
    raw = raw.strip()
    try:
        return normalise_msisdn(raw, default_country_code or None)
    except DomainError as first:
        if _DIGITS.match(raw):
            try:
                return normalise_msisdn("+" + raw, None)
            except DomainError:
                pass
        raise DomainError(
            f"The sender '{raw}' is not a mobile number that can be answered: {first.message}",
            field="sender",
        ) from None
