"""What the document readers share: limits, pages, documents and the error they raise.

Pure Python (no Django): the web process reads text layers with it at intake, the workers render and
OCR the pages that have none. Messages are English `Text`s (graph/text.py), translated where shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from workflows.graph.text import Text

PDF, PNG, JPEG, TIFF = "application/pdf", "image/png", "image/jpeg", "image/tiff"
IMAGE_TYPES = {"PNG": PNG, "JPEG": JPEG, "MPO": JPEG, "TIFF": TIFF}
# Item fields a document carries; `ocr_pages` is the worker's to-do list and leaves once it is read.
DOCUMENT_FIELDS = ("text", "file_name", "pages", "original", "page_from", "page_to")
OCR_PAGES = "ocr_pages"
# NUL cannot be stored in PostgreSQL text; a lone surrogate (a broken ToUnicode map) is not UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class DocumentError(ValueError):
    """A file that cannot be taken: `message` names the file and says why and what to do."""

    def __init__(self, message: Text):
        self.message = message
        super().__init__(str(message))


@dataclass(frozen=True)
class Limits:
    """Bounds that keep a hostile file from exhausting the process that reads it."""

    max_bytes: int = 50 * 1024 * 1024  # one file, a ZIP's members included
    max_pages: int = 2_000  # pages (and image frames) of one upload, all its files together
    max_pixels: int = 40_000_000  # one image, one frame, one rendered page (A4 at 600 dpi: 35 M)
    max_inflated: int = 1024 * 1024 * 1024  # a ZIP's members together
    # The drawing instructions text extraction reads, for all the PDFs of an upload together: each page's
    # content and the forms it draws, as often as it draws them (pdf.py: DrawingBudget). Typed text is
    # about 5 KB a page, so 2,000 dense pages fit; pypdf reads 0.4-1 MB a second, so this bounds the
    # reading at about a minute, whatever a small file claims to draw.
    max_page_content: int = 32_000_000
    # ...and one PDF's drawing instructions at most max_ratio times its size, past this floor: pdfium draws
    # 10-20 KB of them a second for OCR, so a file of 2 KB that draws 32 MB would hold a worker for minutes.
    page_content_floor: int = 4_000_000
    max_ratio: int = 100  # a ZIP member inflating more than this many times (from ratio_from bytes on)
    ratio_from: int = 1024 * 1024
    max_members: int = 10_000
    max_text: int = 1_000_000  # characters of one document (an upload's cell has the same bound)
    # Pages rendered for OCR: 12 pt text is 25 px high, which PP-OCR reads as well as at 200 dpi in
    # about half the time (the detector's cost grows with the pixels).
    render_dpi: int = 150
    # Drawing one page for OCR (render.py, in a child process): a typed or scanned page takes well under a
    # second, a pathological one minutes; and the child's memory beyond what it starts with (a 40 M-pixel
    # page in grey is 40 MB, pdfium's working copies a few times that).
    render_seconds: float = 30.0
    render_memory_mb: int = 1024


@dataclass
class Page:
    number: int  # 1-based, in its file
    text: str = ""
    needs_ocr: bool = False


@dataclass
class Document:
    """One item to be: a whole file, or a range of its pages."""

    file_name: str
    content_type: str
    data: bytes  # the file the pages come from, kept as the original
    file_pages: int
    pages: list[Page]
    fields: dict[str, Any] = field(default_factory=dict)  # more item fields (an e-invoice's)

    @property
    def text(self) -> str:
        return join_pages(p.text for p in self.pages)

    @property
    def ocr_pages(self) -> list[int]:
        return [p.number for p in self.pages if p.needs_ocr]

    @property
    def is_part(self) -> bool:
        return len(self.pages) != self.file_pages

    def item(self, original: str) -> dict[str, Any]:
        """The item's fields: text (what the text layer gave; the worker adds the OCR'd pages), the
        file's name, the page count and the original's sha256, the range when the file was split."""
        item: dict[str, Any] = {**self.fields, "text": self.text, "file_name": self.file_name,
                                "pages": len(self.pages), "original": original}
        if self.is_part:
            item["page_from"], item["page_to"] = self.pages[0].number, self.pages[-1].number
        if self.ocr_pages:
            item[OCR_PAGES] = self.ocr_pages
        return item


def join_pages(texts: Any) -> str:
    return "\n\n".join(t for t in texts if t)


def clean_text(text: str) -> str:
    """Text as a table can hold it: without NUL and unpaired surrogates, trailing blanks trimmed."""
    return _UNSTORABLE.sub("", text).strip()


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f}"
