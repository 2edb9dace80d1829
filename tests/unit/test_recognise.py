"""Recognising inbound SMS: the SMS endpoint code, opt-out and opt-in keywords, senders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdesk.domain.errors import DomainError
from smsdesk.domain.phone import sender_number
from smsdesk.domain.settings import InboundSettings
from smsdesk.inbound.recognise import Kind, recognise, strip_endpoint

OUT, IN = InboundSettings().keyword_sets()


@pytest.mark.parametrize(
    ("text", "content"),
    [
        ("HELP my order 123", "my order 123"),
        ("help my order", "my order"),
        ("Help\nmy order", "my order"),
        ("  HELP   spaced  ", "spaced"),
        ("HELP", ""),
        ("HELP\tTabbed", "Tabbed"),
    ],
)
def test_the_code_is_stripped_when_the_text_starts_with_it(text: str, content: str) -> None:
    assert strip_endpoint(text, "HELP") == content


@pytest.mark.parametrize("text", ["HELPDESK my order", "my order HELP", "HEL P", "", "XHELP"])
def test_a_text_not_starting_with_the_code_as_a_word_is_not_for_us(text: str) -> None:
    assert strip_endpoint(text, "HELP") is None


@given(st.text())
def test_without_a_code_every_text_is_accepted_whole(text: str) -> None:
    assert strip_endpoint(text, "") == text.strip()


@given(code=st.from_regex(r"[A-Za-z0-9]{1,10}", fullmatch=True), rest=st.text())
def test_code_then_whitespace_always_matches_and_leaves_the_rest(code: str, rest: str) -> None:
    assert strip_endpoint(f"{code.lower()} {rest}", code.upper()) == rest.strip()


@pytest.mark.parametrize(
    ("text", "kind", "keyword"),
    [
        ("STOP", Kind.OPT_OUT, "STOP"),
        ("stop", Kind.OPT_OUT, "STOP"),
        ("Stop!", Kind.OPT_OUT, "STOP"),
        ("HELP stop", Kind.OPT_OUT, "STOP"),
        ("afmelden", Kind.OPT_OUT, "AFMELDEN"),
        ("Avmeld.", Kind.OPT_OUT, "AVMELD"),
        ("STOPP", Kind.OPT_OUT, "STOPP"),
        ("abmelden", Kind.OPT_OUT, "ABMELDEN"),
        ("START", Kind.OPT_IN, "START"),
        ("help start", Kind.OPT_IN, "START"),
        ("påmeld", Kind.OPT_IN, "PÅMELD"),
    ],
)
def test_keywords_in_every_default_language(text: str, kind: Kind, keyword: str) -> None:
    found = recognise(text, "HELP", OUT, IN)
    assert (found.kind, found.keyword) == (kind, keyword)


def test_a_keyword_inside_a_sentence_is_an_ordinary_message() -> None:
    found = recognise("HELP please stop the delivery", "HELP", OUT, IN)
    assert (found.kind, found.content) == (Kind.MESSAGE, "please stop the delivery")


def test_an_empty_text_is_invalid() -> None:
    assert recognise(" \n ", "", OUT, IN).kind is Kind.INVALID


@given(st.text())
def test_every_text_gets_exactly_one_verdict(text: str) -> None:
    found = recognise(text, "HELP", OUT, IN)
    if found.kind is Kind.MESSAGE:
        assert strip_endpoint(text, "HELP") == found.content
    if found.kind in (Kind.UNRECOGNISED, Kind.INVALID):
        assert found.reason


@pytest.mark.parametrize(
    ("raw", "number"),
    [
        ("+31612345678", "+31612345678"),
        ("0612345678", "+31612345678"),
        ("31612345678", "+31612345678"),
        ("4791234567", "+4791234567"),
    ],
)
def test_senders_in_every_format_providers_use(raw: str, number: str) -> None:
    assert sender_number(raw, "+31") == number


@pytest.mark.parametrize("raw", ["Vodafone", "", "12", "+999123"])
def test_senders_that_are_not_numbers_are_refused_with_the_reason(raw: str) -> None:
    with pytest.raises(DomainError, match="not a mobile number that can be answered"):
        sender_number(raw, "+31")
