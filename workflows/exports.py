"""Exports of a run's results (CSV, XLSX and JSONL) for the people and programs that open them,
and spreadsheet-safe cells: the one place every CSV/XLSX export neutralises formula injection.

People open exports in Excel, and Italian Excel reads a CSV with ";" between cells and a decimal
comma, and guesses the encoding wrong without a byte-order mark. So a CSV has two dialects: "it"
(";" and "28,5") and "en" ("," and "28.5"), both UTF-8 with a BOM; the default follows the user's
language and the download offers both. XLSX needs no dialect: numbers are numbers there.

Outputs are flattened into their own columns: extracted fields become `fields.iban`, `fields.date`
(several values joined by "; "), scores `scores.billing`, nested outputs `ocr.lines`; an embedding
(a long list of numbers) stays one JSON cell. Every input column is kept, mapped or not, so a row
can be joined back to the firm's own records.

A cell that starts with = + - @ tab or carriage return is run as a formula by Excel, LibreOffice and
Google Sheets when the file is opened (`=cmd|' /C calc'!A0`, `=HYPERLINK(...)`). Uploaded documents
are data, so they are imported as they are; what a spreadsheet would execute is neutralised when it
leaves as CSV or XLSX: such a cell is prefixed with a single quote (OWASP "CSV injection"), headers
included.

JSONL exports keep the data exactly as imported: they are read by programs, not by spreadsheets,
and a prefixed quote there would corrupt the data.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.http import FileResponse, Http404, StreamingHttpResponse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from workflows.engine import documents
from workflows.engine.results import flatten, result_rows
from workflows.models import Run

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
BOM = "\ufeff"
FORMATS = ("csv", "xlsx", "jsonl")


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    decimal: str


DIALECTS = {"it": Dialect(";", ","), "en": Dialect(",", ".")}


def dialect_for(requested: str | None) -> Dialect:
    """The CSV dialect asked for, else the one of the active language (Italian users get ";")."""
    if requested:
        if requested not in DIALECTS:
            raise Http404(_("Choose the CSV dialect 'it' (; and decimal comma) or 'en' (, and decimal point)."))
        return DIALECTS[requested]
    return DIALECTS["it"] if (get_language() or "").startswith("it") else DIALECTS["en"]


def safe_cell(value: Any) -> Any:
    """The cell as a spreadsheet may show it: text that a spreadsheet would run as a formula gets a
    leading ' (numbers, None and other text unchanged)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]


def csv_cell(value: Any, dialect: Dialect) -> Any:
    """A flat value as CSV text in the dialect: decimal comma for Italian, formulas neutralised."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        # 15 significant digits: every cent of an amount below 10^13, and none of a float's noise
        # (0.1 + 0.2 is written 0.3); outside that range the shortest exact form.
        text = repr(value) if abs(value) >= 1e15 or (value and abs(value) < 1e-4) else f"{value:.15g}"
        return text.replace(".", dialect.decimal)
    return safe_cell(value)


def csv_lines(rows: Iterable[dict[str, Any]], columns: list[str], dialect: Dialect = DIALECTS["en"],
              chunk_rows: int = 500) -> Iterator[str]:
    """Stream flat rows (dicts) as CSV under one fixed header, BOM first: a missing key is an empty
    cell, a key not in `columns` is left out. Yields text chunks of about `chunk_rows` rows."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, delimiter=dialect.delimiter)
    writer.writerow(safe_row(columns))
    pending = 0
    for row in rows:
        writer.writerow([csv_cell(row.get(c), dialect) for c in columns])
        pending += 1
        if pending >= chunk_rows:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if buffer.tell():
        yield buffer.getvalue()


def write_csv_rows(rows: Iterable[Iterable[Any]], dialect: Dialect = DIALECTS["en"]) -> str:
    """Rows (lists of cells, the first one the header) as CSV text with a BOM, every cell neutralised."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = csv.writer(buffer, delimiter=dialect.delimiter)
    for row in rows:
        writer.writerow([csv_cell(v, dialect) for v in row])
    return buffer.getvalue()


def flat_row(data: dict[str, Any], columns: list[str] | None = None) -> dict[str, Any]:
    """An item as one flat row (see flatten), chosen columns only when given."""
    row = flatten(data)
    if columns:
        row = {c: row.get(c, "") for c in columns}
    return row


def spooled_rows(rows: Iterator[dict[str, Any]]) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """Flatten the rows once, collecting every column of every row: items differ in their fields (a
    JSONL upload, route branches, a failed item), so the header is known only at the end. Rows are
    spooled to disk past 8 MB so a large run does not sit in memory."""
    columns: dict[str, None] = {}
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 2**20, mode="w+", encoding="utf-8", newline="\n")
    for row in rows:
        flat = flatten(row)
        columns.update(dict.fromkeys(flat))
        spool.write(json.dumps(flat, default=str) + "\n")  # ASCII: any text survives the round trip
    spool.seek(0)

    def replay() -> Iterator[dict[str, Any]]:
        with spool:
            for line in spool:
                yield json.loads(line)

    return list(columns), replay()


def csv_chunks(rows: Iterator[dict[str, Any]], dialect: Dialect = DIALECTS["en"]) -> Iterator[str]:
    """Rows as CSV under one header that names every column of every row."""
    columns, flat = spooled_rows(rows)
    yield from csv_lines(flat, columns, dialect)


def xlsx_bytes(rows: Iterator[dict[str, Any]]) -> bytes:
    """Rows as one XLSX sheet: numbers stay numbers, text is neutralised like CSV cells (openpyxl
    would otherwise store "=..." as a live formula)."""
    from openpyxl import Workbook  # a large import the web process needs only for this download

    columns, flat = spooled_rows(rows)
    book = Workbook(write_only=True)
    sheet = book.create_sheet(_("Results"))
    sheet.append(safe_row(columns))
    for row in flat:
        cells = []
        for c in columns:
            value = row.get(c)
            if isinstance(value, float) and not math.isfinite(value):
                value = None
            cells.append(safe_cell(value))
        sheet.append(cells)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def export_response(run: Run, fmt: str, node: str | None, dialect: str | None = None) -> StreamingHttpResponse:
    """The run's results as CSV (spreadsheet-safe, in the user's dialect), XLSX, or JSONL (the data
    as it is: JSONL is read by programs, so nothing is prefixed or flattened)."""
    if fmt not in FORMATS:
        raise Http404(_("Export as csv, xlsx or jsonl."))
    if node is not None and node not in {n.get("id") for n in run.version.graph.get("nodes", [])}:
        # Only a node of the run's graph: the name goes into the file name (a response header).
        raise Http404(_("Run %(run)s has no node '%(node)s' to export.") % {"run": run.pk, "node": node[:64]})
    csv_dialect = dialect_for(dialect)
    filename = f'run-{run.pk}{"-" + node if node else ""}.{fmt}'

    def lines() -> Iterator[str | bytes]:
        if fmt == "jsonl":
            for row in result_rows(run, node):
                yield json.dumps(row, ensure_ascii=False, default=str) + "\n"
        elif fmt == "xlsx":
            yield xlsx_bytes(result_rows(run, node))
        else:
            yield from csv_chunks(result_rows(run, node), csv_dialect)

    content_type = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl",
                    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}[fmt]
    response = StreamingHttpResponse(lines(), content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# Types a browser may be told an original is; anything else goes as bytes. Always as an attachment, in a
# sandbox: an uploaded file is never rendered as a page of this site.
SERVED_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/tiff", "application/xml",
                "application/pkcs7-mime"}


def original_response(run: Run, sha256: str) -> FileResponse:
    """The original file of one of the run's documents (the run page and the API): 404 when the run
    took no such file or the store no longer has it."""
    original = documents.original_of(run, sha256)
    if original is None:
        raise Http404(_("This run has no such original file."))
    try:
        handle = documents.original_path(original).open("rb")
    except (FileNotFoundError, LookupError):
        raise Http404(_("The original file is no longer in the store.")) from None
    content_type = original.content_type if original.content_type in SERVED_TYPES else "application/octet-stream"
    response = FileResponse(handle, as_attachment=True, filename=documents.download_name(original),
                            content_type=content_type)
    response["Content-Security-Policy"] = "sandbox"
    response["X-Content-Type-Options"] = "nosniff"
    return response
