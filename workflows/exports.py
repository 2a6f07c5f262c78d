"""Exports of a run's results (CSV and JSONL), and spreadsheet-safe CSV: the one place every CSV
export neutralises formula injection.

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
import json
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

from django.http import Http404, StreamingHttpResponse

from workflows.engine.results import result_rows
from workflows.models import Run

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


def flat_row(data: dict[str, Any], columns: list[str] | None = None) -> dict[str, Any]:
    """An item as one flat row: nested values as JSON text, chosen columns only when given."""
    row: dict[str, Any] = {}
    for key, value in data.items():
        if columns and key not in columns:
            continue
        row[key] = json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, dict | list) else value
    if columns:
        row = {c: row.get(c, "") for c in columns}
    return row


def csv_chunks(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """Rows as CSV under one header that names every column of every row. Items differ in their
    fields (a JSONL upload, route branches), so the rows are spooled once (to disk past 8 MB) while
    the columns are collected; cells are neutralised against formula injection (below)."""
    columns: dict[str, None] = {}
    with tempfile.SpooledTemporaryFile(max_size=8 * 2**20, mode="w+", encoding="utf-8", newline="\n") as spool:
        for row in rows:
            flat = flat_row(row)
            columns.update(dict.fromkeys(flat))
            spool.write(json.dumps(flat, default=str) + "\n")  # ASCII: any text survives the round trip
        spool.seek(0)
        yield from csv_lines((json.loads(line) for line in spool), list(columns))


def export_response(run: Run, fmt: str, node: str | None) -> StreamingHttpResponse:
    """The run's results as CSV (spreadsheet-safe, see above) or JSONL (the data as it
    is: JSONL is read by programs, so nothing is prefixed)."""
    if fmt not in {"csv", "jsonl"}:
        raise Http404("Export as csv or jsonl.")
    if node is not None and node not in {n.get("id") for n in run.version.graph.get("nodes", [])}:
        # Only a node of the run's graph: the name goes into the file name (a response header).
        raise Http404(f"Run {run.pk} has no node '{node[:64]}' to export.")

    def lines() -> Iterator[str]:
        if fmt == "jsonl":
            for row in result_rows(run, node):
                yield json.dumps(row, ensure_ascii=False, default=str) + "\n"
            return
        yield from csv_chunks(result_rows(run, node))

    response = StreamingHttpResponse(lines(),
                                     content_type="text/csv; charset=utf-8" if fmt == "csv" else "application/jsonl")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}{"-" + node if node else ""}.{fmt}"'
    return response
