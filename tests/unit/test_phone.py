"""Phone numbers: E.164 normalisation, country codes and the reasons numbers are refused."""

from __future__ import annotations

import re

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from smsdesk.domain import phone
from smsdesk.domain.errors import InvalidNumber
from smsdesk.domain.phone import normalise_msisdn, parse_country_code, region_of

E164 = re.compile(r"^\+[1-9]\d{6,14}$")


def refusal(raw: str, default_cc: str | None = "+31") -> InvalidNumber:
    """The InvalidNumber raised for `raw`."""
    with pytest.raises(InvalidNumber) as info:
        normalise_msisdn(raw, default_cc)
    return info.value


# --- accepted numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "default_cc", "e164"),
    [
        ("06 12345678", "+31", "+31612345678"),
        ("0612345678", "+31", "+31612345678"),
        ("612345678", "+31", "+31612345678"),
        ("0031612345678", None, "+31612345678"),
        ("0031 6 1234 5678", "+47", "+31612345678"),
        ("+31612345678", None, "+31612345678"),
        ("+31 6 1234 5678", "+44", "+31612345678"),
        ("+44 7911 123456", None, "+447911123456"),
        ("07911 123456", "+44", "+447911123456"),
        ("06-12-34-56-78", "+31", "+31612345678"),
        ("(06) 12 34 56 78", "+31", "+31612345678"),
        ("06.12.34.56.78", "+31", "+31612345678"),
        ("06/12345678", "+31", "+31612345678"),
        ("+31 (0)6 1234 5678", None, "+31612345678"),
        ("(+31) 6 1234 5678", None, "+31612345678"),
        ("  +31612345678\n", None, "+31612345678"),
        ("+1 (201) 555-0123", None, "+12015550123"),
        ("(201) 555-0123", "+1", "+12015550123"),
        ("406 12 345", "+47", "+4740612345"),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, default_cc: str | None, e164: str) -> None:
    """National, international and 00-prefixed numbers with separators become E.164."""
    assert normalise_msisdn(raw, default_cc) == e164


def test_an_international_number_ignores_the_default_country_code() -> None:
    """A number with its own country code keeps it whatever the default is."""
    assert normalise_msisdn("+44 7911 123456", "+31") == "+447911123456"


def test_the_default_country_code_may_be_written_without_plus() -> None:
    """'31' and '0031' work as the default country code just like '+31'."""
    assert normalise_msisdn("0612345678", "31") == "+31612345678"
    assert normalise_msisdn("0612345678", "0031") == "+31612345678"


# --- refused numbers ------------------------------------------------------------------------


@pytest.mark.parametrize("default_cc", [None, ""])
def test_a_national_number_without_a_default_country_code_is_refused(
    default_cc: str | None,
) -> None:
    """Without a country code anywhere, the error says so and how to fix it."""
    error = refusal("06 12345678", default_cc)
    assert error.field == "to"
    assert "no country code" in error.message
    assert "default country code" in error.message


@pytest.mark.parametrize("raw", ["", "   "])
def test_an_empty_number_is_refused(raw: str) -> None:
    """An empty recipient is refused with an example of what to enter."""
    error = refusal(raw)
    assert "empty" in error.message
    assert "+31612345678" in error.message


@pytest.mark.parametrize(
    "raw", ["06 CALL ME", "0612345678x", "+31 6 1234 5678 ext 2", "06_12345678"]
)
def test_letters_and_other_symbols_are_refused(raw: str) -> None:
    """Anything but digits, +, spaces and - ( ) . / is refused as not part of a number."""
    assert "not part of a phone number" in refusal(raw).message


@pytest.mark.parametrize(
    ("raw", "default_cc"),
    [("06 1234567", "+31"), ("+31 6 12345", None), ("+44 7911 12345", None), ("+31 6", None)],
)
def test_a_number_that_is_too_short_says_so(raw: str, default_cc: str | None) -> None:
    """A number with digits missing is refused as too short."""
    assert "too short" in refusal(raw, default_cc).message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+31 6 1234 5678 9012", "too long"),
        ("06 123456789", "wrong number of digits"),
        ("+44 7400 1234567", "too long"),
    ],
)
def test_a_number_with_too_many_digits_says_so(raw: str, expected: str) -> None:
    """A number with extra digits is refused because of its length."""
    assert expected in refusal(raw).message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+1 011 555 0123", "is not a valid number in US"),
        ("06 1234567", "is too short for a mobile number in NL"),
        ("+44 7400 12345", "is too short for a mobile number in GB"),
    ],
)
def test_an_invalid_number_names_the_country_it_was_checked_for(raw: str, expected: str) -> None:
    """An invalid number says which country it was checked for, not 'any country'."""
    message = refusal(raw).message
    assert expected in message
    assert "check the digits" in message


@pytest.mark.parametrize("raw", ["020 123 4567", "+31 20 123 4567", "+44 20 7946 0000"])
def test_a_landline_is_refused_because_it_cannot_receive_sms(raw: str) -> None:
    """Fixed-line numbers are refused and the message says why."""
    message = refusal(raw).message
    assert "landline" in message
    assert "cannot receive SMS" in message


def test_a_toll_free_number_is_refused_as_not_mobile() -> None:
    """Service numbers (toll-free, premium) are not mobile and are refused."""
    assert "not a mobile number" in refusal("0800 1234567").message


def test_an_unknown_country_code_is_refused() -> None:
    """A number starting with a country code nobody uses is not a phone number."""
    assert "not a phone number" in refusal("+999 1234567", None).message


def test_an_unusable_default_country_code_is_reported_on_that_field() -> None:
    """A national number with a broken default blames the setting, not the number."""
    with pytest.raises(InvalidNumber) as info:
        normalise_msisdn("06 12345678", "abc")
    assert info.value.field == "default_country_code"


# --- country codes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "code"),
    [("+31", 31), ("31", 31), ("0031", 31), (" +31 ", 31), ("+1", 1), ("+44", 44), ("+358", 358)],
)
def test_country_codes_are_accepted_in_the_usual_spellings(value: str, code: int) -> None:
    """'+31', '31' and '0031' all mean the Netherlands."""
    assert parse_country_code(value) == code


@pytest.mark.parametrize(
    "value", ["+999", "999", "abc", "", "  ", "+", "00", "+0", "+1234", "31a", "+²", "+800"]
)
def test_unknown_country_codes_are_refused_on_the_default_country_code_field(value: str) -> None:
    """Codes no country uses (or that have no national numbers) are refused with an example."""
    with pytest.raises(InvalidNumber) as info:
        parse_country_code(value)
    assert info.value.field == "default_country_code"
    assert "+31" in info.value.message


digit_like = st.sampled_from("+0123456789 ") | st.characters(categories=("Nd", "No"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=8) | st.text(alphabet=digit_like, max_size=5))
def test_parse_country_code_only_ever_raises_invalid_number(value: str) -> None:
    """Any input yields a real country code or a field-tagged InvalidNumber, never a crash."""
    try:
        code = parse_country_code(value)
    except InvalidNumber as error:
        assert error.field == "default_country_code"
    else:
        assert phonenumbers.region_code_for_country_code(code) not in ("ZZ", "001")


# --- regions --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("e164", "region"),
    [
        ("+31612345678", "NL"),
        ("+447400123456", "GB"),
        ("+447911123456", "GG"),
        ("+12015550123", "US"),
    ],
)
def test_region_of_names_the_country_of_a_number(e164: str, region: str) -> None:
    """The ISO region of a normalised number."""
    assert region_of(e164) == region


def test_region_of_garbage_is_none() -> None:
    """Text that is not a number has no region."""
    assert region_of("not a number") is None


# --- properties -----------------------------------------------------------------------------

MOBILE_EXAMPLES = sorted(
    (region, example)
    for region in phonenumbers.SUPPORTED_REGIONS
    if (example := phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)) is not None
)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(MOBILE_EXAMPLES))
def test_a_mobile_number_in_national_format_normalises_with_its_country_code(
    region_example: tuple[str, phonenumbers.PhoneNumber],
) -> None:
    """Every region's example mobile, written nationally, comes back as the same E.164."""
    region, example = region_example
    national = phonenumbers.format_number(example, PhoneNumberFormat.NATIONAL)
    default_cc = f"+{phonenumbers.country_code_for_region(region)}"
    e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    assert normalise_msisdn(national, default_cc) == e164


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(MOBILE_EXAMPLES), st.sampled_from(["+", "00"]))
def test_a_mobile_number_in_international_format_needs_no_default(
    region_example: tuple[str, phonenumbers.PhoneNumber], prefix: str
) -> None:
    """Every region's example mobile, written internationally, normalises without a default."""
    _, example = region_example
    international = phonenumbers.format_number(example, PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(example, PhoneNumberFormat.E164)
    assert normalise_msisdn(prefix + international.removeprefix("+"), None) == e164


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("0123456789+ -()./"), max_size=20) | st.text(max_size=20),
    st.sampled_from([None, "+31", "+1", "+44", "+47"]),
)
def test_any_input_gives_e164_or_a_reasoned_refusal(raw: str, default_cc: str | None) -> None:
    """Normalising arbitrary input returns E.164 or raises InvalidNumber with a message."""
    try:
        e164 = normalise_msisdn(raw, default_cc)
    except InvalidNumber as error:
        assert error.message
    else:
        assert E164.match(e164)
        assert normalise_msisdn(e164, None) == e164


# --- the plain E.164 shortcut gives the general parser's answer ----------------------------

country_codes = st.sampled_from(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE))


@settings(max_examples=400, deadline=None)
@given(country_codes, st.text(alphabet="0123456789", min_size=4, max_size=14))
def test_the_e164_shortcut_parses_as_the_general_parser(code: int, national: str) -> None:
    raw = f"+{code}{national}"
    shortcut = phone._parse_plain_e164(raw)
    if shortcut is not None:
        assert shortcut == phonenumbers.parse(raw, None), raw


def test_every_regions_example_mobile_takes_the_shortcut_with_the_same_answer() -> None:
    taken = 0
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        example = phonenumbers.example_number_for_type(region, PhoneNumberType.MOBILE)
        if example is None:
            continue
        raw = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        shortcut = phone._parse_plain_e164(raw)
        if shortcut is not None:
            taken += 1
            assert shortcut == phonenumbers.parse(raw, None), raw
    assert taken > 200  # nearly every country's mobiles skip the general parser


# --- the number type with patterns compiled once is libphonenumber's -----------------------

EVERY_TYPE_EXAMPLE = sorted(
    (region, kind, example)
    for region in phonenumbers.SUPPORTED_REGIONS
    for kind in phonenumbers.PhoneNumberType.values()
    if (example := phonenumbers.example_number_for_type(region, kind)) is not None
)


def test_the_type_of_every_example_number_is_libphonenumbers() -> None:
    """Each region's example of each type (mobile, landline, toll free, pager ...)."""
    for region, kind, example in EVERY_TYPE_EXAMPLE:
        assert phone.number_kind(example) == phonenumbers.number_type(example), (region, kind)


@settings(max_examples=1500, deadline=None)
@given(country_codes, st.text(alphabet="0123456789", min_size=2, max_size=15))
def test_the_type_of_any_number_is_libphonenumbers(code: int, national: str) -> None:
    """Random digits after every country code: valid or not, of any type."""
    try:
        number = phonenumbers.parse(f"+{code}{national}", None)
    except phonenumbers.NumberParseException:
        return
    assert phone.number_kind(number) == phonenumbers.number_type(number)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from(EVERY_TYPE_EXAMPLE),
    st.integers(min_value=1, max_value=4),
    st.text(alphabet="0123456789", min_size=4, max_size=4),
)
def test_the_type_of_numbers_near_each_example_is_libphonenumbers(
    example: tuple[str, int, phonenumbers.PhoneNumber], changed: int, digits: str
) -> None:
    """An example with its last digits changed: mostly valid numbers of many types."""
    _, _, number = example
    national = str(number.national_number)
    varied = phonenumbers.PhoneNumber(
        country_code=number.country_code,
        national_number=int(national[:-changed] + digits[:changed]),
        italian_leading_zero=number.italian_leading_zero,
        number_of_leading_zeros=number.number_of_leading_zeros,
    )
    assert phone.number_kind(varied) == phonenumbers.number_type(varied)
