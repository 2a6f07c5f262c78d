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
