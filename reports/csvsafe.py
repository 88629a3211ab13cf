"""CSV cells that spreadsheets will not run: formula-looking text gets a leading apostrophe."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

# Spreadsheets treat a cell starting with one of these as a formula (or strip and re-read it).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# A plain number ("-12.50", "+3", "1e5") is data, not a formula, and is left as it is.
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def guard_cell(value: object) -> str:
    """The cell's text, prefixed with `'` when a spreadsheet would read it as a formula."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_TRIGGERS) and not _NUMBER.match(text):
        return "'" + text
    return text


def write_rows(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A whole CSV document (CRLF line ends, every cell guarded)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([guard_cell(cell) for cell in header])
    for row in rows:
        writer.writerow([guard_cell(cell) for cell in row])
    return buffer.getvalue()
