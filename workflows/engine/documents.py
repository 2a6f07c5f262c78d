"""Documents at the engine's edge: an upload of PDFs, scans, images, a ZIP of them or e-invoices becomes
items; the originals are kept and recorded for the run that takes them; a run whose items have pages
without a text layer pins the OCR model that its workers will read them with.

The reading itself is pure (workflows/documents/). What needs Django is here: limits from settings, the
originals in the artifact store every machine reaches (models/blobs.py: the web host keeps them, any
worker reads them for OCR), the Original rows, refusals as IntakeError in the reader's language, the pin.

    upload = read_upload(data, name, pages_per_document=0, required=("text",))   # checks, writes nothing
    items = keep(upload)                                # the originals stored; items name them by sha256
    items_from_file(data, name, user=…, run=…)          # both at once (e-mail attachments)

Items carry `text` (the text layers; the worker adds what OCR reads), `file_name`, `pages`, `original`
(the sha256 of the file) and, for a part of a split file, `page_from` and `page_to`.
"""

from __future__ import annotations

import hashlib
import threading
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.signals import request_started
from django.utils.translation import gettext, ngettext

from workflows.design.texts import translate
from workflows.documents import OCR_PAGES, Document, DocumentError, Limits, is_document_name, read_documents
from workflows.models import Original, blobs, registry

from . import intake
from .intake import IntakeError

OCR_REF = "ocr@production"
# Where a run's pins keep the OCR model its source reads pages with (beside the graph's own references).
OCR_PIN = "documents:ocr"
PREVIEW_CHARS = 300
# How long a kept original stays in the store before a run names it (an Original row): retention and
# the store's sweep leave it alone meanwhile, however slowly the items reach their run.
ORIGINAL_HOLD = timedelta(days=1)


def limits() -> Limits:
    return Limits(max_bytes=settings.ENGINE_UPLOAD_MAX_BYTES, max_pages=settings.DOCUMENT_MAX_PAGES,
                  max_pixels=settings.DOCUMENT_MAX_PIXELS,
                  max_inflated=settings.ENGINE_UPLOAD_MAX_BYTES * intake.XLSX_INFLATE_FACTOR,
                  max_ratio=intake.XLSX_MAX_RATIO, ratio_from=intake.XLSX_RATIO_FROM_BYTES,
                  max_members=intake.XLSX_MAX_PARTS, max_text=intake.MAX_CELL_CHARS)


def is_document(filename: str) -> bool:
    return is_document_name(filename)


@dataclass
class Upload:
    """A document upload as read: its documents and each one's item (the original named by sha256)."""

    filename: str
    documents: list[Document]
    items: list[dict[str, Any]]

    def preview(self, count: int = 20) -> dict[str, Any]:
        shown = [{"name": d.file_name, "pages": len(d.pages), "page_from": d.pages[0].number,
                  "page_to": d.pages[-1].number, "part": d.is_part, "ocr_pages": len(d.ocr_pages),
                  "text": d.text[:PREVIEW_CHARS], "more": len(d.text) > PREVIEW_CHARS} for d in self.documents[:count]]
        return {"format": "documents", "documents": shown, "total": len(self.documents),
                "pages": sum(len(d.pages) for d in self.documents),
                "ocr_pages": sum(len(d.ocr_pages) for d in self.documents)}


def read_upload(data: bytes, filename: str, *, pages_per_document: int = 0,
                required: list[str] | tuple[str, ...] = ("text",)) -> Upload:
    """Read every document of the upload (nothing is written): IntakeError names the file at fault."""
    intake.check_size(data)
    try:
        documents = read_documents(data, filename, limits(), pages_per_document=max(0, pages_per_document))
    except DocumentError as exc:
        raise IntakeError(translate(exc.message)) from None
    if not documents:
        raise IntakeError(gettext("'%(name)s' holds no document.") % {"name": filename})
    shas = {id(d.data): hashlib.sha256(d.data).hexdigest() for d in documents}
    items = [d.item(shas[id(d.data)]) for d in documents]
    _check_fields(items, documents, required)
    if any(item.get(OCR_PAGES) for item in items) and not registry.alias_exists(OCR_REF):
        pages = sum(len(item.get(OCR_PAGES) or ()) for item in items)
        raise IntakeError(ngettext("%(count)s page has no text layer and needs OCR, but no OCR model is in "
                                   "production (%(ref)s). Ask an administrator to run 'manage.py setup_models'.",
                                   "%(count)s pages have no text layer and need OCR, but no OCR model is in "
                                   "production (%(ref)s). Ask an administrator to run 'manage.py setup_models'.",
                                   pages) % {"count": pages, "ref": OCR_REF})
    return Upload(filename, documents, items)


def _check_fields(items: list[dict[str, Any]], documents: list[Document], required: Any) -> None:
    """The source's item fields must be fields a document has (an e-invoice has more of them), and a
    document without a text layer must have pages for OCR to read."""
    lacking = sorted({f for item in items for f in required if f != "text" and item.get(f) in (None, "")})
    if lacking:
        raise IntakeError(gettext("The workflow's source needs %(fields)s, which documents do not carry (they carry "
                                  "text, file_name, pages and original). Remove those fields from the source's "
                                  "item fields, or upload a CSV, JSONL or XLSX file that has them.")
                          % {"fields": ", ".join(f"'{f}'" for f in lacking)})
    empty = [d.file_name for d, item in zip(documents, items, strict=True)
             if not item["text"].strip() and not item.get(OCR_PAGES)]
    if empty:
        raise IntakeError(gettext("'%(name)s' has no text to read.") % {"name": empty[0]})


# The originals this thread kept and has not yet recorded for a run. A sha is no key: JSON items (the
# run API, REST intake, a mapped webhook, a CSV column) can carry any `original`, and recording it for
# their run would let whoever sees that run download another run's file. Only what was read from a
# file in this thread during this request (an upload, an attachment) is recorded: web threads are
# reused, so each request starts with nothing kept; the bound keeps a worker thread from growing.
_HERE = threading.local()
KEPT_BOUND = 10_000


def _forget(**kwargs: Any) -> None:
    _HERE.shas = set()


request_started.connect(_forget, dispatch_uid="documents-forget-kept-originals")


def _kept_here() -> set[str]:
    kept = getattr(_HERE, "shas", None)
    if kept is None or len(kept) > KEPT_BOUND:
        kept = _HERE.shas = set()
    return kept


def keep(upload: Upload) -> list[dict[str, Any]]:
    """Store each original once (content-addressed, whole or not at all); the upload's items."""
    kept: set[str] = set()
    for document, item in zip(upload.documents, upload.items, strict=True):
        if item["original"] not in kept:
            blobs.put_bytes(document.data, facts={"content_type": document.content_type,
                                                  "pages": document.file_pages}, hold=ORIGINAL_HOLD)
            kept.add(item["original"])
    _kept_here().update(kept)
    return upload.items


def items_from_file(data: bytes, filename: str, *, user: Any = None, run: Any = None,
                    pages_per_document: int = 0) -> list[dict[str, Any]]:
    """Items from one document file (an e-mail attachment, an upload), its originals kept; with `run`,
    recorded for it now (in the caller's transaction). Without, they are recorded when the items join a
    run (launch.add_items). Raises IntakeError naming the file and what is wrong."""
    items = keep(read_upload(data, filename, pages_per_document=pages_per_document))
    if run is not None:
        record_originals(run, items, user=user)
    return items


def record_originals(run: Any, payloads: list[dict[str, Any]], *, user: Any = None) -> int:
    """An Original row for each file this thread kept that the items name, once per run and name; items
    that name any other sha (an `original` field of someone's own data) link nothing. Returns the rows
    written."""
    mine = _kept_here()
    wanted = {(p["original"], str(p.get("file_name") or "")[:255]) for p in payloads
              if isinstance(p.get("original"), str) and p["original"] in mine}
    if not wanted:
        return 0
    have = set(Original.objects.filter(run=run, sha256__in={sha for sha, _ in wanted}).values_list("sha256", "name"))
    rows = []
    user_id = user.pk if getattr(user, "is_authenticated", False) else getattr(run, "created_by_id", None)
    for sha, name in sorted(wanted - have):
        facts = blobs.facts_of(sha)
        if facts is None:
            continue
        rows.append(Original(run=run, sha256=sha, name=name or sha[:12], uploaded_by_id=user_id,
                             content_type=str(facts.get("content_type") or "application/octet-stream")[:100],
                             size=int(facts.get("size") or 0), pages=int(facts.get("pages") or 0)))
    Original.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


def on_items_added(run: Any, payloads: list[dict[str, Any]]) -> None:
    """Called by launch.add_items, in its transaction: the originals the items name are recorded for the
    run, and a run with pages to OCR pins the OCR model, as every model a run uses is pinned."""
    record_originals(run, payloads)
    pins = run.resolved_models or {}
    if OCR_PIN not in pins and any(p.get(OCR_PAGES) for p in payloads):
        try:
            pins = {**pins, OCR_PIN: registry.resolve(OCR_REF).pin()}
        except LookupError:
            # Uploads were refused already (read_upload); items sent as JSON that ask for OCR without
            # a model to read them with fail at the source, each with the reason, as dead letters.
            return
        type(run).objects.filter(pk=run.pk).update(resolved_models=pins)
        run.resolved_models = pins


def original_of(run: Any, sha256: str) -> Original | None:
    return Original.objects.filter(run=run, sha256=sha256).order_by("pk").first()


def item_original(run: Any, payload: Any) -> Original | None:
    """The original file an item of `run` came from (its payload's `original`), if the run took it."""
    sha = payload.get("original") if isinstance(payload, dict) else None
    return original_of(run, sha) if isinstance(sha, str) else None


def originals_by_sha(run: Any, shas: set[str]) -> dict[str, Original]:
    found: dict[str, Original] = {}
    for original in Original.objects.filter(run=run, sha256__in=shas).order_by("pk"):
        found.setdefault(original.sha256, original)
    return found


# What an original is saved as, by what it is (the first is added when the name ends otherwise).
EXTENSIONS_OF = {"application/pdf": ("pdf",), "image/png": ("png",), "image/jpeg": ("jpg", "jpeg"),
                 "image/tiff": ("tif", "tiff"), "application/xml": ("xml",), "application/pkcs7-mime": ("p7m",)}


def download_name(original: Original) -> str:
    """The name an original is saved under: the name it came with, without its folders and without
    characters that make a name read other than it is (controls, bidirectional overrides), ending in
    the extension of what the file is. The name is whatever the sender wrote (an item's `file_name`,
    which REST intake and webhooks take as they come): "Fattura.pdf.hta" holding a PDF is saved as
    "Fattura.pdf.hta.pdf", and opening it opens a PDF, never an HTML application."""
    name = str(original.name).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if not unicodedata.category(c).startswith("C")).strip(" .")
    allowed = EXTENSIONS_OF.get(original.content_type, ("bin",))
    stem = name[:200] or original.sha256[:12]
    if "." not in stem or stem.rsplit(".", 1)[-1].lower() not in allowed:
        stem += "." + allowed[0]
    return stem


def original_path(original: Original) -> Path:
    """A local copy of the original's bytes, checked against its sha256 (blobs.BlobMissing, a LookupError,
    when the store no longer has it)."""
    return blobs.ensure_local(original.sha256)


def original_facts(sha256: Any) -> dict[str, Any] | None:
    """What was recorded about an original when it was kept (content type, pages, size), or None."""
    return blobs.facts_of(sha256)


def original_bytes(sha256: Any) -> bytes:
    """An original's bytes from the store, checked against its sha256 (blobs.BlobMissing if absent)."""
    return blobs.read_bytes(blobs.check_sha(sha256))


# --- run uploads: a data file or documents, read the same way by the run page and the API -----------


def pages_per_document(value: Any) -> int:
    """The split option as a form sends it: empty or 0 for one document per file, N for every N pages."""
    if value in (None, ""):
        return 0
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if number < 0:
        raise IntakeError(gettext("Pages per document must be a whole number: 1 for one document per page, N for "
                                  "every N pages, empty or 0 for one document per file."))
    return number


def preview_upload(data: bytes, filename: str, *, pages_per_document: int = 0,
                   required: list[str] | tuple[str, ...] = ("text",)) -> intake.Parsed | Upload:
    """What a run upload holds, read but not stored: a data file's rows, or documents."""
    if intake.detect_format(filename, documents=True) == intake.DOCUMENT:
        return read_upload(data, filename, pages_per_document=pages_per_document, required=required)
    return intake.parse(data, filename)


def load_upload(data: bytes, filename: str, mapping: dict[str, str] | None = None,
                required: list[str] | tuple[str, ...] = ("text",), *,
                pages_per_document: int = 0) -> tuple[intake.Parsed | Upload, list[dict[str, Any]]]:
    """A run upload's items: a data file's rows through the column mapping, or one item per document
    (a mapping does not apply to documents: their fields are fixed), the originals stored."""
    if intake.detect_format(filename, documents=True) == intake.DOCUMENT:
        upload = read_upload(data, filename, pages_per_document=pages_per_document, required=required)
        return upload, keep(upload)
    return intake.load_items(data, filename, mapping, required)
