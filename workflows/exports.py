"""Spreadsheet-safe CSV: the one place every CSV export neutralises formula injection.

A cell that starts with = + - @ tab or carriage return is run as a formula by Excel, LibreOffice and
Google Sheets when the file is opened (`=cmd|' /C calc'!A0`, `=HYPERLINK(...)`). Uploaded documents
are data, so they are imported as they are; what a spreadsheet would execute is neutralised when it
leaves as CSV: such a cell is prefixed with a single quote (OWASP "CSV injection"), headers included.

JSONL exports keep the data exactly as imported: they are read by programs, not by spreadsheets,
and a prefixed quote there would corrupt the data.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The cell as a spreadsheet may show it: text that a spreadsheet would run as a formula gets a
    leading ' (numbers, None and other text unchanged)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]


def csv_lines(rows: Iterable[dict[str, Any]], columns: list[str], chunk_rows: int = 500) -> Iterator[str]:
    """Stream rows (dicts) as CSV under one fixed header: a missing key is an empty cell, a key not
    in `columns` is left out. Yields text chunks of about `chunk_rows` rows, header first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(safe_row(columns))
    pending = 0
    for row in rows:
        writer.writerow(safe_row(row.get(c, "") for c in columns))
        pending += 1
        if pending >= chunk_rows:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if buffer.tell():
        yield buffer.getvalue()


def write_csv_rows(rows: Iterable[Iterable[Any]]) -> str:
    """Rows (lists of cells, the first one the header) as CSV text, every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in rows:
        writer.writerow(safe_row(row))
    return buffer.getvalue()
