"""Reading a mailing's CSV file as spreadsheets save it: any common encoding and delimiter."""

from __future__ import annotations

import pytest

from smsdesk.mailings.sources import CsvFormatError, pasted, read_csv

ROWS = "Mobile;Voornaam;Stad\n+31612345678;Zoë;Den Haag\n+31687654321;Jürgen;Köln\n"


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (ROWS.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + ROWS.encode("utf-8"), "utf-8-sig"),
        (ROWS.encode("utf-16"), "utf-16"),  # with a byte-order mark
        (ROWS.encode("utf-16-le"), "utf-16-le"),
        (ROWS.encode("utf-16-be"), "utf-16-be"),
        (ROWS.encode("cp1252"), "cp1252"),
    ],
)
def test_every_common_encoding_gives_the_same_rows(encoded: bytes, encoding: str) -> None:
    """Accented names survive whatever encoding the spreadsheet chose."""
    source = read_csv(encoded)
    assert source.encoding == encoding
    rows = list(source.rows())
    assert [(r.line, r.number, dict(r.variables)) for r in rows] == [
        (2, "+31612345678", {"voornaam": "Zoë", "stad": "Den Haag"}),
        (3, "+31687654321", {"voornaam": "Jürgen", "stad": "Köln"}),
    ]


def test_bytes_cp1252_leaves_undefined_are_read_as_latin_1() -> None:
    """A file with a byte Windows-1252 does not define still reads, as Latin-1."""
    source = read_csv("number,note\n+31612345678,a\x81b\n".encode("latin-1"))
    assert source.encoding == "latin-1"
    assert [dict(r.variables) for r in source.rows()] == [{"note": "a\x81b"}]


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_comma_semicolon_and_tab_are_detected(delimiter: str) -> None:
    """The header's delimiter splits the rows; a quoted cell keeps its delimiter."""
    text = delimiter.join(["Phone number", "First name"]) + "\n"
    text += delimiter.join(["+31612345678", '"Smith, Ada; Jr"']) + "\n"
    source = read_csv(text.encode())
    assert source.delimiter == delimiter
    (row,) = source.rows()
    assert row.number == "+31612345678"
    assert dict(row.variables) == {"first_name": "Smith, Ada; Jr"}


def test_blank_lines_are_skipped_and_lines_counted_from_the_header() -> None:
    """Each row's line is the file's line (the header is line 1), blank lines in between."""
    source = read_csv(b"mobile\n+31612345678\n\n0612\n")
    assert [(r.line, r.number) for r in source.rows()] == [(2, "+31612345678"), (4, "0612")]


def test_a_file_without_a_header_has_its_numbers_first() -> None:
    source = read_csv(b"+31612345678,Ada\n+31687654321,Bob\n")
    assert not source.has_header
    assert [(r.line, r.number, dict(r.variables)) for r in source.rows()] == [
        (1, "+31612345678", {"column_2": "Ada"}),
        (2, "+31687654321", {"column_2": "Bob"}),
    ]


def test_a_file_without_a_number_column_is_refused() -> None:
    with pytest.raises(CsvFormatError, match="no number column"):
        read_csv(b"name,city\nAda,Delft\n")
    with pytest.raises(CsvFormatError, match="empty"):
        read_csv(b"")


def test_pasted_numbers_may_be_on_lines_or_separated_by_commas() -> None:
    assert [r.number for r in pasted("+31612345678, 0612345679\n\n+31687654321;")] == [
        "+31612345678",
        "0612345679",
        "+31687654321",
    ]
