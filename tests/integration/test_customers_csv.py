"""Importing customers from CSV: spreadsheet dialects, per-row results, re-import updates."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from smsdesk.cli import app
from smsdesk.customers.csv_import import CsvFormatError, parse_csv
from tests.support.harness import Harness

ADA = "+31612345678"
BOB = "+31623456789"
CY = "+31634567890"


async def _import(h: Harness, data: bytes) -> dict[str, Any]:
    response = await h.client.post(
        "/api/v1/customers/import",
        content=data,
        headers={**h.headers, "Content-Type": "text/csv; charset=utf-8"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _all(h: Harness) -> list[dict[str, Any]]:
    customers: list[dict[str, Any]] = (await h.get("/api/v1/customers")).json()["customers"]
    return sorted(customers, key=lambda c: str(c["name"]))


async def test_excel_style_file_with_bom_and_semicolons(any_db_harness: Harness) -> None:
    """A BOM, `;` between columns, local numbers, two number columns and a list in one cell."""
    h = any_db_harness
    await h.configure(default_country_code="+31")
    data = (
        "\ufeffName;Mobile;Mobile 2;Language\r\n"
        "Ada Lovelace;06 1234 5678;;nl\r\n"
        '"Bob; the builder";"0623456789; 0634567890";+447400123456;\r\n'
    ).encode()
    report = await _import(h, data)
    assert (report["created"], report["updated"], report["skipped"]) == (2, 0, 0)
    assert [r["line"] for r in report["rows"]] == [2, 3]
    ada, bob = await _all(h)
    assert (ada["name"], ada["numbers"], ada["language"]) == ("Ada Lovelace", [ADA], "nl")
    assert bob["name"] == "Bob; the builder" and bob["language"] == "en"
    assert sorted(bob["numbers"]) == sorted([BOB, CY, "+447400123456"])


async def test_a_bad_row_is_reported_and_the_others_are_imported(harness: Harness) -> None:
    """A bad number on line 3 is skipped with its line and reason; lines 2 and 4 import."""
    h = harness
    await h.configure(default_country_code="+31")
    data = b"name,phone\nAda,0612345678\nBroken,12345\nCy,0634567890\n"
    report = await _import(h, data)
    assert (report["created"], report["skipped"]) == (2, 1)
    skipped = [r for r in report["rows"] if r["status"] == "skipped"]
    assert [r["line"] for r in skipped] == [3]
    assert "12345" in skipped[0]["reason"]
    assert [c["name"] for c in await _all(h)] == ["Ada", "Cy"]


async def test_reimport_updates_by_number_instead_of_duplicating(any_db_harness: Harness) -> None:
    h = any_db_harness
    await h.configure(default_country_code="+31")
    first = await _import(h, b"name,mobile\nAda,0612345678\nBob,0623456789\n")
    assert first["created"] == 2
    again = await _import(
        h, b"name,mobile,language\nAda Lovelace,+31612345678,nl\nBob,0623456789,\n"
    )
    assert (again["created"], again["updated"], again["skipped"]) == (0, 2, 0)
    assert again["rows"][0]["changed"] == ["name", "language"] and again["rows"][1]["changed"] == []
    ada, bob = await _all(h)
    assert (ada["name"], ada["language"], bob["name"]) == ("Ada Lovelace", "nl", "Bob")
    assert ada["id"] == first["rows"][0]["customer_id"]


async def test_each_row_is_all_or_nothing(harness: Harness) -> None:
    """A row that cannot be imported whole leaves nothing behind."""
    h = harness
    await h.configure(default_country_code="+31")
    await _import(h, b"name,mobile\nAda,0612345678\nBob,0623456789\n")
    report = await _import(
        h,
        b"name,mobile,language\n"
        b"Cy,0634567890,not a language\n"  # valid number, bad language
        b"Merged,0612345678;0623456789,\n",  # numbers of two different customers
    )
    assert [r["status"] for r in report["rows"]] == ["skipped", "skipped"]
    assert "different customers" in report["rows"][1]["reason"]
    assert [(c["name"], c["numbers"]) for c in await _all(h)] == [("Ada", [ADA]), ("Bob", [BOB])]


async def test_import_as_a_form_upload_and_bad_files(harness: Harness) -> None:
    """Browsers send a file field; a file without the needed columns is refused as a whole."""
    h = harness
    response = await h.client.post(
        "/api/v1/customers/import",
        files={"file": ("customers.csv", b"name,mobile\nAda,+31612345678\n", "text/csv")},
        headers=h.headers,
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 1
    missing = await h.client.post(
        "/api/v1/customers/import", content=b"name,email\nAda,a@example.com\n", headers=h.headers
    )
    assert missing.status_code == 422
    assert "'mobile'" in missing.json()["error"]["message"]
    latin1 = await h.client.post(
        "/api/v1/customers/import",
        content="name,mobile\nJosé,+31612345678\n".encode("latin-1"),
        headers=h.headers,
    )
    assert latin1.status_code == 422 and "UTF-8" in latin1.json()["error"]["message"]


def test_cli_import_shows_a_summary_and_the_skipped_lines(tmp_path: Path) -> None:
    run = CliRunner(env={"SMSDESK_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})
    assert run.invoke(app, ["settings", "set", "default_country_code=+31"]).exit_code == 0
    file = tmp_path / "customers.csv"
    file.write_text("name;mobile\nAda;0612345678\nBroken;12\n", encoding="utf-8-sig")
    result = run.invoke(app, ["customers", "import", str(file)])
    assert result.exit_code == 1
    assert "1 created, 0 updated, 1 skipped" in result.stdout
    assert "line 3" in result.stderr
    file.write_text("name;mobile\nAda L.;0612345678\n")
    result = run.invoke(app, ["customers", "import", str(file)])
    assert result.exit_code == 0 and "0 created, 1 updated, 0 skipped" in result.stdout
    listed = run.invoke(app, ["customers", "list"]).stdout
    assert "Ada L." in listed and listed.count(ADA) == 1


_cell_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff"), max_size=20
)
_number = st.from_regex(r"\+?[0-9 ]{6,14}", fullmatch=True).filter(lambda s: s.strip() != "")


@given(
    rows=st.lists(
        st.tuples(_cell_text.filter(lambda s: s.strip() != ""), st.lists(_number, min_size=1)),
        max_size=8,
    ),
    delimiter=st.sampled_from([",", ";", "\t"]),
    bom=st.booleans(),
    crlf=st.booleans(),
)
def test_parser_reads_back_what_a_spreadsheet_writes(
    rows: list[tuple[str, list[str]]], delimiter: str, bom: bool, crlf: bool
) -> None:
    """Any names (quotes, delimiters, non-ASCII) and numbers survive a CSV round trip."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(["name", "mobile"])
    for name, numbers in rows:
        writer.writerow([name, ";".join(numbers)])
    text = ("\ufeff" if bom else "") + buffer.getvalue()
    parsed, ignored = parse_csv(text)
    assert ignored == []
    assert [(r.name, r.numbers) for r in parsed] == [
        (name.strip(), tuple(n.strip() for n in numbers)) for name, numbers in rows
    ]
    assert [r.line for r in parsed] == list(range(2, len(rows) + 2))


@pytest.mark.parametrize(
    "text",
    ["", "mobile\n+31612345678\n", "name\nAda\n", "naam,telefoonnummer\nAda,0612345678\n"],
)
def test_parser_refuses_files_without_name_and_number_columns(text: str) -> None:
    with pytest.raises(CsvFormatError):
        parse_csv(text)


def test_rows_are_numbered_by_the_line_they_start_on() -> None:
    """A quoted cell spanning lines does not throw the reported line numbers off."""
    rows, _ = parse_csv('name,mobile\n"Ada\nLovelace",1\n\nBob,2\n')
    assert [(r.line, r.name) for r in rows] == [(2, "Ada\nLovelace"), (5, "Bob")]
