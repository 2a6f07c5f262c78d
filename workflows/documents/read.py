"""The dispatcher: a file (or a ZIP of files) to documents, by its extension; and, in the workers,
a document's text with the pages that had no text layer read by OCR.

One document per file, or per range of pages (`pages_per_document`: 1 for one per page, N for every N
pages). The whole upload shares one page budget, so a ZIP of many files is bounded like one big file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workflows.graph.text import _

from . import fatturapa
from .archive import members
from .base import PDF, Document, DocumentError, Limits, Page, clean_text, join_pages
from .drawing import DrawingBudget
from .images import frames, read_image
from .pdf import is_pdf, page_text_layers, read_pdf, render_pages

PDF_EXTENSIONS = {"pdf"}
IMAGE_EXTENSIONS = {"png", "jpg", "jpeg", "tif", "tiff"}
ZIP_EXTENSIONS = {"zip"}
INVOICE_EXTENSIONS = {"xml", "p7m"}
EXTENSIONS = PDF_EXTENSIONS | IMAGE_EXTENSIONS | ZIP_EXTENSIONS | INVOICE_EXTENSIONS
INVOICE_TYPES = {"xml": "application/xml", "p7m": "application/pkcs7-mime"}


def extension(filename: str) -> str:
    return filename.rsplit(".", 1)[-1].lower() if "." in filename else ""


def is_document_name(filename: str) -> bool:
    return extension(filename) in EXTENSIONS


class PageBudget:
    """The pages of one upload, all its files together, against limits.max_pages (and what reading
    its PDFs' pages goes through, against limits.max_page_content: `drawing`)."""

    def __init__(self, limits: Limits):
        self.limit, self.used = limits.max_pages, 0
        self.drawing = DrawingBudget(limits)

    def __call__(self, count: int, name: str) -> None:
        self.used += count
        if self.used > self.limit:
            raise DocumentError(_("With '%(name)s' the upload has more than %(limit)s pages: split it into smaller "
                                  "uploads.", name=name, limit=self.limit))


def read_documents(data: bytes, filename: str, limits: Limits | None = None, *,
                   pages_per_document: int = 0) -> list[Document]:
    """Every document in the file, all read or none (DocumentError names the file and the reason)."""
    limits = limits or Limits()
    budget = PageBudget(limits)
    if extension(filename) in ZIP_EXTENSIONS:
        documents = []
        for member, content in members(data, filename, limits):
            kind = extension(member)
            if kind in ZIP_EXTENSIONS:
                raise DocumentError(_("'%(member)s' is a ZIP inside '%(name)s': put every document in one ZIP.",
                                      member=member, name=filename))
            if kind not in EXTENSIONS:
                raise DocumentError(_("'%(member)s' in '%(name)s' is not a PDF, an image (PNG, JPEG, TIFF) or an "
                                      "e-invoice (XML, P7M): take it out of the ZIP.", member=member, name=filename))
            documents += _read_file(content, member, limits, budget, pages_per_document)
    else:
        documents = _read_file(data, filename, limits, budget, pages_per_document)
    for document in documents:
        if len(document.text) > limits.max_text:
            raise DocumentError(_("'%(name)s' has more than %(limit)s characters of text in one document: choose "
                                  "fewer pages per document.", name=document.file_name, limit=f"{limits.max_text:,}"))
    return documents


def _read_file(data: bytes, name: str, limits: Limits, budget: PageBudget, per: int) -> list[Document]:
    kind = extension(name)
    if not data.strip():
        raise DocumentError(_("'%(name)s' is empty.", name=name))
    if len(data) > limits.max_bytes:
        raise DocumentError(_("'%(name)s' is %(size)s MB; the limit for one file is %(limit)s MB.", name=name,
                              size=f"{len(data) / 1e6:.1f}", limit=f"{limits.max_bytes / 1e6:.1f}"))
    if kind in INVOICE_EXTENSIONS:
        return _invoices(data, name, budget)
    if kind in PDF_EXTENSIONS:
        content_type, pages = PDF, read_pdf(data, name, limits, budget, budget.drawing)
    else:
        content_type, pages = read_image(data, name, limits, budget)
    chunks = [pages[i : i + per] for i in range(0, len(pages), per)] if per > 0 else [pages]
    return [Document(name, content_type, data, len(pages), chunk) for chunk in chunks]


def _invoices(data: bytes, name: str, budget: PageBudget) -> list[Document]:
    """FatturaPA e-invoices (fatturapa.py): one document per invoice body, its fields beside the text."""
    if not fatturapa.is_fatturapa(data, name):
        raise DocumentError(_("'%(name)s' is not a FatturaPA e-invoice: only e-invoices are taken as XML or P7M "
                              "files.", name=name))
    try:
        invoices = fatturapa.read_fatturapa(data, name)
    except ValueError as exc:
        raise DocumentError(getattr(exc, "message", None) or str(exc)) from None
    budget(len(invoices), name)
    content_type = INVOICE_TYPES[extension(name)]
    return [Document(name, content_type, data, 1, [Page(1, clean_text(str(invoice.get("text") or "")))],
                     fields={k: v for k, v in invoice.items() if k != "text"}) for invoice in invoices]


def document_text(data: bytes, numbers: list[int], ocr_pages: list[int], ocr: Callable[[Any], str],
                  limits: Limits | None = None) -> str:
    """A document's text, pages in order: each page's text layer, or what `ocr` reads of the pages in
    `ocr_pages` (rendered by pdfium, or an image's frames). Workers only."""
    limits = limits or Limits()
    todo = sorted(set(ocr_pages) & set(numbers))
    if is_pdf(data):
        layers = page_text_layers(data, [n for n in numbers if n not in todo], limits)
        images = render_pages(data, todo, limits)
    else:
        layers, images = {}, frames(data, todo, limits)
    read = {number: clean_text(ocr(image)) for number, image in images}
    return join_pages(read[n] if n in read else layers.get(n, "") for n in numbers)
