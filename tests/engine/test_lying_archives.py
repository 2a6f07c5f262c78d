"""A ZIP member (an XLSX part, a document in a ZIP) that declares a small size and inflates to a huge
one. Python's zipfile returns no more than the declared size and then fails the CRC check, but
`ZipFile.read` first asks zlib for up to 1 GB in one call: openpyxl reads the workbook's shared
strings and styles that way, so a 30 KB upload held tens of MB (up to 1 GB) before it was refused.
Deflate never makes data much larger than it was, so a member whose packed size exceeds its declared
size by more than deflate's overhead lies: refused from the directory, before anything is inflated.
Memory is measured with tracemalloc (bytes Python allocated), not time."""

from __future__ import annotations

import io
import struct
import tracemalloc
import zipfile

from openpyxl import Workbook

from workflows.engine.documents import read_upload
from workflows.engine.intake import IntakeError, parse

INFLATED = 60 * 1024 * 1024  # what the lying member really holds


def lying_zip(valid: bytes, member: str, declared: int = 100) -> bytes:
    """`valid` with `member` replaced by INFLATED zero bytes, deflated, whose headers declare `declared`."""
    source = zipfile.ZipFile(io.BytesIO(valid))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = b"\0" * INFLATED if info.filename == member else source.read(info.filename)
            target.writestr(info.filename, data)
    data = bytearray(out.getvalue())
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = archive.getinfo(member)
    # The local header's uncompressed size (offset 22) and the central directory's (offset 24).
    struct.pack_into("<I", data, info.header_offset + 22, declared)
    central = data.find(b"PK\x01\x02")
    while central != -1:
        name_length = struct.unpack_from("<H", data, central + 28)[0]
        if data[central + 46: central + 46 + name_length].decode() == member:
            struct.pack_into("<I", data, central + 24, declared)
            break
        central = data.find(b"PK\x01\x02", central + 4)
    assert zipfile.ZipFile(io.BytesIO(bytes(data))).getinfo(member).file_size == declared
    return bytes(data)


def workbook() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["text"])
    sheet.append(["una fattura da pagare"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def peak_mb(call) -> tuple[float, Exception | None]:  # type: ignore[no-untyped-def]
    tracemalloc.start()
    error = None
    try:
        call()
    except Exception as exc:  # the refusal is what we expect
        error = exc
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6, error


def test_an_xlsx_part_that_lies_about_its_size_is_refused_before_it_is_inflated():
    data = lying_zip(workbook(), "xl/styles.xml")
    assert len(data) < 200_000
    peak, error = peak_mb(lambda: parse(data, "fatture.xlsx"))
    assert isinstance(error, IntakeError), error
    assert "xl/styles.xml" in error.message and "declares" in error.message
    assert peak < 20, f"{peak:.0f} MB allocated before the refusal"


def test_a_document_in_a_zip_that_lies_about_its_size_is_refused_before_it_is_inflated():
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("nota.txt", "ciao")
        archive.writestr("fattura.pdf", b"%PDF-1.4 tiny")
    data = lying_zip(inner.getvalue(), "fattura.pdf")
    peak, error = peak_mb(lambda: read_upload(data, "posta.zip"))
    assert isinstance(error, IntakeError), error
    assert "fattura.pdf" in error.message and "declares" in error.message
    assert peak < 20, f"{peak:.0f} MB allocated before the refusal"
