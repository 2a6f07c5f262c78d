"""Where a document enters the line, its pages without a text layer are read by OCR, so that no station
ever gets a scanned document with empty text.

Intake (the web process) read the text layers and listed the pages it could not read in the item's
`ocr_pages`. The source node of the run, in the worker, renders those pages from the stored original
(pdfium, or the image's frames), reads them with the OCR model the run pinned at its start
(engine/documents.py: OCR_PIN), and gives the item its whole text, pages in order. The decision it
records is the checkpoint: a retried shard replays the text instead of reading the pages again.
"""

from __future__ import annotations

from typing import Any

from workflows.documents import OCR_PAGES, document_text
from workflows.engine.documents import OCR_PIN, limits, original_bytes, original_facts
from workflows.engine.intake import MAX_CELL_CHARS
from workflows.engine.state import ItemState
from workflows.graph.plan import Step

from . import loader
from .base import Handler, Outcome, RunContext


def _number(value: Any, most: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= most


def _pages(data: dict[str, Any], file_pages: int) -> tuple[list[int], list[int]] | None:
    """(the page numbers of the document in its file — all of it, or the range of a split part —, the
    pages to read by OCR), or None when the item's page fields do not fit a file of `file_pages` pages.
    Intake writes them for documents, but any JSON item (REST intake, a webhook) can carry them, and the
    range is built from them: `pages: 1000000000` must not become a list of a billion numbers."""
    todo = data.get(OCR_PAGES)
    if not isinstance(todo, list) or not todo or not all(_number(n, file_pages) for n in todo):
        return None
    given = {name: data[name] for name in ("pages", "page_from", "page_to") if data.get(name) is not None}
    if not all(_number(value, file_pages) for value in given.values()):
        return None
    first, last = given.get("page_from"), given.get("page_to")
    if first is None or last is None:
        first, last = 1, given.get("pages")
    if last is None or first > last:
        return sorted(set(todo)), sorted(set(todo))
    return list(range(first, last + 1)), todo


class DocumentSource(Handler):
    """A source node's handler: items pass as they came, documents with pages to OCR get their text."""

    def prepare(self, step: Step, context: RunContext) -> None:
        super().prepare(step, context)
        self.runtime: Any = None  # the OCR model, loaded with the first page there is to read

    def process(self, batch: list[ItemState], step: Step) -> list[Outcome]:
        return [self.read(s.data) if s.data.get(OCR_PAGES) else Outcome() for s in batch]

    def ocr(self) -> tuple[Any, str]:
        pin = self.context.models.get(OCR_PIN)
        if pin is None:
            return None, ""
        if self.runtime is None:
            self.runtime = loader.load(pin["version_id"])
        return self.runtime, pin["ref"]

    def read(self, data: dict[str, Any]) -> Outcome:
        facts = original_facts(data.get("original")) or {}
        file_pages = facts.get("pages") if _number(facts.get("pages"), limits().max_pages) else limits().max_pages
        found = _pages(data, file_pages)
        if found is None:
            return Outcome(error=f"the item's page fields (pages, page_from, page_to, {OCR_PAGES}) do not fit its "
                                 f"original file, which has {file_pages} page(s)", error_code="bad_pages")
        pages, todo = found
        runtime, ref = self.ocr()
        if runtime is None:
            return Outcome(error="pages need OCR, but the run pinned no OCR model when it started (is "
                                 "'ocr@production' registered?)", error_code="no_ocr_model")
        try:
            original = original_bytes(data.get("original"))
        except LookupError as exc:  # not in the store, or no longer its sha256
            return Outcome(error=f"the document's original file cannot be read: {exc}", error_code="original_missing",
                           model_ref=ref)
        confidences: list[float] = []
        lines = 0

        def read_page(image: Any) -> str:
            nonlocal lines
            out = runtime.read_image(image, upright=True)
            lines += out.get("lines", 0)
            if out.get("lines"):
                confidences.append(out["confidence"])
            return out.get("text", "")

        try:
            text = document_text(original, pages, todo, read_page, limits())
        except Exception as exc:  # pdfium and Pillow raise their own kinds on a page they cannot draw
            return Outcome(error=f"the pages of {data.get('file_name') or 'the document'} could not be read: "
                                 f"{type(exc).__name__}: {str(exc)[:300]}", error_code="unreadable_document",
                           model_ref=ref)
        if not text.strip():
            return Outcome(error=f"OCR found no text on page(s) {', '.join(map(str, todo))} and the document has "
                                 "no other text", error_code="no_text", model_ref=ref)
        confidence = round(sum(confidences) / len(confidences), 4) if confidences else 0.0
        return Outcome(fields={"text": text[:MAX_CELL_CHARS],
                               "ocr": {"pages": len(todo), "lines": lines, "confidence": confidence}},
                       model_ref=ref)
