"""Files to items: CSV, JSONL and XLSX, with a preview, a column mapping and all-or-nothing errors.

Every check runs before anything is stored; a bad file raises IntakeError listing every row at fault
(the first 20, then how many more), so a run is created with all its items or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

FORMATS = {"csv": "csv", "tsv": "csv", "txt": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "xlsx": "xlsx"}
MAX_ROWS_LISTED = 20
# XLSX is a zip: refuse archives that inflate beyond this many times the upload cap (zip bombs).
XLSX_INFLATE_FACTOR = 20
MAX_CELL_CHARS = 1_000_000
WESTERN = ("cp1252", "latin_1", "iso8859_15", "mac_roman")


class IntakeError(ValueError):
    def __init__(self, message: str, rows: list[int] | None = None):
        self.message = message
        self.rows = rows or []
        super().__init__(message)


def _rows_text(rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_LISTED])
    more = f" and {len(rows) - MAX_ROWS_LISTED} more" if len(rows) > MAX_ROWS_LISTED else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


@dataclass
class Parsed:
    format: str
    columns: list[str]
    # (row number as the user sees it: the line in a CSV/JSONL, the sheet row in XLSX, values by column)
    rows: list[tuple[int, dict[str, Any]]]
    encoding: str = ""
    delimiter: str = ""
    notes: list[str] = field(default_factory=list)

    def preview(self, count: int = 10) -> dict[str, Any]:
        return {"format": self.format, "encoding": self.encoding, "delimiter": self.delimiter, "columns": self.columns,
                "rows": [values for _, values in self.rows[:count]], "total_rows": len(self.rows)}


def detect_format(filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    try:
        return FORMATS[extension]
    except KeyError:
        raise IntakeError(f"'{filename}' is not a CSV, JSONL or XLSX file (by its extension).") from None


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding). UTF-8 (with or without BOM) first; otherwise charset-normalizer's best guess."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    if b"\x00" in data[:8192]:
        raise IntakeError("The file contains NUL bytes: it is binary or UTF-16 without a byte-order mark. Save it as UTF-8 CSV.")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    best = None
    if matches:
        # Short Western European text decodes equally well as cp1250 and cp1252; our users write
        # Italian and English, so among equally coherent guesses prefer the Western encodings.
        least = min(m.chaos for m in matches)
        close = [m for m in matches if m.chaos <= least + 0.01]
        best = next((m for pref in WESTERN for m in close if m.encoding == pref), close[0])
    if best is None or best.chaos > 0.3:
        raise IntakeError("The file's text encoding cannot be recognised (it may not be text at all). Save it as UTF-8.")
    return str(best), best.encoding


def _check_size(data: bytes) -> None:
    cap = settings.ENGINE_UPLOAD_MAX_BYTES
    if len(data) > cap:
        raise IntakeError(f"The file is {len(data) / 1e6:.1f} MB; the limit is {cap / 1e6:.1f} MB. Split it into smaller files.")
    if not data.strip():
        raise IntakeError("The file is empty.")


def _check_rows(count: int) -> None:
    if count > settings.ENGINE_UPLOAD_MAX_ROWS:
        raise IntakeError(f"The file has more than {settings.ENGINE_UPLOAD_MAX_ROWS} rows; split it.")


def _columns(header: list[Any]) -> list[str]:
    names = [str(h).strip() if h is not None else "" for h in header]
    blank = [i + 1 for i, n in enumerate(names) if not n]
    if blank:
        raise IntakeError(f"The header has no name for column{'s' if len(blank) > 1 else ''} {', '.join(map(str, blank))}.")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise IntakeError(f"The header repeats column names: {', '.join(dupes)}. Each column needs its own name.")
    return names


def parse_csv(data: bytes) -> Parsed:
    text, encoding = decode(data)
    sample = text[:65536]
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, dict[str, Any]]] = []
    ragged: list[int] = []
    try:
        header = next(reader, None)
        if header is None:
            raise IntakeError("The file is empty.")
        columns = _columns(header)
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(columns):
                ragged.append(line)
                continue
            rows.append((line, dict(zip(columns, values, strict=True))))
            _check_rows(len(rows))
    except csv.Error as exc:
        raise IntakeError(f"The CSV is malformed at row {reader.line_num}: {exc}. Check its quotes.", [reader.line_num]) from None
    if ragged:
        raise IntakeError(f"{_rows_text(ragged).capitalize()}: expected {len(columns)} fields like the header "
                          f"({delimiter!r}-separated), found a different number.", ragged)
    return Parsed("csv", columns, rows, encoding=encoding, delimiter=delimiter)


def parse_jsonl(data: bytes) -> Parsed:
    text, encoding = decode(data)
    rows: list[tuple[int, dict[str, Any]]] = []
    bad: list[int] = []
    columns: list[str] = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            bad.append(line_no)
            continue
        if not isinstance(value, dict):
            bad.append(line_no)
            continue
        columns += [k for k in value if k not in columns]
        rows.append((line_no, value))
        _check_rows(len(rows))
    if bad:
        raise IntakeError(f"{_rows_text(bad).capitalize()} {'are' if len(bad) > 1 else 'is'} not a JSON object on one line.", bad)
    return Parsed("jsonl", columns, rows, encoding=encoding)


def parse_xlsx(data: bytes) -> Parsed:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise IntakeError("The file is not a valid XLSX workbook (it is not a zip archive).") from None
    limit = settings.ENGINE_UPLOAD_MAX_BYTES * XLSX_INFLATE_FACTOR
    inflated = sum(info.file_size for info in archive.infolist())
    if inflated > limit:
        raise IntakeError(f"The workbook inflates to {inflated / 1e6:.0f} MB (limit {limit / 1e6:.0f} MB): "
                          "refused as a possible zip bomb. Save the sheet as CSV.")
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:
        raise IntakeError(f"The workbook cannot be read: {exc}") from None
    try:
        sheet = workbook.worksheets[0]
        values = sheet.iter_rows(values_only=True)
        header = next(values, None)
        if header is None:
            raise IntakeError("The workbook's first sheet is empty.")
        columns = _columns(list(header))
        rows: list[tuple[int, dict[str, Any]]] = []
        for row_no, row in enumerate(values, start=2):
            cells = list(row)[: len(columns)]
            if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                continue
            cells += [None] * (len(columns) - len(cells))
            rows.append((row_no, {c: ("" if v is None else v if isinstance(v, int | float | str) else str(v))
                                  for c, v in zip(columns, cells, strict=True)}))
            _check_rows(len(rows))
    finally:
        workbook.close()
    return Parsed("xlsx", columns, rows, notes=[f"sheet '{sheet.title}'"])


def parse(data: bytes, filename: str) -> Parsed:
    _check_size(data)
    kind = detect_format(filename)
    parsed = {"csv": parse_csv, "jsonl": parse_jsonl, "xlsx": parse_xlsx}[kind](data)
    if not parsed.rows:
        raise IntakeError("The file has a header but no rows.")
    return parsed


def to_items(parsed: Parsed, mapping: dict[str, str] | None, required: list[str] | tuple[str, ...] = ("text",)) -> list[dict[str, Any]]:
    """Items from rows: `mapping` is {item field: column}; without one, every column by its name.
    Every required field must be mapped, and non-empty in every row."""
    mapping = dict(mapping or {c: c for c in parsed.columns})
    missing_columns = sorted({col for col in mapping.values() if col not in parsed.columns})
    if missing_columns:
        raise IntakeError(f"The file has no column {', '.join(repr(c) for c in missing_columns)}. "
                          f"Its columns are: {', '.join(parsed.columns)}.")
    unmapped = [f for f in required if f not in mapping]
    if unmapped:
        raise IntakeError(f"Map a column to {', '.join(repr(f) for f in unmapped)}: the workflow's source needs "
                          f"{'them' if len(unmapped) > 1 else 'it'}. Columns: {', '.join(parsed.columns)}.")
    items = []
    empty: dict[str, list[int]] = {}
    for row_no, values in parsed.rows:
        item: dict[str, Any] = {}
        for name, column in mapping.items():
            value = values.get(column)
            if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                raise IntakeError(f"Row {row_no}: '{column}' is longer than {MAX_CELL_CHARS} characters.", [row_no])
            item[name] = value
        for name in required:
            value = item.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                empty.setdefault(name, []).append(row_no)
        items.append(item)
    if empty:
        rows = sorted({r for rs in empty.values() for r in rs})
        fields = ", ".join(f"'{n}'" for n in empty)
        raise IntakeError(f"{_rows_text(rows).capitalize()}: {fields} is empty.", rows)
    return items


def load_items(data: bytes, filename: str, mapping: dict[str, str] | None = None,
               required: list[str] | tuple[str, ...] = ("text",)) -> tuple[Parsed, list[dict[str, Any]]]:
    parsed = parse(data, filename)
    return parsed, to_items(parsed, mapping, required)
