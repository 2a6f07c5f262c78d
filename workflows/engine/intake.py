"""Files to items: CSV, JSONL and XLSX, with a preview, a column mapping and all-or-nothing errors.
(Documents — PDF, scans, images, ZIPs of them, e-invoices — are read by engine/documents.py; which
kind a file is, is decided here, by detect_format.)

Every check runs before anything is stored; a bad file raises IntakeError listing every row at fault
(the first 20, then how many more), so a run is created with all its items or not at all.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.utils.translation import gettext, ngettext

from workflows.documents import archive_problem, is_document_name

FORMATS = {"csv": "csv", "tsv": "csv", "txt": "csv", "jsonl": "jsonl", "ndjson": "jsonl", "xlsx": "xlsx"}
DOCUMENT = "document"  # a PDF, an image, a ZIP of them, an e-invoice: engine/documents.py reads it
MAX_ROWS_LISTED = 20
# XLSX is a zip: refuse archives that inflate beyond this many times the upload cap, or with a part
# that inflates more than XLSX_MAX_RATIO times its compressed size (zip bombs), before inflating any.
# Real sheets compress 5-20 times (200,000 identical rows: 16 times); a deflate bomb about 1,000 times.
XLSX_INFLATE_FACTOR = 20
XLSX_MAX_RATIO = 100
XLSX_RATIO_FROM_BYTES = 1024 * 1024
XLSX_MAX_PARTS = 10_000
# Items and request bodies are JSON: deeper nesting than this is refused before it can exhaust the
# stack of a parser, serialiser or validator (a graph needs about 6 levels, an item a few more).
MAX_JSON_DEPTH = 64
MAX_CELL_CHARS = 1_000_000
WESTERN = ("cp1252", "latin_1", "iso8859_15", "mac_roman")


class IntakeError(ValueError):
    """Why a file or its items cannot be taken, in the language of the request that sent them."""

    def __init__(self, message: str, rows: list[int] | None = None):
        self.message = message
        self.rows = rows or []
        super().__init__(message)


def _rows_text(rows: list[int], noun: str = "row") -> str:
    shown = ", ".join(str(r) for r in rows[:MAX_ROWS_LISTED])
    if len(rows) > MAX_ROWS_LISTED:
        shown = gettext("%(listed)s and %(count)s more") % {"listed": shown, "count": len(rows) - MAX_ROWS_LISTED}
    if noun == "column":
        return ngettext("column %(listed)s", "columns %(listed)s", len(rows)) % {"listed": shown}
    return ngettext("row %(listed)s", "rows %(listed)s", len(rows)) % {"listed": shown}


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return gettext("it contains the NUL character (\\u0000), which text cannot hold")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return gettext("it contains an unpaired surrogate (an escape in \\ud800-\\udfff), which is not valid "
                           "Unicode")
    return None


def json_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why parsed JSON cannot be stored as it is, or None. Iterative: never a RecursionError."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict | list):
            if depth >= max_depth:
                return gettext("it is nested deeper than %(depth)s levels") % {"depth": max_depth}
            if isinstance(current, dict):
                for key, child in current.items():
                    problem = _text_problem(key) if isinstance(key, str) else None
                    if problem:
                        return problem
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in current)
        elif isinstance(current, str):
            problem = _text_problem(current)
            if problem:
                return problem
        elif isinstance(current, float) and not math.isfinite(current):
            return gettext("it holds a number that is not finite (NaN, Infinity or beyond ±1.8e308)")
    return None


def _no_constants(name: str) -> Any:
    raise ValueError(gettext("%(name)s is not a JSON value") % {"name": name})


def json_loads(text: str | bytes) -> Any:
    """json.loads for untrusted input: NaN and Infinity refused, nesting bounded by MAX_JSON_DEPTH,
    text PostgreSQL can store. Raises ValueError (json.JSONDecodeError for malformed JSON)."""
    try:
        value = json.loads(text, parse_constant=_no_constants)
    except RecursionError:
        raise ValueError(gettext("it is nested deeper than %(depth)s levels") % {"depth": MAX_JSON_DEPTH}) from None
    problem = json_problem(value)
    if problem:
        raise ValueError(problem)
    return value


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


def detect_format(filename: str, *, documents: bool = False) -> str:
    """"csv", "jsonl", "xlsx", or DOCUMENT where documents are taken (run uploads), by the extension."""
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension in FORMATS:
        return FORMATS[extension]
    if is_document_name(filename):
        if documents:
            return DOCUMENT
        raise IntakeError(gettext("'%(name)s' is a document, not a CSV, JSONL or XLSX file: documents start runs, "
                                  "but here only data files are taken.") % {"name": filename})
    if documents:
        raise IntakeError(gettext("'%(name)s' is neither a data file (CSV, JSONL, XLSX) nor a document (PDF; PNG, "
                                  "JPEG or TIFF image; a ZIP of them; a FatturaPA XML or P7M e-invoice), by its "
                                  "extension.") % {"name": filename})
    raise IntakeError(gettext("'%(name)s' is not a CSV, JSONL or XLSX file (by its extension).")
                      % {"name": filename})


def decode(data: bytes) -> tuple[str, str]:
    """(text, encoding). UTF-8 (with or without BOM) first; otherwise charset-normalizer's best guess."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="strict"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    head = data[:8192]
    if b"\x00" in head:
        # Mostly-ASCII UTF-16 has a NUL in every other byte; anything else with NULs is binary.
        even, odd = head[0::2].count(0), head[1::2].count(0)
        if max(even, odd) > len(head) // 4 and min(even, odd) < len(head) // 50:
            raise IntakeError(gettext("The file is UTF-16 text without a byte-order mark, so its encoding cannot be "
                                      "known for sure. Save it as UTF-8 CSV (in Excel: 'CSV UTF-8')."))
        raise IntakeError(gettext("The file contains NUL bytes: it is binary, not text. Save it as UTF-8 CSV."))
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
        raise IntakeError(gettext("The file's text encoding cannot be recognised (it may not be text at all). "
                                  "Save it as UTF-8."))
    return str(best), best.encoding


def check_size(data: bytes) -> None:
    cap = settings.ENGINE_UPLOAD_MAX_BYTES
    if len(data) > cap:
        raise IntakeError(gettext("The file is %(size)s MB; the limit is %(limit)s MB. Split it into smaller files.")
                          % {"size": f"{len(data) / 1e6:.1f}", "limit": f"{cap / 1e6:.1f}"})
    if not data.strip():
        raise IntakeError(gettext("The file is empty."))


def _check_rows(count: int) -> None:
    if count > settings.ENGINE_UPLOAD_MAX_ROWS:
        raise IntakeError(gettext("The file has more than %(limit)s rows; split it.")
                          % {"limit": settings.ENGINE_UPLOAD_MAX_ROWS})


def _columns(header: list[Any]) -> list[str]:
    names = [str(h).strip() if h is not None else "" for h in header]
    blank = [i + 1 for i, n in enumerate(names) if not n]
    if blank:
        raise IntakeError(gettext("The header has no name for %(columns)s.") % {"columns": _rows_text(blank, "column")})
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise IntakeError(gettext("The header repeats column names: %(names)s. Each column needs its own name.")
                          % {"names": ", ".join(dupes)})
    return names


DELIMITERS = ",;\t|"  # in order of preference when two split the sample alike
SNIFF_LINES, SNIFF_CHARS = 50, 256 * 1024


def _sample_lines(text: str) -> list[str]:
    """The first lines of a CSV, split where a line ends outside double quotes (a quoted field may
    hold newlines). One pass over at most SNIFF_CHARS characters: linear whatever the text."""
    lines, start, quoted = [], 0, False
    sample = text[:SNIFF_CHARS]
    for i, char in enumerate(sample):
        if char == '"':
            quoted = not quoted
        elif char == "\n" and not quoted:
            lines.append(sample[start:i])
            start = i + 1
            if len(lines) == SNIFF_LINES:
                return lines
    tail = sample[start:]
    return [*lines, tail] if tail.strip() else lines


def _count_outside_quotes(line: str, delimiter: str) -> int:
    # Between quotes, a delimiter is text: the even-numbered pieces of a split on '"' are outside.
    return sum(piece.count(delimiter) for piece in line.split('"')[::2])


def sniff_delimiter(text: str) -> str:
    """The delimiter that splits the header and the most sample lines into the same number of fields.

    csv.Sniffer is not used: its regular expressions are quadratic (64 KB of '",' took 20 s of CPU).
    A header with none of the candidates is one column: then a candidate the sample never holds, so
    commas and semicolons inside the text stay text."""
    lines = [line.rstrip("\r") for line in _sample_lines(text) if line.strip()]
    if not lines:
        return ","
    best, best_score = "", 0
    for delimiter in DELIMITERS:
        fields = _count_outside_quotes(lines[0], delimiter)
        if fields == 0:
            continue
        score = sum(1 for line in lines if _count_outside_quotes(line, delimiter) == fields)
        if score > best_score:
            best, best_score = delimiter, score
    if best:
        return best
    unused = [d for d in DELIMITERS if not any(d in line for line in lines)]
    return unused[0] if unused else ","


def parse_csv(data: bytes) -> Parsed:
    text, encoding = decode(data)
    nul = text.find("\x00")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise IntakeError(gettext("Row %(row)s contains a NUL byte: the file is not plain text from there on. Save "
                                  "it as UTF-8 CSV.") % {"row": line}, [line])
    delimiter = sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows: list[tuple[int, dict[str, Any]]] = []
    ragged: list[int] = []
    try:
        header = next(reader, None)
        if header is None:
            raise IntakeError(gettext("The file is empty."))
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
        raise IntakeError(gettext("The CSV is malformed at row %(row)s: %(error)s. Check its quotes.")
                          % {"row": reader.line_num, "error": exc}, [reader.line_num]) from None
    if ragged:
        raise IntakeError(gettext("%(rows)s: expected %(count)s fields like the header (%(delimiter)s-separated), "
                                  "found a different number.")
                          % {"rows": _rows_text(ragged).capitalize(), "count": len(columns),
                             "delimiter": repr(delimiter)}, ragged)
    return Parsed("csv", columns, rows, encoding=encoding, delimiter=delimiter)


def _json_kind(value: Any) -> str:
    kinds = {list: gettext("an array"), str: gettext("a string"), bool: gettext("true or false"), type(None): "null",
             int: gettext("a number"), float: gettext("a number")}
    return kinds.get(type(value), gettext("not an object"))


def parse_jsonl(data: bytes) -> Parsed:
    text, encoding = decode(data)
    rows: list[tuple[int, dict[str, Any]]] = []
    bad: list[int] = []
    first_error = ""
    invalid: dict[str, list[int]] = {}
    columns: dict[str, None] = {}
    # JSON Lines are separated by \n only: str.splitlines() would also split on U+2028 and other
    # separators that are valid inside a JSON string.
    for line_no, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json_loads(line)
        except json.JSONDecodeError as exc:
            bad.append(line_no)
            first_error = first_error or gettext("row %(row)s: %(error)s at column %(column)s") % {
                "row": line_no, "error": exc.msg, "column": exc.colno}
            continue
        except ValueError as exc:
            invalid.setdefault(str(exc), []).append(line_no)
            continue
        if not isinstance(value, dict):
            bad.append(line_no)
            first_error = first_error or gettext("row %(row)s is %(kind)s") % {"row": line_no,
                                                                               "kind": _json_kind(value)}
            continue
        columns.update(dict.fromkeys(value))
        rows.append((line_no, value))
        _check_rows(len(rows))
    if bad or invalid:
        parts = []
        if bad:
            parts.append(ngettext("%(rows)s is not a JSON object on one line (%(error)s).",
                                  "%(rows)s are not a JSON object on one line (%(error)s).", len(bad))
                         % {"rows": _rows_text(bad).capitalize(), "error": first_error})
        parts += [gettext("%(rows)s: %(reason)s.") % {"rows": _rows_text(lines).capitalize(), "reason": reason}
                  for reason, lines in invalid.items()]
        raise IntakeError(" ".join(parts), sorted({*bad, *(n for lines in invalid.values() for n in lines)}))
    return Parsed("jsonl", list(columns), rows, encoding=encoding)


def _check_archive(archive: zipfile.ZipFile) -> None:
    """Refuse a zip bomb from the sizes the archive declares, before inflating anything. (Python's
    zipfile never inflates a part beyond its declared size: a part that lies fails its CRC check.)"""
    limit = settings.ENGINE_UPLOAD_MAX_BYTES * XLSX_INFLATE_FACTOR
    problem = archive_problem(archive.infolist(), max_parts=XLSX_MAX_PARTS, max_inflated=limit,
                              max_ratio=XLSX_MAX_RATIO, ratio_from=XLSX_RATIO_FROM_BYTES)
    if problem is None:
        return
    if problem.kind == "parts":
        raise IntakeError(gettext("The workbook has %(count)s parts; an XLSX file has a few dozen. Save the sheet as "
                                  "CSV.") % {"count": problem.count})
    if problem.kind == "lies":
        raise IntakeError(gettext("The workbook part '%(part)s' declares %(size)s bytes but packs %(packed)s: the "
                                  "file is damaged or made to exhaust memory, so it is refused before unpacking. "
                                  "Open it in a spreadsheet and save it again, or save it as CSV.")
                          % {"part": problem.part, "size": f"{problem.size:,}", "packed": f"{problem.packed:,}"})
    if problem.kind == "inflated":
        raise IntakeError(gettext("The workbook inflates to %(size)s MB (limit %(limit)s MB): refused as a possible "
                                  "zip bomb. Save the sheet as CSV.")
                          % {"size": f"{problem.inflated / 1e6:.0f}", "limit": f"{limit / 1e6:.0f}"})
    raise IntakeError(gettext("The workbook part '%(part)s' inflates from %(packed)s MB to %(size)s MB "
                              "(%(ratio)s times; real sheets compress less than %(limit)s times): refused as "
                              "a possible zip bomb.")
                      % {"part": problem.part, "packed": f"{problem.packed / 1e6:.2f}",
                         "size": f"{problem.size / 1e6:.0f}", "ratio": problem.ratio, "limit": XLSX_MAX_RATIO})


def _xlsx_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("not finite")
    return value if isinstance(value, int | float | str) else str(value)


def parse_xlsx(data: bytes) -> Parsed:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise IntakeError(gettext("The file is not a valid XLSX workbook: it is not a complete zip archive "
                                  "(truncated, or another kind of file renamed .xlsx).")) from None
    _check_archive(archive)
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds (KeyError, BadZipFile, XML errors) for a bad file
        raise IntakeError(gettext("The workbook cannot be read (%(error)s). Open it in a spreadsheet and save it "
                                  "again, or save it as CSV.")
                          % {"error": f"{exc.__class__.__name__}: {str(exc)[:200]}"}) from None
    rows: list[tuple[int, dict[str, Any]]] = []
    not_finite: list[int] = []
    row_no = 1
    title = ""
    try:
        if not workbook.worksheets:
            raise IntakeError(gettext("The workbook has no sheet."))
        sheet = workbook.worksheets[0]
        title = sheet.title
        # Read-only mode trusts the size the sheet declares: rows past it are silently dropped, and
        # every row is padded to its width (16,384 columns, for a few bytes of XML). Read what is there.
        sheet.reset_dimensions()
        values = sheet.iter_rows(values_only=True)
        header = list(next(values, None) or [])
        # A sheet's declared size often runs past its data (formatted empty columns): trailing
        # empty header cells are not columns.
        while header and (header[-1] is None or (isinstance(header[-1], str) and not header[-1].strip())):
            header.pop()
        if not header:
            raise IntakeError(gettext("The workbook's first sheet is empty."))
        columns = _columns(header)
        width = len(columns)
        for row_no, row in enumerate(values, start=2):
            cells = tuple(row[:width])
            if all(c is None or (isinstance(c, str) and not c.strip()) for c in cells):
                continue
            cells += (None,) * (width - len(cells))
            try:
                rows.append((row_no, {c: _xlsx_value(v) for c, v in zip(columns, cells, strict=True)}))
            except ValueError:
                not_finite.append(row_no)
            _check_rows(len(rows))
    except IntakeError:
        raise
    except Exception as exc:  # a part that fails its CRC, malformed sheet XML, a bad shared string…
        raise IntakeError(gettext("The workbook is damaged near sheet row %(row)s (%(error)s). Open it in a "
                                  "spreadsheet and save it again, or save it as CSV.")
                          % {"row": row_no, "error": f"{exc.__class__.__name__}: {str(exc)[:200]}"}, [row_no]) from None
    finally:
        workbook.close()
    if not_finite:
        raise IntakeError(gettext("%(rows)s: a number is not finite (beyond ±1.8e308).")
                          % {"rows": _rows_text(not_finite).capitalize()}, not_finite)
    return Parsed("xlsx", columns, rows, notes=[f"sheet '{title}'"])


def parse(data: bytes, filename: str) -> Parsed:
    check_size(data)
    kind = detect_format(filename)
    parsed = {"csv": parse_csv, "jsonl": parse_jsonl, "xlsx": parse_xlsx}[kind](data)
    if not parsed.rows:
        raise IntakeError(gettext("The file has a header but no rows."))
    return parsed


def to_items(parsed: Parsed, mapping: dict[str, str] | None,
             required: list[str] | tuple[str, ...] = ("text",)) -> list[dict[str, Any]]:
    """Items from rows: `mapping` is {item field: column}; without one, every column by its name.
    Every required field must be mapped, and non-empty in every row. Columns not mapped travel too,
    under their own names (a mapped field wins a clash): the firm's own ticket id, channel or subject
    reaches the export, so results can be joined back to its records."""
    mapping = dict(mapping or {c: c for c in parsed.columns})
    missing_columns = sorted({col for col in mapping.values() if col not in parsed.columns})
    if missing_columns:
        raise IntakeError(gettext("The file has no column %(missing)s. Its columns are: %(columns)s.")
                          % {"missing": ", ".join(repr(c) for c in missing_columns),
                             "columns": ", ".join(parsed.columns)})
    unmapped = [f for f in required if f not in mapping]
    if unmapped:
        raise IntakeError(ngettext("Map a column to %(fields)s: the workflow's source needs it. Columns: %(columns)s.",
                                   "Map a column to %(fields)s: the workflow's source needs them. Columns: "
                                   "%(columns)s.", len(unmapped))
                          % {"fields": ", ".join(repr(f) for f in unmapped), "columns": ", ".join(parsed.columns)})
    items = []
    empty: dict[str, list[int]] = {}
    mapped = set(mapping.values())
    for row_no, values in parsed.rows:
        for column, value in values.items():
            if isinstance(value, str) and len(value) > MAX_CELL_CHARS:
                raise IntakeError(gettext("Row %(row)s: '%(column)s' is longer than %(limit)s characters.")
                                  % {"row": row_no, "column": column, "limit": MAX_CELL_CHARS}, [row_no])
        item: dict[str, Any] = {c: v for c, v in values.items() if c not in mapped}
        item.update({name: values.get(column) for name, column in mapping.items()})
        for name in required:
            value = item.get(name)
            if value is None or (isinstance(value, str) and not value.strip()):
                empty.setdefault(name, []).append(row_no)
        items.append(item)
    if empty:
        rows = sorted({r for rs in empty.values() for r in rs})
        fields = ", ".join(f"'{n}'" for n in empty)
        raise IntakeError(gettext("%(rows)s: %(fields)s is empty.") % {"rows": _rows_text(rows).capitalize(),
                                                                       "fields": fields}, rows)
    return items


def oversized_fields(items: list[dict[str, Any]], limit: int = MAX_CELL_CHARS) -> list[tuple[int, str]]:
    """(item index, field) of every text value longer than an upload's cell may be, nested values
    included (dotted), so JSON items and REST intake are bounded like files."""
    found: list[tuple[int, str]] = []

    def walk(index: int, value: Any, path: str) -> None:
        if isinstance(value, str):
            if len(value) > limit:
                found.append((index, path))
        elif isinstance(value, dict):
            for key, inner in value.items():
                walk(index, inner, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for position, inner in enumerate(value):
                walk(index, inner, f"{path}[{position}]")

    for index, item in enumerate(items):
        walk(index, item, "")
    return found


def load_items(data: bytes, filename: str, mapping: dict[str, str] | None = None,
               required: list[str] | tuple[str, ...] = ("text",)) -> tuple[Parsed, list[dict[str, Any]]]:
    parsed = parse(data, filename)
    return parsed, to_items(parsed, mapping, required)
