"""Writes the bad-input corpus in this folder (README.md says what each file is and what it must get).

    .venv/bin/python tests/data/bad/make_corpus.py

Deterministic (fixed zip timestamps), every file well under 1 MB. The files too big to commit (the
1 GB sparse file, a JSONL line over a million characters, bodies over the request limit) are made by
tests/test_bad_corpus.py at test time in tmp_path.
"""

from __future__ import annotations

import io
import pickle
import re
import zipfile
from datetime import datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP = (2025, 3, 12, 9, 0, 0)


def write(name: str, data: bytes) -> None:
    (HERE / name).write_bytes(data)
    print(f"{name:40} {len(data):>8} bytes")


# --- CSV ---------------------------------------------------------------------------------------

def csv_files() -> None:
    write("cp1252_no_declaration.csv",
          "text,lang\n\"Ricevuta di 12,50 € per l'attività svolta a Forlì\",it\n"
          "Il cliente è già passato: perché la fattura non è arrivata?,it\n".encode("cp1252"))
    write("utf16le_no_bom.csv", "text,lang\n\"Hello, invoice 4471\",en\nCiao fattura,it\n".encode("utf-16-le"))
    write("utf8_bom.csv", "\ufefftext,lang\n\"Ciao, fattura 12\",it\nHello,en\n".encode())
    write("ragged_rows.csv", b"text,lang\nfine,en\ntoo,many,cells\nalso fine,it\ntoo few\nlast,en\n")
    write("missing_column.csv", b"body,lang\nHello,en\nCiao,it\n")
    write("headers_only.csv", b"text,lang\n")
    write("empty.csv", b"")
    # A NUL byte after the first 8 KB, where a quick look at the head of the file does not see it.
    rows = "".join(f"ticket number {i} about an invoice,en\n" for i in range(300))
    write("nul_late.csv", ("text,lang\n" + rows + "bad\x00cell,en\n").encode())
    write("unterminated_quote.csv", b'text,lang\nfine,en\n"never closed,en\nmore,it\n')
    # Formula injection: data to import as it is, and to neutralise on a CSV export. The header too.
    write("formula_injection.csv", FORMULA_CSV.encode())
    # An unquoted comma in the text: a reader that drops extra cells files "My invoice" under the label " is wrong".
    write("labelled_extra_cell.csv", b"text,label\nMy invoice, is wrong,billing\nThe app crashes,technical\n")
    write("labelled_cp1252.csv", "text;label;language\nFattura di 12,50 € già pagata;billing;it\n"
          "L'app si blocca all'avvio;technical;it\nMy invoice is wrong;billing;en\n".encode("cp1252"))


FORMULAS = ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(1,1)", "\t=1+1", "\r=1+1", "=HYPERLINK(\"http://evil.example\",\"x\")"]


def _csv(rows: list[list[str]]) -> str:
    import csv

    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


FORMULA_CSV = _csv([["text", "lang", "=1+2"]] + [[f, "en", f"row {i}"] for i, f in enumerate(FORMULAS)])


# --- JSONL -------------------------------------------------------------------------------------

def jsonl_files() -> None:
    write("bad_line_middle.jsonl", b'{"text": "one", "lang": "en"}\n{"text": "two", "lang": "it"}\n'
          b'{"text": "three", "lang": \n{"text": "four", "lang": "en"}\n')
    write("non_object_lines.jsonl", b'{"text": "one", "lang": "en"}\n[1, 2]\n"just a string"\n42\nnull\n')
    write("trailing_garbage.jsonl", b'{"text": "one", "lang": "en"}\n{"text": "two", "lang": "en"} trailing words\n'
          b'{"text": "three", "lang": "it"}\n]]}\n')
    write("deep_nesting.jsonl", b'{"text": "fine", "lang": "en"}\n{"text": "deep", "lang": "en", "x": '
          + b"[" * 100_000 + b"]" * 100_000 + b"}\n")
    write("nan_infinity.jsonl", b'{"text": "a", "lang": "en", "score": NaN}\n'
          b'{"text": "b", "lang": "en", "score": -Infinity}\n'
          b'{"text": "c", "lang": "en", "score": 1e400}\n{"text": "d", "lang": "en", "score": 1.5}\n')
    write("nul_escape.jsonl", b'{"text": "fine", "lang": "en"}\n{"text": "nul \\u0000 inside", "lang": "en"}\n')
    write("lone_surrogate.jsonl", b'{"text": "fine", "lang": "en"}\n{"text": "half a pair \\ud800", "lang": "en"}\n')
    # Valid: U+2028 and U+2029 are allowed raw inside JSON strings; they are not line breaks in JSONL.
    write("u2028_in_string.jsonl",
          '{"text": "first\u2028second\u2029third", "lang": "en"}\n{"text": "ok", "lang": "it"}\n'.encode())
    write("empty.jsonl", b"")


# --- JSON request bodies ---------------------------------------------------------------------

def json_files() -> None:
    # A workflow export document whose node config nests 100,000 arrays: the graph import endpoints.
    write("deep_nesting.json", b'{"format": "cognitive-factory/workflow", "format_version": 1, "name": "Deep", '
          b'"graph": {"nodes": [{"id": "src", "type": "source.upload", "config": {"x": ' + b"[" * 100_000
          + b"]" * 100_000 + b'}, "position": {"x": 0, "y": 0}}], "edges": []}}')
    # REST intake bodies that parse in Python but that PostgreSQL cannot store (jsonb has no NUL
    # character and no Infinity), and one that is not UTF-8.
    write("nul_in_string.json", b'{"items": [{"text": "nul \\u0000 inside", "lang": "en"}]}')
    write("huge_number.json", b'{"items": [{"text": "a number beyond float range", "lang": "en", "amount": 1e400}]}')
    write("not_utf8.json", '{"items": [{"text": "perché è così", "lang": "it"}]}'.encode("latin-1"))


# --- XLSX --------------------------------------------------------------------------------------

def _workbook(rows: list[list]) -> bytes:
    """A workbook of these rows; text is stored as text (openpyxl would store '=…' as a formula)."""
    from openpyxl import Workbook

    book = Workbook()
    for r, row in enumerate(rows, start=1):
        for c, value in enumerate(row, start=1):
            cell = book.active.cell(r, c, value)
            if isinstance(value, str):
                cell.data_type = "s"
    book.properties.created = datetime(*STAMP)
    out = io.BytesIO()
    book.save(out)
    return _restamp(out.getvalue())


def _restamp(data: bytes, replace: dict[str, bytes] | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    """The workbook with fixed timestamps (a reproducible file), some parts replaced."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            body = (replace or {}).get(info.filename, source.read(info.filename))
            if info.filename == "docProps/core.xml":  # openpyxl stamps the time of saving
                body = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>2025-03-12T09:00:00Z", body)
            target.writestr(zipfile.ZipInfo(info.filename, STAMP), body, zipfile.ZIP_DEFLATED)
        for name, body in (extra or {}).items():
            target.writestr(zipfile.ZipInfo(name, STAMP), body, zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _sheet_xml(data: bytes) -> str:
    return zipfile.ZipFile(io.BytesIO(data)).read("xl/worksheets/sheet1.xml").decode()


def xlsx_files() -> None:
    good = _workbook([["text", "lang"], ["Invoice 4471 charged twice", "en"], ["La fattura è sbagliata", "it"]])
    write("not_a_zip.xlsx", b"text,lang\nthis is a CSV file renamed .xlsx,en\n")
    write("truncated.xlsx", good[: len(good) // 2])
    write("empty.xlsx", b"")
    write("headers_only.xlsx", _workbook([["text", "lang"]]))
    write("formula_injection.xlsx", _workbook([["text", "lang"]] + [[f, "en"] for f in FORMULAS]))
    sheet = _sheet_xml(good)
    # Well-formed zip, malformed sheet XML: openpyxl only notices while iterating the rows.
    write("damaged_sheet.xlsx",
          _restamp(good, {"xl/worksheets/sheet1.xml": sheet.replace("</sheetData>", "<row><c>").encode()}))
    # Declares 16,384 columns × 1,048,576 rows; one more row, at the very bottom, has an empty text.
    dims = sheet.split("<dimension ref=\"", 1)[1].split("\"", 1)[0]
    huge = sheet.replace(f'<dimension ref="{dims}"', '<dimension ref="A1:XFD1048576"').replace(
        "</sheetData>", '<row r="1048576"><c r="B1048576" t="inlineStr"><is><t>en</t></is></c></row></sheetData>')
    write("dimension_bomb.xlsx", _restamp(good, {"xl/worksheets/sheet1.xml": huge.encode()}))
    # A number beyond float range: openpyxl reads it as inf, which PostgreSQL's jsonb cannot store.
    inf = sheet.replace("</sheetData>", '<row r="4"><c r="A4" t="inlineStr"><is><t>amount</t></is></c>'
                        '<c r="B4"><v>1e400</v></c>'
                        "</row></sheetData>")
    write("nonfinite_number.xlsx", _restamp(good, {"xl/worksheets/sheet1.xml": inf.encode()}))
    # Declares A1:B3 but holds two more rows: read-only readers trusting the declaration drop them
    # silently. All four data rows must arrive.
    more = sheet.replace("</sheetData>", '<row r="4"><c r="A4" t="inlineStr"><is><t>Fourth ticket</t></is></c>'
                         '<c r="B4" t="inlineStr"><is><t>en</t></is></c></row>'
                         '<row r="5"><c r="A5" t="inlineStr"><is><t>Fifth ticket</t></is></c>'
                         '<c r="B5" t="inlineStr"><is><t>it</t>'
                         "</is></c></row></sheetData>")
    write("understated_dimension.xlsx", _restamp(good, {"xl/worksheets/sheet1.xml": more.encode()}))
    write("zip_bomb.xlsx", _zip_bomb(good, sheet))


def _zip_bomb(good: bytes, sheet: str, inflated: int = 300 * 1024 * 1024) -> bytes:
    """The real workbook whose sheet XML holds 300 MB of blank space between two rows (valid XML that
    a parser would buffer whole) and compresses about 1,000 times."""
    head, tail = sheet.split("</row>", 1)
    source = zipfile.ZipFile(io.BytesIO(good))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                target.writestr(zipfile.ZipInfo(info.filename, STAMP), source.read(info.filename), zipfile.ZIP_DEFLATED)
                continue
            entry = zipfile.ZipInfo(info.filename, STAMP)
            entry.compress_type = zipfile.ZIP_DEFLATED
            with target.open(entry, "w", force_zip64=True) as member:
                member.write((head + "</row>").encode())
                blank = b" " * (8 * 1024 * 1024)
                for _ in range(inflated // len(blank)):
                    member.write(blank)
                member.write(tail.encode())
    return out.getvalue()


# --- ONNX --------------------------------------------------------------------------------------

def onnx_files() -> None:
    import onnx
    from onnx import TensorProto, helper

    def model(nodes: list | None = None, opsets: tuple = (("", 18),), functions: tuple = (),
              initializer: list | None = None):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
        bias = helper.make_tensor("bias", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
        graph = helper.make_graph(nodes or [helper.make_node("Add", ["x", "bias"], ["y"], name="add")], "g", [x], [y],
                                  initializer=[bias] if initializer is None else initializer)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets],
                              functions=list(functions), producer_name="bad-corpus")
        m.ir_version = 9
        return m

    def external(tensor: onnx.TensorProto, location: str) -> onnx.TensorProto:
        for name in ("float_data", "int64_data", "raw_data"):
            tensor.ClearField(name)
        tensor.data_location = TensorProto.EXTERNAL
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", location
        return tensor

    add = helper.make_node("Add", ["x", "bias"], ["y"], name="add")
    write("pickle_renamed.onnx", pickle.dumps({"weights": [1.0, 2.0, 3.0]}, protocol=4))
    checkpoint = io.BytesIO()
    with zipfile.ZipFile(checkpoint, "w") as z:
        z.writestr(zipfile.ZipInfo("archive/data.pkl", STAMP), pickle.dumps([1, 2, 3], protocol=2))
    write("torch_checkpoint.onnx", checkpoint.getvalue())
    write("gguf_renamed.onnx", b"GGUF\x03\x00\x00\x00" + b"\x00" * 64)
    write("custom_domain.onnx",
          model([helper.make_node("Backdoor", ["x", "bias"], ["y"], domain="evil.ops", name="add")],
                opsets=(("", 18), ("evil.ops", 1))).SerializeToString())
    hidden = helper.make_function("pkg.local", "Twice", ["a"], ["b"],
                                  [helper.make_node("Backdoor", ["a"], ["b"], domain="evil.ops")],
                                  [helper.make_opsetid("", 18)])
    write("custom_op_in_function.onnx",
          model([helper.make_node("Twice", ["x"], ["z"], domain="pkg.local", name="twice"), add],
                opsets=(("", 18), ("pkg.local", 1)), functions=(hidden,)).SerializeToString())
    trained = model()
    info = trained.training_info.add()
    info.algorithm.CopyFrom(helper.make_graph([helper.make_node("Backdoor", ["x"], ["q"], domain="evil.ops")],
                                              "algorithm", [], []))
    write("custom_op_in_training_info.onnx", trained.SerializeToString())
    bias = helper.make_tensor("bias", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    write("external_data_dotdot.onnx", model(initializer=[external(bias, "../../etc/passwd")]).SerializeToString())
    indices = external(helper.make_tensor("i", TensorProto.INT64, [1], [0]), "../../../root/.ssh/id_rsa")
    sparse = helper.make_sparse_tensor(helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]), indices, [3])
    write("external_data_in_sparse_attribute.onnx", model(
        [helper.make_node("Constant", [], ["c"], name="const", sparse_value=sparse), add]).SerializeToString())
    huge = helper.make_tensor("bias", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0])
    huge.ClearField("float_data")
    huge.dims[:] = [1 << 40]
    huge.raw_data = b"\x00" * 12
    write("huge_declared_tensor.onnx", model(initializer=[huge]).SerializeToString())
    write("not_protobuf.onnx", bytes(range(256)) * 4)
    write("invalid_graph.onnx", model([helper.make_node("Add", ["x", "undefined_input"], ["y"], name="add")],
                                      initializer=[]).SerializeToString())
    write("empty.onnx", b"")


# --- documents: PDF, images, ZIPs of them ---------------------------------------------------------

def _pdf(objects: list[bytes], trailer: bytes = b"") -> bytes:
    """A PDF of these objects (numbered from 1, the first the catalogue) with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, trailer, xref)
    return bytes(out)


def _stream(data: bytes) -> bytes:
    import zlib

    packed = zlib.compress(data, 9)
    return b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream"


def _pages(count: int, declared: int | None = None, extra: bytes = b"") -> list[bytes]:
    """Catalogue, page tree, a font, one shared content stream and `count` pages (objects 5…)."""
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(count))
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> "
            b"/Contents 4 0 R" + extra + b" >>")
    return [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % (count if declared is None else declared),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
            _stream(b"BT /F1 12 Tf 72 720 Td (Fattura 118 del 12/03/2025, importo 99,00 EUR) Tj ET"),
            *[page] * count]


def _zip(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, STAMP), data, compress_type=method)
    return out.getvalue()


def _png(width: int, height: int, rows: bytes | None = None) -> bytes:
    """A greyscale PNG of width × height, white unless `rows` (filtered scanlines) are given."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    if rows is None:
        line = b"\x00" + b"\xff" * width
        packer = zlib.compressobj(9)
        rows = b"".join(packer.compress(line) for _ in range(height)) + packer.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", rows) + chunk(b"IEND", b""))


def _object_stream_bomb(count: int = 1_000_000_000) -> bytes:
    """The catalogue inside an object stream that declares `count` objects (a reader that believes /N
    allocates for a billion), reached through a cross-reference stream (PDF 1.5)."""
    import struct

    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    body = b"1 0 << /Type /Catalog /Pages 3 0 R >>"
    offsets = {2: len(out)}
    out += b"2 0 obj\n<< /Type /ObjStm /N %d /First 4 /Length %d >>\nstream\n" % (count, len(body)) + body
    out += b"\nendstream\nendobj\n"
    offsets[3] = len(out)
    out += b"3 0 obj\n<< /Type /Pages /Kids [4 0 R] /Count 1 >>\nendobj\n"
    offsets[4] = len(out)
    out += b"4 0 obj\n<< /Type /Page /Parent 3 0 R /MediaBox [0 0 612 792] >>\nendobj\n"
    offsets[5] = len(out)
    rows = [b"\x00" + struct.pack(">IH", 0, 65535), b"\x02" + struct.pack(">IH", 2, 0)]
    rows += [b"\x01" + struct.pack(">IH", offsets[n], 0) for n in (2, 3, 4, 5)]
    table = b"".join(rows)
    out += b"5 0 obj\n<< /Type /XRef /Size 6 /W [1 4 2] /Root 1 0 R /Length %d >>\nstream\n" % len(table) + table
    out += b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % offsets[5]
    return bytes(out)


def document_files() -> None:
    import zlib

    text_layer = _pdf(_pages(1))
    write("text_layer.pdf", text_layer)
    # The standard security handler (RC4, revision 2) with an owner and a user key that no password,
    # the empty one included, opens.
    write("encrypted.pdf", _pdf(_pages(1) + [b"<< /Filter /Standard /V 1 /R 2 /Length 40 /P -44 /O <"
                                             + b"7a" * 32 + b"> /U <" + b"3c" * 32 + b"> >>"],
                                trailer=b"/Encrypt 6 0 R /ID [<0123456789abcdef0123456789abcdef> "
                                        b"<0123456789abcdef0123456789abcdef>] "))
    write("not_a_pdf.pdf", b"text,lang\nCiao, fattura 12,it\n")
    write("damaged.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 8)
    write("empty.pdf", b"")
    # A page tree that declares a million pages; one that declares 1 and holds 2,001 (the cap is 2,000).
    write("page_count_bomb.pdf", _pdf(_pages(1, declared=1_000_000)))
    write("understated_pages.pdf", _pdf(_pages(2001, declared=1)))
    write("object_stream_bomb.pdf", _object_stream_bomb())
    write("deep_nesting.pdf", _pdf(_pages(1, extra=b" /Nest " + b"[" * 50_000 + b"]" * 50_000)))
    # A page whose drawing instructions inflate from 100 KB to 100 MB.
    bomb = _pages(1)
    bomb[3] = _stream(b" " * 100_000_000)
    write("inflation_bomb.pdf", _pdf(bomb))
    write("image_bomb.png", _png(100_000, 100_000, rows=zlib.compress(b"\x00" * 64)))
    write("too_many_pixels.png", _png(8000, 6000))
    jpeg = io.BytesIO()
    from PIL import Image

    Image.new("RGB", (400, 300), (200, 120, 40)).save(jpeg, format="JPEG", quality=90)
    write("truncated.jpg", jpeg.getvalue()[: len(jpeg.getvalue()) // 2])
    write("not_an_image.png", b"<html><body>not an image</body></html>\n")
    sheet = b"\x00" * (310 * 1024 * 1024)
    write("zip_bomb.zip", _zip({"scan.pdf": sheet}))
    write("nested.zip", _zip({"letters.zip": _zip({"a.pdf": text_layer})}))
    write("other_file_in_zip.zip", _zip({"a.pdf": text_layer, "notes.docx": b"PK\x03\x04 not really"}))
    locked = bytearray(_zip({"a.pdf": text_layer}))
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):  # general-purpose flag bit 0: encrypted
        at = locked.find(signature)
        locked[at + offset] |= 0x1
    write("encrypted_member.zip", bytes(locked))


if __name__ == "__main__":
    csv_files()
    jsonl_files()
    json_files()
    xlsx_files()
    onnx_files()
    document_files()
