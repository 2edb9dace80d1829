"""GSM-7 / UCS-2 detection, segmentation, septet packing and the GSM-7 suggestion."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smsdesk.domain.encoding import (
    Encoding,
    analyse,
    check_text,
    from_gsm7_septets,
    gsm7_suggestion,
    to_gsm7_septets,
)
from smsdesk.domain.errors import InvalidText
from smsdesk.domain.text import forbidden_control, shows_nothing

# The GSM 03.38 tables, written out again here (not imported) so the tests check the module
# against the standard rather than against itself.
BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"  # 0x1B (ESC) is not a character
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
EXTENSION = set("^{}\\[~]|€\f")
NON_GSM = "çÀ`ЖжłŁ你好ñ̃–“”…\t"
EMOJI = "😀👍🎉🚀"

ESC = 0x1B


def reference_units(text: str) -> tuple[Encoding, int]:
    """Encoding and length the simple way: septets for GSM-7, UTF-16 code units otherwise."""
    if all(c in BASIC or c in EXTENSION for c in text):
        return Encoding.GSM7, sum(2 if c in EXTENSION else 1 for c in text)
    return Encoding.UCS2, len(text.encode("utf-16-be")) // 2


def reference_parts(text: str) -> list[str]:
    """Greedy split: fill each part up to its size, never cutting a character in two."""
    encoding, total = reference_units(text)
    gsm = encoding is Encoding.GSM7
    single, part = (160, 153) if gsm else (70, 67)
    if not text:
        return []
    if total <= single:
        return [text]
    parts: list[str] = []
    current, used = "", 0
    for char in text:
        cost = reference_units(char)[1] if gsm else len(char.encode("utf-16-be")) // 2
        if used + cost > part:
            parts.append(current)
            current, used = "", 0
        current += char
        used += cost
    parts.append(current)
    return parts


gsm_char = st.sampled_from(sorted(BASIC)) | st.sampled_from(sorted(EXTENSION))
any_char = (
    st.sampled_from(sorted(BASIC))
    | st.sampled_from(sorted(EXTENSION))
    | st.sampled_from(NON_GSM)
    | st.sampled_from(EMOJI)
    | st.characters(codec="utf-8")
)
gsm_texts = st.text(alphabet=gsm_char, max_size=500)
mixed_texts = st.text(alphabet=any_char, max_size=250)
texts = gsm_texts | mixed_texts

FAST = settings(max_examples=150, deadline=None)


# --- detection ------------------------------------------------------------------------------


def test_plain_text_is_sent_as_gsm7_one_septet_per_character() -> None:
    """Letters, digits and punctuation from the basic table cost one septet each."""
    result = analyse("Hello, your order #123 is ready @ store!")
    assert result.encoding is Encoding.GSM7
    assert result.units == 40
    assert result.ucs2_characters == ()


@pytest.mark.parametrize("char", sorted(EXTENSION))
def test_extension_characters_stay_gsm7_but_cost_two_septets(char: str) -> None:
    """^ { } \\ [ ~ ] | € and form feed keep GSM-7 and each count as two septets."""
    result = analyse(f"a{char}b")
    assert result.encoding is Encoding.GSM7
    assert result.units == 4


@pytest.mark.parametrize("char", ["ç", "`", "Ж", "–", "“", "\t", "😀"])
def test_a_single_non_gsm_character_switches_the_text_to_ucs2(char: str) -> None:
    """One character outside GSM 03.38 makes the whole text UCS-2 and is named as the cause."""
    result = analyse(f"Hello {char} there")
    assert result.encoding is Encoding.UCS2
    assert result.ucs2_characters == (char,)


def test_ucs2_characters_lists_each_offender_once_in_order_of_appearance() -> None:
    """The characters to replace are listed once each, first seen first."""
    assert analyse("Жa😀bЖ“😀").ucs2_characters == ("Ж", "😀", "“")


def test_an_emoji_counts_as_two_utf16_units() -> None:
    """UCS-2 length is in UTF-16 code units, so an astral emoji takes two."""
    assert analyse("😀").units == 2
    assert analyse("a😀b").units == 4


def test_the_empty_text_has_no_parts() -> None:
    """Analysing nothing gives no parts (check_text refuses it separately)."""
    assert analyse("").segments == 0


# --- segment boundaries ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 153 * 2, 2),
        ("a" * (153 * 2 + 1), 3),
        ("a" * 153 * 3, 3),
        ("Ж" * 70, 1),
        ("Ж" * 71, 2),
        ("Ж" * 67 * 2, 2),
        ("Ж" * (67 * 2 + 1), 3),
        ("😀" * 35, 1),
        ("😀" * 35 + "a", 2),
        ("a" * 158 + "€", 1),
        ("a" * 159 + "€", 2),
    ],
)
def test_segment_count_at_the_size_boundaries(text: str, segments: int) -> None:
    """160/153 septets for GSM-7 and 70/67 code units for UCS-2, exactly."""
    assert analyse(text).segments == segments


def test_a_long_gsm_text_splits_into_parts_of_153() -> None:
    """Concatenated GSM-7 parts hold 153 septets each; the last takes the rest."""
    result = analyse("a" * 161)
    assert [len(p) for p in result.parts] == [153, 8]


def test_a_long_ucs2_text_splits_into_parts_of_67() -> None:
    """Concatenated UCS-2 parts hold 67 code units each; the last takes the rest."""
    result = analyse("Ж" * 71)
    assert [len(p) for p in result.parts] == [67, 4]


def test_an_escape_pair_at_the_part_boundary_moves_to_the_next_part() -> None:
    """152 septets + '€' would end the part between ESC and €, so € starts part two."""
    result = analyse("a" * 152 + "€" + "b" * 10)
    assert result.parts == ("a" * 152, "€" + "b" * 10)
    septets = [to_gsm7_septets(p) for p in result.parts]
    assert len(septets[0]) == 152
    assert septets[1][:2] == bytes((ESC, 0x65))


def test_a_surrogate_pair_at_the_part_boundary_moves_to_the_next_part() -> None:
    """66 units + an emoji would cut the surrogate pair, so the emoji starts part two."""
    result = analyse("Ж" * 66 + "😀" + "Ж" * 10)
    assert result.parts == ("Ж" * 66, "😀" + "Ж" * 10)


# --- properties -----------------------------------------------------------------------------


@FAST
@given(texts)
def test_parts_join_back_to_the_original_text(text: str) -> None:
    """Segmentation never drops, adds or reorders a character."""
    assert "".join(analyse(text).parts) == text


@FAST
@given(texts)
def test_no_part_exceeds_its_size(text: str) -> None:
    """A single SMS holds 160/70 units; each part of a concatenated one 153/67."""
    result = analyse(text)
    gsm = result.encoding is Encoding.GSM7
    if gsm:
        sizes = [len(to_gsm7_septets(p)) for p in result.parts]
    else:
        sizes = [len(p.encode("utf-16-be")) // 2 for p in result.parts]
    limit = (160 if gsm else 70) if result.segments == 1 else (153 if gsm else 67)
    assert all(0 < size <= limit for size in sizes)


@FAST
@given(gsm_texts)
def test_no_gsm_part_ends_with_a_lone_escape(text: str) -> None:
    """Each part's septets are complete: an ESC is always followed by its character."""
    for part in analyse(text).parts:
        septets = to_gsm7_septets(part)
        assert not septets.endswith(bytes((ESC,)))
        assert from_gsm7_septets(septets) == part


@FAST
@given(mixed_texts)
def test_no_ucs2_part_splits_a_surrogate_pair(text: str) -> None:
    """Each UCS-2 part is valid UTF-16 on its own."""
    for part in analyse(text).parts:
        assert part.encode("utf-16-be").decode("utf-16-be") == part


@FAST
@given(texts)
def test_encoding_units_and_parts_match_the_reference(text: str) -> None:
    """The module agrees with a plain greedy reference on encoding, length and every part."""
    result = analyse(text)
    assert (result.encoding, result.units) == reference_units(text)
    assert list(result.parts) == reference_parts(text)


# --- check_text -----------------------------------------------------------------------------


def test_check_text_accepts_a_text_of_exactly_the_maximum_segments() -> None:
    """A text that needs exactly max_segments parts goes out whole."""
    text = "a" * 153 * 3
    result = check_text(text, max_segments=3)
    assert result.segments == 3
    assert "".join(result.parts) == text


def test_check_text_refuses_one_segment_too_many_instead_of_truncating() -> None:
    """One part over the maximum is an error that gives both numbers and what to do."""
    with pytest.raises(InvalidText) as info:
        check_text("a" * (153 * 3 + 1), max_segments=3)
    assert info.value.field == "text"
    assert "4 SMS parts" in info.value.message
    assert "at most 3" in info.value.message
    assert "Shorten the text" in info.value.message


def test_check_text_names_the_characters_that_forced_ucs2() -> None:
    """When UCS-2 makes a text too long, the error says which characters to replace."""
    with pytest.raises(InvalidText) as info:
        check_text("Thanks “for” waiting " * 5, max_segments=1)
    assert "UCS-2" in info.value.message
    assert "“" in info.value.message and "”" in info.value.message


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_check_text_refuses_an_empty_text(text: str) -> None:
    """An empty or blank text is refused with a hint to write one."""
    with pytest.raises(InvalidText, match="empty") as info:
        check_text(text, max_segments=10)
    assert info.value.field == "text"


@FAST
@given(texts.filter(str.strip), st.integers(min_value=1, max_value=5))
def test_check_text_either_keeps_the_whole_text_or_refuses(text: str, maximum: int) -> None:
    """Never truncates: it returns every character or raises InvalidText (too long, or a
    control character such as the GSM-7 form feed, or nothing visible)."""
    try:
        result = check_text(text, maximum)
    except InvalidText:
        refused = forbidden_control(text) is not None or shows_nothing(text)
        assert refused or analyse(text).segments > maximum
    else:
        assert "".join(result.parts) == text
        assert result.segments <= maximum


# --- septets --------------------------------------------------------------------------------


def test_septets_use_the_gsm_code_points_and_escape_extension_characters() -> None:
    """'@' is 0x00, 'A' 0x41, and '€' is ESC 0x65."""
    assert to_gsm7_septets("@A€") == bytes((0x00, 0x41, ESC, 0x65))


def test_septets_refuse_a_character_gsm7_cannot_carry() -> None:
    """Encoding a non-GSM character is an error, not a silent '?'."""
    with pytest.raises(ValueError, match="no GSM-7 encoding"):
        to_gsm7_septets("Ж")


def test_an_unknown_escape_decodes_as_the_basic_character() -> None:
    """ESC followed by a code with no extension character falls back to the basic table."""
    assert from_gsm7_septets(bytes((ESC, 0x41))) == "A"


@FAST
@given(gsm_texts)
def test_septets_round_trip(text: str) -> None:
    """Any GSM-7 text encodes to septets and decodes back unchanged."""
    septets = to_gsm7_septets(text)
    assert from_gsm7_septets(septets) == text
    assert len(septets) == analyse(text).units
    assert all(byte < 0x80 for byte in septets)


@FAST
@given(st.binary(max_size=200))
def test_decoding_arbitrary_bytes_never_fails(data: bytes) -> None:
    """Garbage septets from a provider decode to some text rather than crashing."""
    assert isinstance(from_gsm7_septets(data), str)


# --- gsm7_suggestion ------------------------------------------------------------------------


def test_suggestion_turns_a_word_processor_text_into_gsm7() -> None:
    """Smart quotes, dashes, ellipsis and non-breaking spaces become their plain forms."""
    text = "“Hello” – it’s ‘ready’ — see you\u00a0soon…"
    suggestion = gsm7_suggestion(text)
    assert suggestion == "\"Hello\" - it's 'ready' - see you soon..."
    assert analyse(text).encoding is Encoding.UCS2
    assert analyse(suggestion).encoding is Encoding.GSM7


@pytest.mark.parametrize(
    ("typographic", "plain"),
    [
        ("“", '"'),
        ("”", '"'),
        ("„", '"'),
        ("«", '"'),
        ("»", '"'),
        ("‘", "'"),
        ("’", "'"),
        ("‚", "'"),
        ("`", "'"),
        ("´", "'"),
        ("–", "-"),
        ("—", "-"),
        ("−", "-"),
        ("‑", "-"),
        ("…", "..."),
        ("\u00a0", " "),
        ("\u202f", " "),
        ("\t", " "),
    ],
)
def test_suggestion_replaces_each_typographic_character(typographic: str, plain: str) -> None:
    """Each common typographic character has a GSM-7 replacement."""
    assert gsm7_suggestion(f"a{typographic}b") == f"a{plain}b"
    assert analyse(gsm7_suggestion(typographic)).encoding is Encoding.GSM7


def test_suggestion_leaves_characters_without_a_plain_form_alone() -> None:
    """Emoji and other scripts are kept; the text then still needs UCS-2."""
    assert gsm7_suggestion("Привет 😀 “x”") == 'Привет 😀 "x"'


@FAST
@given(gsm_texts)
def test_suggestion_does_not_change_a_gsm7_text(text: str) -> None:
    """A text that is already GSM-7 is suggested unchanged."""
    assert gsm7_suggestion(text) == text


@FAST
@given(texts)
def test_units_are_the_septets_or_utf16_units_the_parts_take(text: str) -> None:
    """The count a one-part text gets without being walked agrees with its encoded size."""
    result = analyse(text)
    if result.encoding is Encoding.GSM7:
        assert result.units == len(to_gsm7_septets(text))
    else:
        assert result.units == len(text.encode("utf-16-be")) // 2
    assert result.segments == (0 if not text else 1) or result.units > (
        160 if result.encoding is Encoding.GSM7 else 70
    )
