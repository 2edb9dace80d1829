"""Control characters and invisible texts: refused going out, replaced and marked coming in."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdesk.domain.encoding import check_text
from smsdesk.domain.errors import InvalidText
from smsdesk.domain.text import (
    REPLACEMENT,
    check_outgoing,
    clean_incoming,
    forbidden_control,
    shows_nothing,
)

FAST = settings(max_examples=300, deadline=None)
ALLOWED_CONTROLS = {"\t", "\n", "\r"}


def is_forbidden(char: str) -> bool:
    """The rule written out again from the standard: Unicode controls (Cc) but TAB, LF, CR."""
    return unicodedata.category(char) == "Cc" and char not in ALLOWED_CONTROLS


# Wide input: every plane, with controls and invisible characters made likely.
wide_text = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.characters(max_codepoint=0xA0),
        st.sampled_from("\u200b\u200c\u200d\u2060\ufeff \t\n\r"),
    ),
    max_size=60,
)


@FAST
@given(wide_text)
def test_no_accepted_text_carries_a_forbidden_control(text: str) -> None:
    try:
        check_text(text, max_segments=100)
    except InvalidText:
        return
    assert not any(is_forbidden(c) for c in text)
    assert not shows_nothing(text)


@FAST
@given(wide_text)
def test_a_refused_control_is_named_with_its_position(text: str) -> None:
    found = forbidden_control(text)
    first = next(((i + 1, c) for i, c in enumerate(text) if is_forbidden(c)), None)
    assert found == first
    if found is not None:
        with pytest.raises(InvalidText, match=f"U\\+{ord(found[1]):04X}.* position {found[0]};"):
            check_outgoing(text)


@FAST
@given(wide_text)
def test_incoming_texts_are_cleaned_and_marked_only_when_changed(text: str) -> None:
    cleaned, altered = clean_incoming(text)
    assert altered == any(is_forbidden(c) for c in text)
    assert not any(is_forbidden(c) for c in cleaned)
    assert len(cleaned) == len(text)
    assert [c for c in cleaned if c != REPLACEMENT] == [
        c for c in text if c != REPLACEMENT and not is_forbidden(c)
    ]


def test_a_nul_in_a_code_is_refused_with_its_name_and_position() -> None:
    with pytest.raises(InvalidText) as info:
        check_text("code\u00001234", max_segments=5)
    assert info.value.field == "text"
    assert "U+0000 (NUL) at position 5" in info.value.message


@pytest.mark.parametrize("text", ["line\none", "tab\there", "crlf\r\nend", "€ [x] ~"])
def test_line_breaks_tabs_and_gsm7_extension_characters_are_kept(text: str) -> None:
    assert "".join(check_text(text, max_segments=5).parts) == text


@pytest.mark.parametrize(
    "text", ["\u200b", "\u200b\u200c\u200d", " \u2060 \ufeff\n", "\u200b\t\u200b"]
)
def test_a_text_of_only_invisible_characters_is_refused(text: str) -> None:
    with pytest.raises(InvalidText, match="shows nothing"):
        check_text(text, max_segments=5)


@pytest.mark.parametrize("text", ["\x01\x02", "\x7f", "\x85"])
def test_a_text_of_only_controls_is_refused(text: str) -> None:
    with pytest.raises(InvalidText, match="control character"):
        check_text(text, max_segments=5)


def test_an_emoji_joined_with_zero_width_joiners_is_kept() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert "".join(check_text(family, max_segments=5).parts) == family
