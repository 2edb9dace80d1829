"""Sender IDs: names of up to 11 characters, numbers of up to 15 digits, and clear refusals."""

from __future__ import annotations

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from smsdesk.domain.errors import InvalidSender
from smsdesk.domain.sender import Sender, SenderKind, validate_sender

NAME_CHARS = string.ascii_letters + string.digits + " -+_&.,"


def refusal(raw: str) -> InvalidSender:
    """The InvalidSender raised for `raw`."""
    with pytest.raises(InvalidSender) as info:
        validate_sender(raw)
    assert info.value.field == "sender"
    return info.value


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "A",
        "Acme",
        "Support",
        "Acme Shop",
        "ACME-Co",
        "Q&A",
        "Shop.nl",
        "Acme_2",
        "007 Agent",
        "A" * 11,
    ],
)
def test_names_providers_accept_are_kept_as_alphanumeric(name: str) -> None:
    """Letters, digits, spaces and - + _ & . , up to 11 characters make a valid name."""
    assert validate_sender(name) == Sender(name, SenderKind.ALPHANUMERIC)


def test_surrounding_whitespace_is_removed() -> None:
    """Spaces typed around a name are not part of it."""
    assert validate_sender("  Support \n") == Sender("Support", SenderKind.ALPHANUMERIC)


def test_a_name_longer_than_11_characters_is_refused_with_the_length() -> None:
    """A 12+ character name says how long it is and what the limit is."""
    message = refusal("Acme Shop Ltd").message
    assert "13 characters" in message
    assert "at most 11" in message


@pytest.mark.parametrize(("name", "shown"), [("Café", "'é'"), ("Shop!", "'!'"), ("A/B", "'/'")])
def test_forbidden_characters_are_named_with_what_to_use_instead(name: str, shown: str) -> None:
    """The error names the offending character and lists the ones that are accepted."""
    message = refusal(name).message
    assert shown in message
    assert "do not accept" in message
    assert "use letters A-Z, digits, spaces" in message


@pytest.mark.parametrize("name", ["-", "+", "...", "1-800", "& _"])
def test_a_name_without_a_letter_is_refused(name: str) -> None:
    """Providers need at least one letter in a name; symbols alone are refused."""
    assert "at least one letter" in refusal(name).message


@pytest.mark.parametrize("raw", ["", "   ", "\t\n"])
def test_an_empty_sender_is_refused_with_what_to_enter(raw: str) -> None:
    """An empty sender explains both accepted forms."""
    message = refusal(raw).message
    assert "11" in message
    assert "15 digits" in message


# --- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "digits"),
    [
        ("4712345678", "4712345678"),
        ("+4712345678", "4712345678"),
        ("+47 123 45 678", "4712345678"),
        ("123 456", "123456"),
        ("12345678901", "12345678901"),
        ("123456789012345", "123456789012345"),
        ("+123456789012345", "123456789012345"),
        ("1234", "1234"),
    ],
)
def test_numbers_of_up_to_15_digits_are_numeric_senders(raw: str, digits: str) -> None:
    """Digits with an optional + and spaces make a numeric sender of just the digits."""
    assert validate_sender(raw) == Sender(digits, SenderKind.NUMERIC)


@pytest.mark.parametrize("raw", ["1234567890123456", "+1234567890123456", "+47 1234 5678 9012 34"])
def test_a_number_longer_than_15_digits_is_refused_with_the_count(raw: str) -> None:
    """More than 15 digits is refused, saying how many there are."""
    message = refusal(raw).message
    assert "16 digits" in message
    assert "at most 15" in message


@pytest.mark.parametrize("raw", ["²³", "+٤٧١٢٣", "１２３"])
def test_non_ascii_digits_are_not_a_number(raw: str) -> None:
    """Superscript, Arabic-Indic or full-width digits are refused, not sent as a number."""
    assert "do not accept" in refusal(raw).message


# --- properties -----------------------------------------------------------------------------

names = st.text(alphabet=st.sampled_from(NAME_CHARS), min_size=1, max_size=11).filter(
    lambda s: s == s.strip() and any(c.isalpha() for c in s)
)


@settings(max_examples=200, deadline=None)
@given(names)
def test_any_name_of_accepted_characters_is_kept_unchanged(name: str) -> None:
    """Any 1-11 character name of accepted characters with a letter is used as typed."""
    assert validate_sender(name) == Sender(name, SenderKind.ALPHANUMERIC)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(string.digits), min_size=1, max_size=15), st.booleans())
def test_any_number_of_up_to_15_digits_is_accepted(digits: str, plus: bool) -> None:
    """1 to 15 ASCII digits, with or without +, are a numeric sender."""
    raw = f"+{digits}" if plus else digits
    assert validate_sender(raw) == Sender(digits, SenderKind.NUMERIC)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(string.digits), min_size=16, max_size=30))
def test_any_number_of_more_than_15_digits_is_refused(digits: str) -> None:
    """16 or more digits are always too long for a numeric sender."""
    assert f"{len(digits)} digits" in refusal(digits).message


@settings(max_examples=200, deadline=None)
@given(names.filter(lambda s: len(s) < 11), st.characters(codec="utf-8"), st.data())
def test_a_forbidden_character_anywhere_is_named(name: str, bad: str, data: st.DataObject) -> None:
    """Inserting any character providers refuse into a valid name gets that character named."""
    assume(bad not in NAME_CHARS and not bad.isspace())
    at = data.draw(st.integers(min_value=0, max_value=len(name)))
    assert repr(bad) in refusal(name[:at] + bad + name[at:]).message


digit_like = st.sampled_from("+0123456789 ") | st.characters(categories=("Nd", "No"))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=20) | st.text(alphabet=digit_like, max_size=16))
def test_any_input_is_a_valid_sender_or_a_sender_error(raw: str) -> None:
    """Arbitrary input yields a sender within the limits or an InvalidSender, never a crash."""
    try:
        sender = validate_sender(raw)
    except InvalidSender as error:
        assert error.message
    else:
        if sender.kind is SenderKind.NUMERIC:
            assert sender.value.isascii() and sender.value.isdigit()
            assert 1 <= len(sender.value) <= 15
        else:
            assert 1 <= len(sender.value) <= 11
            assert set(sender.value) <= set(NAME_CHARS)
