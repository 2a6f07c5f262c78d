"""Documents as items: PDFs, scans and photos, ZIPs of them, FatturaPA e-invoices. Pure: no Django.

    read_documents(data, filename, limits, pages_per_document=0) -> [Document]   # intake (web process)
    document_text(original, pages, ocr_pages, ocr)                  -> str        # workers, OCR included

A PDF page's text layer is read at intake (pypdf); a page without one, and every image, is marked for
OCR and read by a worker (pdfium renders the page, PP-OCR reads it): the web process never opens an
inference session. Each bad file raises DocumentError naming the file and what is wrong with it
(encrypted, damaged, too many pages, pixels or bytes, a zip or PDF bomb). Originals are kept
content-addressed (store.py).
"""

from __future__ import annotations

from .archive import ArchiveProblem, archive_problem
from .base import DOCUMENT_FIELDS, OCR_PAGES, Document, DocumentError, Limits, Page
from .read import EXTENSIONS, document_text, is_document_name, read_documents

__all__ = ["DOCUMENT_FIELDS", "EXTENSIONS", "OCR_PAGES", "ArchiveProblem", "Document", "DocumentError", "Limits",
           "Page", "archive_problem", "document_text", "is_document_name", "read_documents"]
