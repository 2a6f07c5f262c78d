"""What a worker does with a document's pages that have no text layer: pdfium renders them, the
packaged PP-OCR reads them, and the text comes back with every page in its place."""

from __future__ import annotations

import io

import pytest

from tests.documents.files import image_bytes, scan, scanned_pdf, text_pdf
from workflows.documents import Limits, document_text, read_documents

pytestmark = pytest.mark.slow
COMPLAINT = ["Gentile cliente, la fattura 4471", "risulta pagata due volte"]


@pytest.fixture(scope="module")
def read_page():
    pytest.importorskip("rapidocr")
    from workflows.runtimes.ocr import OcrRuntime

    runtime = OcrRuntime()
    return lambda image: runtime.read_image(image, upright=True)["text"]


def mixed_pdf() -> bytes:
    """Page 1 typed (a text layer), page 2 a scan: what a firm sends after signing a letter by hand."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for part in (text_pdf(["Oggetto: reclamo per doppio addebito sul conto"]), scanned_pdf([COMPLAINT])):
        writer.append(PdfReader(io.BytesIO(part)))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_scanned_page_is_read_in_its_place_beside_a_typed_one(read_page):
    data = mixed_pdf()
    [document] = read_documents(data, "reclamo.pdf")
    assert document.ocr_pages == [2] and document.text == "Oggetto: reclamo per doppio addebito sul conto"
    text = document_text(data, [1, 2], document.ocr_pages, read_page, Limits())
    first, second = text.split("\n\n")
    assert first == "Oggetto: reclamo per doppio addebito sul conto"
    assert "fattura 4471" in second and "pagata due volte" in second


def test_an_image_is_read_with_short_lines_the_right_way_up(read_page):
    """The angle classifier turned "uno due tre quattro" over; pages known upright skip it."""
    data = image_bytes(scan(["uno due tre quattro"]), "PNG")
    assert document_text(data, [1], [1], read_page) == "uno due tre quattro"


def test_a_huge_page_is_rendered_within_the_pixel_bound():
    from tests.documents.files import pdf_file
    from workflows.documents.pdf import render_pages

    giant = pdf_file([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                      b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] >>"])  # 200 × 200 inches
    [(number, image)] = list(render_pages(giant, [1], Limits(max_pixels=4_000_000)))
    assert number == 1 and image.size[0] * image.size[1] <= 4_000_000 and image.size[0] > 1900


def nested_patterns(depth: int = 3, step: float = 0.01) -> bytes:
    """1.3 KB: a page filled with a tiling pattern whose cell is filled with another, `depth` deep, each
    cell `step` points wide. pdfium draws it cell by cell: at 150 dpi, 0.02 pt took 14 s, 0.01 pt ~1 min,
    and a 2,000-page file of them would hold a worker for a day. The drawing budget cannot see it (the
    page draws one rectangle)."""
    from tests.documents.files import pdf_file, stream

    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
               b"/Resources << /Pattern << /P0 5 0 R >> >> >>",
               stream(b"/Pattern cs /P0 scn 0 0 595 842 re f", compress=False)]
    for level in range(depth):
        size = step * (depth - level) * 4
        inner = level < depth - 1
        cell = b"/Pattern cs /P scn 0 0 %f %f re f" % (size, size) if inner else b"0 0 %f %f re f" % (size / 2,
                                                                                                     size / 2)
        resources = b"/Resources << /Pattern << /P %d 0 R >> >>" % (6 + level) if inner else b"/Resources << >>"
        objects.append(stream(cell, compress=False, extra=b"/Type /Pattern /PatternType 1 /PaintType 1 "
                              b"/TilingType 1 /BBox [0 0 %f %f] /XStep %f /YStep %f %s"
                              % (size, size, step, step, resources)))
    return pdf_file(objects)


def test_a_page_that_takes_too_long_to_draw_is_refused_and_the_worker_goes_on():
    import time

    from workflows.documents import DocumentError
    from workflows.documents.pdf import render_pages

    started = time.monotonic()
    with pytest.raises(DocumentError) as refused:
        list(render_pages(nested_patterns(), [1], Limits(render_seconds=2)))
    assert "page 1" in refused.value.message and "2 s" in refused.value.message
    assert time.monotonic() - started < 20  # the drawing was stopped, not waited for (~1 min)
    # The same process draws the next document as ever.
    [(number, image)] = list(render_pages(scanned_pdf([COMPLAINT]), [1], Limits()))
    assert number == 1 and image.size[0] > 1000


def test_a_page_that_needs_too_much_memory_to_draw_is_refused():
    from tests.documents.files import pdf_file
    from workflows.documents import DocumentError
    from workflows.documents.pdf import render_pages

    page = pdf_file([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                     b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 2000 2000] >>"])
    # 40 M pixels in grey need 40 MB besides pdfium itself: not within a 20 MB allowance on top.
    with pytest.raises(DocumentError) as refused:
        list(render_pages(page, [1], Limits(render_memory_mb=20, render_dpi=300)))
    assert "memory" in refused.value.message and "page 1" in refused.value.message
