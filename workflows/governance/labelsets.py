"""Labelled sets: documents with their true label, from an uploaded CSV/XLSX or from reviews.

A file needs a `text` and a `label` column; any other column (language, channel, customer type…)
becomes a segment, so evidence can be broken down by it. Errors name the row and the column.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify

from workflows.engine import intake
from workflows.models.audit import record
from workflows.models.registry import Label, LabelledSet, RegisteredModel

MAX_ITEMS = 20_000
MAX_BYTES = 20 * 1024 * 1024
RESERVED = {"text", "label"}
FORMATS = (".csv", ".tsv", ".txt", ".xlsx")


def _cell(value: Any) -> str:
    return "" if value is None else str(value).strip()


def parse_labelled_file(name: str, data: bytes) -> list[dict[str, Any]]:
    """[{text, label, segment{…}}] or ValidationError listing the first problems.

    The file is read by the run intake (workflows/engine/intake.py), so it gets the same checks: encoding
    detection and BOM, ragged rows, NUL bytes, zip bombs and damaged workbooks, each naming its rows."""
    if len(data) > MAX_BYTES:
        raise ValidationError(f"The file is {len(data) / 1e6:.1f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB.")
    if not name.lower().endswith(FORMATS):
        raise ValidationError("Upload a .csv or .xlsx file with a 'text' and a 'label' column.")
    try:
        parsed = intake.parse(data, name)
    except intake.IntakeError as exc:
        raise ValidationError(exc.message) from None
    columns = {c.strip().lower(): c for c in parsed.columns}
    missing = [c for c in ("text", "label") if c not in columns]
    if missing:
        raise ValidationError(f"The file has no {' and no '.join(repr(m) for m in missing)} column "
                              f"(it has {', '.join(sorted(columns)) or 'none'}).")
    if len(parsed.rows) > MAX_ITEMS:
        raise ValidationError(f"The file has {len(parsed.rows)} rows; a labelled set holds at most {MAX_ITEMS}.")
    items, problems = [], []
    for number, row in parsed.rows:
        text = _cell(row.get(columns["text"]))
        label = _cell(row.get(columns["label"]))
        if not text and not label:
            continue
        if not text or not label:
            problems.append(f"Row {number}: {'text' if not text else 'label'} is empty.")
            continue
        segment = {key: _cell(row.get(original)) for key, original in columns.items()
                   if key not in RESERVED and _cell(row.get(original))}
        items.append({"text": text, "label": label[:120], **({"segment": segment} if segment else {})})
    if problems:
        more = f" … and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise ValidationError(" ".join(problems[:5]) + more)
    if len({i["label"] for i in items}) < 2:
        raise ValidationError("A labelled set needs at least two different labels.")
    return items


def create_labelled_set(*, name: str, items: list[dict[str, Any]], user: Any, model: RegisteredModel | None = None,
                        source: str = "upload", description: str = "") -> LabelledSet:
    slug = slugify(name)[:80]
    if not slug:
        raise ValidationError("Give the labelled set a name.")
    if LabelledSet.objects.filter(name=slug).exists():
        raise ValidationError(f"A labelled set named '{slug}' exists already; choose another name.")
    with transaction.atomic():
        labelled = LabelledSet.objects.create(name=slug, description=description, model=model, source=source,
                                              items=items, labels=sorted({i["label"] for i in items}), created_by=user)
        record("labelled_set.create", actor=user, obj=labelled, name=slug, items=len(items), source=source,
               model=model.name if model else None)
    return labelled


def review_items(model: RegisteredModel) -> list[dict[str, Any]]:
    """The model's labels from reviews and uploads as training/evaluation items (newest first)."""
    return [{"text": text, "label": label, **({"segment": segment} if segment else {})}
            for text, label, segment in Label.objects.filter(model=model).values_list("text", "label", "segment")]
