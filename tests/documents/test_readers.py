"""The pure document readers (workflows/documents/) on real files made here: text layers, scans marked
for OCR, splitting, ZIPs, and every kind of bad file refused with the file's name and the reason."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.documents.files import image_bytes, pdf_file, scan, scanned_pdf, stream, text_pdf, tiff, zip_of
from workflows.documents import DocumentError, Limits, is_document_name, read_documents
from workflows.documents.base import JPEG, PDF, PNG, TIFF

INVOICE = "Fattura numero 118 del 12 marzo 2025\nImporto totale 1.234,56 euro"


def refused(data: bytes, name: str, limits: Limits | None = None, **options) -> str:
    with pytest.raises(DocumentError) as exc:
        read_documents(data, name, limits, **options)
    return str(exc.value)


def test_a_text_layer_is_read_page_by_page():
    [document] = read_documents(text_pdf([INVOICE, "Seconda pagina: saldo dovuto entro il 30 aprile"]), "fattura.pdf")
    assert document.content_type == PDF and document.file_pages == 2 and not document.ocr_pages
    item = document.item("ab" * 32)
    assert item == {"text": INVOICE + "\n\nSeconda pagina: saldo dovuto entro il 30 aprile", "file_name": "fattura.pdf",
                    "pages": 2, "original": "ab" * 32}


def test_a_scanned_pdf_is_marked_for_ocr_and_split_as_asked():
    data = scanned_pdf([["Gentile cliente"], ["Seconda pagina"], ["Terza pagina"]])
    [whole] = read_documents(data, "scan.pdf")
    assert whole.text == "" and whole.ocr_pages == [1, 2, 3] and whole.item("0" * 64)["ocr_pages"] == [1, 2, 3]
    per_page = read_documents(data, "scan.pdf", pages_per_document=1)
    assert [(d.item("0" * 64)["page_from"], d.item("0" * 64)["page_to"], d.ocr_pages) for d in per_page] == [
        (1, 1, [1]), (2, 2, [2]), (3, 3, [3])]
    pairs = read_documents(data, "scan.pdf", pages_per_document=2)
    assert [d.ocr_pages for d in pairs] == [[1, 2], [3]] and all(d.data is data for d in pairs)


def test_a_page_with_a_picture_and_a_stamped_line_is_read_by_ocr():
    """A scan whose tool stamped "Pagina 1 di 1 - protocollo 2025/118" as text: the text layer is the stamp,
    not the letter, so the page goes to OCR; a page of real text beside a logo does not."""
    picture = image_bytes(scan(["x"], size=(60, 60)), "JPEG")
    image = stream(picture, compress=False, extra=b" /Type /XObject /Subtype /Image /Width 60 /Height 60 "
                                                  b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /DCTDecode")

    def page_with(text: str) -> bytes:
        content = b"q 500 0 0 700 50 50 cm /Im1 Do Q BT /F1 9 Tf 60 30 Td (" + text.encode() + b") Tj ET"
        return pdf_file([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [5 0 R] /Count 1 >>",
                         b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", image,
                         b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> "
                         b"/XObject << /Im1 4 0 R >> >> /Contents 6 0 R >>", stream(content)])

    [stamped] = read_documents(page_with("Pagina 1 di 1 - protocollo 2025/118"), "stamped.pdf")
    assert stamped.ocr_pages == [1]
    [letter] = read_documents(page_with("Gentile cliente, " * 20), "letter.pdf")
    assert letter.ocr_pages == [] and letter.text.startswith("Gentile cliente")


def test_images_and_tiff_pages():
    [png] = read_documents(image_bytes(scan(["ciao"]), "PNG"), "foto.png")
    [jpeg] = read_documents(image_bytes(scan(["ciao"], mode="RGB"), "JPEG"), "foto.JPG")
    [pages] = read_documents(tiff([["uno"], ["due"], ["tre"]]), "fax.tif")
    assert (png.content_type, jpeg.content_type, pages.content_type) == (PNG, JPEG, TIFF)
    assert png.ocr_pages == [1] and pages.ocr_pages == [1, 2, 3] and pages.file_pages == 3


def test_a_zip_of_documents_skips_what_an_archiver_adds():
    letter, scanned = text_pdf([INVOICE]), scanned_pdf([["Reclamo"]])
    archive = zip_of({"fatture/a.pdf": letter, "__MACOSX/fatture/._a.pdf": b"\x00\x05\x16\x07",
                      "fatture/.DS_Store": b"x", "scansioni/b.pdf": scanned,
                      "foto.png": image_bytes(scan(["ciao"]), "PNG")})
    documents = read_documents(archive, "posta.zip")
    assert [(d.file_name, d.ocr_pages) for d in documents] == [("fatture/a.pdf", []), ("scansioni/b.pdf", [1]),
                                                               ("foto.png", [1])]
    assert documents[0].data == letter and documents[1].data == scanned


def test_document_names():
    assert all(is_document_name(n) for n in ("a.pdf", "B.PDF", "x.tiff", "y.jpeg", "z.zip", "f.xml", "f.xml.p7m"))
    assert not any(is_document_name(n) for n in ("a.csv", "b.xlsx", "noextension", "c.docx"))


# --- bad files: each refused with its name and the reason -----------------------------------------


def test_a_password_protected_pdf_is_refused():
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(612, 792)
    writer.encrypt(user_password="segreto", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    assert "'riservato.pdf' is protected by a password" in refused(out.getvalue(), "riservato.pdf")


def test_a_pdf_encrypted_with_an_empty_password_is_read():
    """Permissions-only encryption (no password to open) is common in invoices from billing software."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(text_pdf([INVOICE]))))
    writer.encrypt(user_password="", owner_password="proprietario", algorithm="AES-128")
    out = io.BytesIO()
    writer.write(out)
    [document] = read_documents(out.getvalue(), "permessi.pdf")
    assert document.text == INVOICE


@pytest.mark.parametrize(("data", "said"), [
    (b"text,lang\nciao,it\n", "'x.pdf' is not a PDF: it does not start like one"),
    (b"%PDF-1.7\n" + bytes(range(256)) * 8, "'x.pdf' is not a readable PDF"),
    (text_pdf([INVOICE])[:300], "'x.pdf' is not a readable PDF"),
])
def test_a_damaged_pdf_is_refused(data, said):
    assert said in refused(data, "x.pdf")


def test_the_page_budget_covers_the_whole_upload():
    five = text_pdf([f"Pagina {i} " * 5 for i in range(5)])
    assert "With 'lungo.pdf' the upload has more than 4 pages" in refused(five, "lungo.pdf", Limits(max_pages=4))
    archive = zip_of({"a.pdf": five, "b.pdf": five})
    assert "With 'b.pdf' the upload has more than 8 pages" in refused(archive, "due.zip", Limits(max_pages=8))


def test_a_pdf_declaring_a_million_pages_is_refused_before_its_tree_is_walked():
    data = pdf_file([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1000000 >>",
                     b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>"])
    assert "more than 2000 pages" in refused(data, "bomba.pdf")


def test_a_deeply_nested_pdf_is_refused_as_a_bomb():
    deep = b"[" * 50_000 + b"]" * 50_000
    data = pdf_file([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                     b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Nest " + deep + b" >>"])
    said = refused(data, "profondo.pdf")
    assert "'profondo.pdf'" in said and "bomb" in said


def test_page_contents_inflating_past_the_limit_are_refused():
    content = stream(b"0 0 m " * 100_000)  # 0.6 MB of drawing, a few KB packed
    pages = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R >>"
    data = pdf_file([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>",
                     pages, pages, content])
    said = refused(data, "gonfio.pdf", Limits(max_inflated=1_000_000))
    assert "The pages of 'gonfio.pdf' inflate to more than 1 MB by page 2" in said
    # One stream past the bound is stopped by pypdf while it inflates, before it is all in memory.
    said = refused(data, "gonfio.pdf", Limits(max_inflated=500_000))
    assert "'gonfio.pdf' is built to exhaust a reader (LimitReachedError" in said and "PDF bomb" in said


def test_too_many_pixels_and_decompression_bombs():
    big = image_bytes(scan(["x"], size=(5000, 4000)), "PNG")
    assert "'grande.png' (page 1) is 5000 × 4000 pixels, 20 megapixels; the limit is 10" in refused(
        big, "grande.png", Limits(max_pixels=10_000_000))
    bomb = _png_header(100_000, 100_000)
    said = refused(bomb, "bomba.png")
    assert "'bomba.png'" in said and "decompression bomb" in said


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width × height pixels and holds a few bytes of them."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def test_damaged_and_unsupported_images():
    truncated = image_bytes(scan(["ciao"], mode="RGB"), "JPEG")
    assert "'mezza.jpg' is damaged at page 1" in refused(truncated[: len(truncated) // 2], "mezza.jpg")
    assert "'finta.png' is not an image that can be read" in refused(b"not an image at all" * 10, "finta.png")
    gif = image_bytes(scan(["ciao"]).convert("P"), "GIF")
    assert "'anim.png' is a GIF image: upload PNG, JPEG or TIFF" in refused(gif, "anim.png")


def test_zip_refusals():
    letter = text_pdf([INVOICE])
    assert "'dentro.zip' is a ZIP inside 'fuori.zip'" in refused(zip_of({"dentro.zip": zip_of({"a.pdf": letter})}),
                                                                 "fuori.zip")
    assert "'nota.docx' in 'misto.zip' is not a PDF, an image" in refused(zip_of({"a.pdf": letter,
                                                                                "nota.docx": b"PK"}), "misto.zip")
    assert "'rotto.zip' is not a complete ZIP archive" in refused(zip_of({"a.pdf": letter})[:40], "rotto.zip")
    assert "'vuoto.zip' holds no file" in refused(zip_of({"__MACOSX/._x": b"x"}), "vuoto.zip")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("scan.pdf", b"\x00" * 50_000_000)
    said = refused(bomb.getvalue(), "bomba.zip")
    assert "'scan.pdf' in 'bomba.zip' inflates from 0.05 MB to 50 MB" in said and "zip bomb" in said
    assert "'a.pdf' in 'chiuso.zip' is encrypted" in refused(encrypted_member(zip_of({"a.pdf": letter})), "chiuso.zip")


def encrypted_member(archive: bytes) -> bytes:
    """The archive with its members flagged as encrypted (zipfile cannot write encrypted members): the
    flag is bit 0 of the general-purpose flags, in the local and the central headers alike."""
    data = bytearray(archive)
    for signature, offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = data.find(signature)
        while at >= 0:
            data[at + offset] |= 0x1
            at = data.find(signature, at + 4)
    return bytes(data)


def test_too_much_text_in_one_document_asks_for_a_split():
    data = text_pdf(["parola " * 300] * 3)
    said = refused(data, "lungo.pdf", Limits(max_text=3000))
    assert "'lungo.pdf' has more than 3,000 characters of text in one document" in said
    assert len(read_documents(data, "lungo.pdf", Limits(max_text=3000), pages_per_document=1)) == 3


def test_an_empty_member_names_itself():
    assert "'vuoto.pdf' is empty" in refused(zip_of({"vuoto.pdf": b""}), "posta.zip")
