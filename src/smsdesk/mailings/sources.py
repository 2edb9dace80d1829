"""Where a mailing's recipients come from: an uploaded CSV file or a pasted list of numbers.

A CSV file may be saved by any spreadsheet: UTF-8 with or without a byte-order mark, UTF-16
(with a mark, or without one when every other byte is zero), else Windows-1252 (Latin-1 for the
five bytes Windows-1252 leaves undefined). Columns are separated by comma, semicolon or tab,
whichever the header row uses most. The header names a number column (`mobile`, `number`,
`phone`, `msisdn`, `cell`, or Dutch `nummer`, `telefoon`, `mobiel`); every other column is a
variable the text may use, named by its header in lower case with `_` for spaces
(`First name` -> `{first_name}`). A file whose first cell is already a number has no header:
its first column holds the numbers.

Rows are produced one at a time (`CsvRecipients.rows`), so the caller checks and stores them
in chunks and a large file's rows never all exist at once.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass

from smsdesk.domain.errors import DomainError
from smsdesk.domain.mailing_checks import RecipientInput

_NUMBER_COLUMN = re.compile(
    r"^(mobile|number|phone|msisdn|cell|gsm|nummer|telefoon|mobiel)\b|(mobile|phone|mobiel)"
)
_DELIMITERS = (",", ";", "\t")
_LOOKS_LIKE_NUMBER = re.compile(r"^\+?[\d\s().\-/]{6,}$")
_NOT_A_NAME = re.compile(r"[^a-z0-9_.\-]+")
MAX_CELL = 1000


class CsvFormatError(DomainError):
    """The file as a whole cannot be read: no number column, or no rows."""

    field = "file"


def decode(data: bytes) -> tuple[str, str]:
    """The text of a file and the encoding it was read as."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace"), "utf-16"
    sample = data[:2000]
    if len(sample) >= 4 and sample.count(0) * 3 >= len(sample):
        odd_zeros = sample[1::2].count(0) > sample[0::2].count(0)
        encoding = "utf-16-le" if odd_zeros else "utf-16-be"
        return data.decode(encoding, errors="replace"), encoding
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in _DELIMITERS}
    best = max(_DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def variable_name(header: str) -> str:
    """A column's header as the variable a text names it by."""
    return _NOT_A_NAME.sub("_", " ".join(header.split()).lower()).strip("_")


@dataclass(frozen=True)
class CsvRecipients:
    """A readable file: how it was read, and its rows one at a time."""

    text: str
    encoding: str
    delimiter: str
    number_column: int
    variables: tuple[str, ...]  # one per column; "" for the number column
    has_header: bool

    def rows(self) -> Iterator[RecipientInput]:
        reader = csv.reader(io.StringIO(self.text), delimiter=self.delimiter)
        if self.has_header:
            next(reader, None)
        line = reader.line_num + 1
        for cells in reader:
            start, line = line, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            number = cells[self.number_column] if self.number_column < len(cells) else ""
            variables = {
                name: cells[i].strip()[:MAX_CELL]
                for i, name in enumerate(self.variables)
                if name and i < len(cells) and cells[i].strip()
            }
            yield RecipientInput(start, number.strip()[:100], variables)


def read_csv(data: bytes) -> CsvRecipients:
    """How a CSV file is laid out; CsvFormatError if it has no number column or no rows."""
    text, encoding = decode(data)
    text = text.lstrip("\ufeff")
    first_line = next(iter(text.splitlines()), "")
    if not first_line.strip():
        raise CsvFormatError("The file is empty; upload a CSV file with a number column.")
    delimiter = _delimiter(first_line)
    header = next(csv.reader(io.StringIO(first_line), delimiter=delimiter))
    if header and _LOOKS_LIKE_NUMBER.match(header[0].strip()):
        names = ("", *(f"column_{i + 1}" for i in range(1, len(header))))
        return CsvRecipients(text, encoding, delimiter, 0, names, has_header=False)
    cleaned = [" ".join(cell.split()).lower() for cell in header]
    number = next((i for i, h in enumerate(cleaned) if _NUMBER_COLUMN.search(h)), None)
    if number is None:
        raise CsvFormatError(
            "The file has no number column; name one column 'mobile', 'number' or 'phone' "
            "in the first row."
        )
    variables = tuple("" if i == number else variable_name(h) for i, h in enumerate(header))
    return CsvRecipients(text, encoding, delimiter, number, variables, has_header=True)


_SEPARATORS = re.compile(r"[\n,;\t]+")


def pasted(text: str) -> Iterator[RecipientInput]:
    """Numbers pasted one per line (or separated by commas, semicolons or tabs)."""
    for index, part in enumerate(p for p in _SEPARATORS.split(text) if p.strip()):
        yield RecipientInput(index + 1, part.strip()[:100])
