"""Importing customers from a CSV file (as exported by spreadsheets and other systems).

The file has a header row with a `name` column, one or more number columns (`mobile`, `number`
or `phone`, e.g. `mobile 2`; one cell may hold several numbers separated by `;`) and optionally
`language` and `tags` (separated by `;`; added to the customer's tags, none taken away).
UTF-8 with or without a byte-order mark; `,`, `;` or tab between columns.

Each row is written on its own (a savepoint), so a bad row is reported with its line number and
never stops the import or leaves half a customer behind. A row whose numbers already belong to
a customer updates that customer, so importing the same file twice changes nothing.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import Connection

from smsdesk.customers.checks import check_language, check_name, check_numbers, check_tags
from smsdesk.domain.errors import DomainError
from smsdesk.host import Host
from smsdesk.store import customers as store

ROWS_PER_TRANSACTION = 200
_NUMBER_COLUMN = re.compile(r"^(mobile|number|phone|msisdn|cell)\b|(mobile|phone)")
_NAME_COLUMN = re.compile(r"^(full\s*)?name$|^customer\s*name$")
_LANGUAGE_COLUMN = re.compile(r"^(language|lang)$")
_TAGS_COLUMN = re.compile(r"^(tags?|labels?)$")
_DELIMITERS = (",", ";", "\t")


class CsvFormatError(DomainError):
    """The file as a whole cannot be read: not UTF-8, or no name or number column."""

    field = "file"


@dataclass(frozen=True)
class CsvRow:
    line: int  # the line the row starts on; the header is line 1
    name: str
    numbers: tuple[str, ...]  # as written in the file
    language: str | None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowResult:
    line: int
    status: str  # created, updated or skipped
    customer_id: str | None = None
    reason: str | None = None  # why a row was skipped
    changed: tuple[str, ...] = ()  # what an update changed: name, language, numbers, tags

    def as_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "status": self.status,
            "customer_id": self.customer_id,
            "reason": self.reason,
            "changed": list(self.changed),
        }


@dataclass
class ImportReport:
    rows: list[RowResult] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for row in self.rows if row.status == status)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.count("created"),
            "updated": self.count("updated"),
            "skipped": self.count("skipped"),
            "ignored_columns": self.ignored_columns,
            "rows": [row.as_dict() for row in self.rows],
        }


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvFormatError(
            f"The file is not UTF-8 text (byte {exc.start + 1} cannot be read); "
            "save it as 'CSV UTF-8' and import it again."
        ) from None


def _delimiter(header_line: str) -> str:
    """The delimiter the header uses most; header cells rarely contain any of them."""
    counts = {d: header_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


@dataclass(frozen=True)
class _Columns:
    name: int
    numbers: tuple[int, ...]
    language: int | None
    tags: int | None
    ignored: tuple[str, ...]


def _columns(header: Sequence[str]) -> _Columns:
    names = [" ".join(cell.split()).lower() for cell in header]
    name = next((i for i, h in enumerate(names) if _NAME_COLUMN.match(h)), None)
    numbers = tuple(i for i, h in enumerate(names) if i != name and _NUMBER_COLUMN.search(h))
    language = next((i for i, h in enumerate(names) if _LANGUAGE_COLUMN.match(h)), None)
    tags = next((i for i, h in enumerate(names) if _TAGS_COLUMN.match(h)), None)
    missing = [
        what
        for what, absent in (("'name'", name is None), ("'mobile' (or 'phone')", not numbers))
        if absent
    ]
    if name is None or not numbers:
        raise CsvFormatError(
            f"The header row ({', '.join(header) or 'empty'}) has no {' and no '.join(missing)} "
            "column; the first row must name the columns, e.g. name,mobile,language."
        )
    used = {name, language, tags, *numbers}
    ignored = tuple(header[i] for i in range(len(header)) if i not in used and header[i].strip())
    return _Columns(name, numbers, language, tags, ignored)


def _cell(row: Sequence[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


def parse_csv(text: str) -> tuple[list[CsvRow], list[str]]:
    """The rows of a CSV text and the header cells that were not used; blank rows are left out.

    CsvFormatError if there is no header row with a name and a number column.
    """
    header_line = text.lstrip("\ufeff").split("\n", 1)[0]
    reader = csv.reader(
        io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=_delimiter(header_line)
    )
    header = next(reader, None)
    if header is None:
        raise CsvFormatError("The file is empty; it needs a header row such as name,mobile.")
    columns = _columns(header)
    rows: list[CsvRow] = []
    line = reader.line_num + 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                rows.append(_row(line, cells, columns))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise CsvFormatError(f"Line {line} cannot be read as CSV ({exc}).") from None
    return rows, list(columns.ignored)


def _row(line: int, cells: Sequence[str], columns: _Columns) -> CsvRow:
    numbers = tuple(
        part.strip()
        for index in columns.numbers
        for part in _cell(cells, index).split(";")
        if part.strip()
    )
    language = _cell(cells, columns.language) or None
    tags = tuple(part.strip() for part in _cell(cells, columns.tags).split(";") if part.strip())
    return CsvRow(line, _cell(cells, columns.name), numbers, language, tags)


def _apply_row(
    conn: Connection,
    row: CsvRow,
    default_country_code: str | None,
    default_language: str,
    now: float,
) -> RowResult:
    """Create or update the customer of one row; DomainError says why the row is skipped."""
    name = check_name(row.name)
    numbers = check_numbers(row.numbers, default_country_code, field="mobile")
    language = check_language(row.language) if row.language else None
    tags = check_tags(row.tags)
    found = store.owners(conn, numbers)
    owners = {owner_id for owner_id, _ in found.values()}
    if len(owners) > 1:
        names = ", ".join(sorted({f"'{n}' ({i})" for i, n in found.values()}))
        raise DomainError(f"The numbers belong to different customers: {names}.", field="mobile")
    if not owners:
        customer_id = store.insert_customer(
            conn,
            name=name,
            language=language or default_language,
            numbers=numbers,
            now=now,
            tags=tags,
        )
        return RowResult(row.line, "created", customer_id)
    (customer_id,) = owners
    held = store.tags_of(conn, customer_id)
    more = tuple(dict.fromkeys([*held, *tags])) if set(tags) - set(held) else None
    changes = store.CustomerChanges(name=name, language=language, add_numbers=numbers, tags=more)
    changed = store.update_customer(conn, customer_id, changes, now)
    return RowResult(row.line, "updated", customer_id, changed=tuple(changed))


def import_rows_job(
    rows: Sequence[CsvRow], default_country_code: str | None, default_language: str, now: float
) -> Callable[[Connection], list[RowResult]]:
    """A writer job importing `rows`, each in a savepoint of its own."""

    def job(conn: Connection) -> list[RowResult]:
        results = []
        for row in rows:
            try:
                result = store.in_savepoint(
                    conn,
                    partial(_apply_row, conn, row, default_country_code, default_language, now),
                )
            except DomainError as exc:
                result = RowResult(row.line, "skipped", reason=exc.message)
            except store.NumbersChanged:
                result = RowResult(
                    row.line, "skipped", reason="A number of this row changed meanwhile; retry."
                )
            results.append(result)
        return results

    return job


def _chunks(rows: Sequence[CsvRow], size: int) -> Iterator[Sequence[CsvRow]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def import_customers(
    service: Host,
    data: bytes | str,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> ImportReport:
    """Import a CSV file; `progress(done, total)` is called after each batch of rows."""
    text = decode(data) if isinstance(data, bytes) else data
    rows, ignored = parse_csv(text)
    config = service.settings.load()
    report = ImportReport(ignored_columns=ignored)
    for chunk in _chunks(rows, ROWS_PER_TRANSACTION):
        job = import_rows_job(
            chunk, config.default_country_code or None, config.inbound.language, service.clock()
        )
        report.rows.extend(service.writer.run_sync(job))
        if progress is not None:
            progress(len(report.rows), len(rows))
    return report
