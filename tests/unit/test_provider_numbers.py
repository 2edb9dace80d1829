"""Numbers in providers' callbacks: every way of writing one number gives the same E.164."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from smsdesk.providers.numbers import from_provider


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+4799887766", "+4799887766"),
        ("004799887766", "+4799887766"),
        ("4799887766", "+4799887766"),
        ("+47 998 87 766", "+4799887766"),
        ("447700900999", "+447700900999"),
        ("2333", "2333"),  # a short code has no country code to add
        ("60777", "60777"),
        ("0612345678", "0612345678"),  # a national number neither
        ("NO-2333", "NO-2333"),
        ("Info", "Info"),
        (" Shop Name ", "Shop Name"),
    ],
)
def test_numbers_become_e164_and_the_rest_stays(raw: str, expected: str) -> None:
    assert from_provider(raw) == expected


def test_what_counts_as_a_short_code_is_the_providers_choice() -> None:
    assert from_provider("12345678") == "+12345678"
    assert from_provider("12345678", short_code_digits=8) == "12345678"


@given(st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True), st.sampled_from(["+", "00", ""]))
def test_any_full_number_comes_out_the_same_whatever_its_prefix(digits: str, prefix: str) -> None:
    assert from_provider(prefix + digits) == f"+{digits}"
