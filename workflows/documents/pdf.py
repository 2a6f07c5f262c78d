"""PDF: the text layer with pypdf (at intake, in the web process), pages rendered with pdfium for OCR
(in the workers only).

Two libraries on purpose. pypdf is pure Python with bounds against hostile files (stream sizes,
page-tree depth, object-stream counts: its Configuration, tightened below) and reads text layers well;
it cannot draw a page. pdfium (Chrome's PDF engine, in the pypdfium2 wheel) draws any page as it looks:
a scan, vector text without a usable font map, a scan with a stamp or a form over it. Taking a page's
embedded image through pypdf instead would miss everything drawn over it, and would need a decoder for
every image filter a scanner may use (JBIG2, CCITT), each of them another parser of hostile input.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

from workflows.graph.text import _

from . import render
from .base import DocumentError, Limits, Page, clean_text
from .drawing import DrawingBudget

PDF_MAGIC = b"%PDF-"
# A page is read by OCR when its text layer has no letter or digit (a scan; text drawn as outlines),
# or when it has a picture and fewer letters than this beside it (a scan with a page number or a
# filing stamp written over it). A short page of text alone ("Seconda pagina") keeps its text layer.
MIN_TEXT_BESIDE_A_PICTURE = 200


def is_pdf(data: bytes) -> bool:
    # The header may follow up to 1 KB of junk (PDF 1.7, annex H).
    return PDF_MAGIC in data[:1024]


def _configuration(limits: Limits) -> dict[str, Any]:
    """pypdf's bounds, per stream, no looser than the whole file's."""
    stream = min(limits.max_inflated, 64 * 1024 * 1024)
    return {"zlib_maximum_output_length": stream, "lzw_maximum_output_length": stream,
            "run_length_maximum_output_length": stream, "brotli_maximum_output_length": stream,
            "jbig2_maximum_output_length": stream, "maximum_declared_stream_length": stream,
            "stream_decoding_work_maximum_length": 4 * stream, "page_tree_maximum_entries": limits.max_pages * 4,
            "jbig2dec_binary": None}  # never run an external decoder on an upload


def _letters(text: str) -> int:
    return sum(1 for c in text if c.isalnum())


def _has_picture(page: Any) -> bool:
    """An image drawn on the page, directly or inside a form one level down (where scanners put it)."""
    def images_in(resources: Any, depth: int) -> bool:
        xobjects = resources.get("/XObject") if hasattr(resources, "get") else None
        if not hasattr(xobjects, "values"):
            return False
        for ref in xobjects.values():
            obj = ref.get_object()
            if obj.get("/Subtype") == "/Image":
                return True
            if depth and obj.get("/Subtype") == "/Form" and images_in(obj.get("/Resources") or {}, depth - 1):
                return True
        return False

    try:
        resources = page.get("/Resources")
        return images_in(resources.get_object(), 1) if resources is not None else False
    except (AttributeError, KeyError, TypeError, ValueError):  # a damaged resource dictionary: judge by text
        return False


def needs_ocr(text: str, has_picture: bool) -> bool:
    letters = _letters(text)
    return letters == 0 or (has_picture and letters < MIN_TEXT_BESIDE_A_PICTURE)


def read_pdf(data: bytes, name: str, limits: Limits, take_pages: Callable[[int, str], None],
             work: DrawingBudget | None = None) -> list[Page]:
    """Every page with its text layer, marked for OCR where it has (almost) none. `take_pages` counts
    the pages against the upload's budget (and raises when it is spent) before any page is read;
    `work` the drawing instructions reading them goes through (the upload's, or this file's alone),
    every page's before the first text is extracted."""
    from pypdf import PdfReader, apply_configuration
    from pypdf.errors import FileNotDecryptedError, LimitReachedError

    work = work if work is not None else DrawingBudget(limits)

    if not is_pdf(data):
        raise DocumentError(_("'%(name)s' is not a PDF: it does not start like one (another kind of file renamed "
                              ".pdf?).", name=name))
    try:
        with apply_configuration(**_configuration(limits)):
            reader = PdfReader(io.BytesIO(data), strict=False)
            if reader.is_encrypted and not reader.decrypt(""):
                raise FileNotDecryptedError("a password is needed")
            declared = _declared_pages(reader)
            take_pages(declared, name)
            count = len(reader.pages)
            if count != declared:
                take_pages(count - declared, name)
            if count == 0:
                raise DocumentError(_("'%(name)s' has no pages.", name=name))
            work.start(len(data))
            try:
                for number, page in enumerate(reader.pages, start=1):
                    work.take(page, name, number)
            finally:
                work.start(0)  # let this file's forms go
            return _pages(reader)
    except DocumentError:
        raise
    except FileNotDecryptedError:
        raise DocumentError(_("'%(name)s' is protected by a password. Remove the password (print it to a new "
                              "PDF) and upload it again.", name=name)) from None
    except (LimitReachedError, RecursionError) as exc:
        raise DocumentError(_("'%(name)s' is built to exhaust a reader (%(error)s): refused as a possible PDF "
                              "bomb.", name=name, error=_why(exc))) from None
    except Exception as exc:  # pypdf raises many kinds (PdfReadError, KeyError, ValueError…) on a broken file
        if isinstance(exc.__cause__, LimitReachedError | RecursionError):  # pypdf wraps some of its refusals
            raise DocumentError(_("'%(name)s' is built to exhaust a reader (%(error)s): refused as a possible PDF "
                                  "bomb.", name=name, error=_why(exc.__cause__))) from None
        raise DocumentError(_("'%(name)s' is not a readable PDF (%(error)s). Open it and save it again, or upload "
                              "a scan of it.", name=name, error=_why(exc))) from None


def _why(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "objects nested too deeply"
    return f"{exc.__class__.__name__}: {str(exc)[:200]}"


def _declared_pages(reader: Any) -> int:
    """The page count the document declares: checked before its page tree is walked."""
    try:
        count = reader.trailer["/Root"].get_object()["/Pages"].get_object().get("/Count", 0)
        return max(0, int(count))
    except (KeyError, TypeError, ValueError, AttributeError):
        return 0


def _pages(reader: Any) -> list[Page]:
    pages: list[Page] = []
    for number, page in enumerate(reader.pages, start=1):
        contents = page.get_contents()
        text = clean_text(page.extract_text() or "") if contents is not None else ""
        pages.append(Page(number, text, needs_ocr(text, _has_picture(page))))
    return pages


def page_text_layers(data: bytes, numbers: list[int], limits: Limits) -> dict[int, str]:
    """The text layers of some pages (the worker re-reads the pages intake read, to put them in order
    beside the OCR'd ones)."""
    from pypdf import PdfReader, apply_configuration

    with apply_configuration(**_configuration(limits)):
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            reader.decrypt("")
        return {n: clean_text(reader.pages[n - 1].extract_text() or "") for n in numbers}


def render_pages(data: bytes, numbers: list[int], limits: Limits) -> Iterator[tuple[int, Any]]:
    """(page number, PIL image) for each page, in grey, at limits.render_dpi or smaller so that no
    page is more than limits.max_pixels. Workers only: this is where pdfium parses the file, in a child
    process that a page cannot hold longer or grow larger than the limits allow (render.py)."""
    return render.render_pages(data, numbers, limits)
