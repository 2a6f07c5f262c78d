"""Labelled sets: documents with their true label, from an uploaded CSV/XLSX or from reviews.

A file needs a `text` and a `label` column; any other column (language, channel, customer type…)
becomes a segment, so evidence can be broken down by it. Errors name the row and the column.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext

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
        raise ValidationError(gettext("The file is %(size)s MB; the limit is %(limit)s MB.")
                              % {"size": f"{len(data) / 1e6:.1f}", "limit": f"{MAX_BYTES / 1e6:.0f}"})
    if not name.lower().endswith(FORMATS):
        raise ValidationError(gettext("Upload a .csv or .xlsx file with a 'text' and a 'label' column."))
    try:
        parsed = intake.parse(data, name)
    except intake.IntakeError as exc:
        raise ValidationError(exc.message) from None
    columns = {c.strip().lower(): c for c in parsed.columns}
    missing = [c for c in ("text", "label") if c not in columns]
    if missing:
        said = {"missing": gettext("%(first)s and no %(second)s") % {"first": "'text'", "second": "'label'"}
                if len(missing) == 2 else repr(missing[0]), "columns": ", ".join(sorted(columns))}
        raise ValidationError((gettext("The file has no %(missing)s column (it has %(columns)s).") if columns else
                               gettext("The file has no %(missing)s column (it has none).")) % said)
    if len(parsed.rows) > MAX_ITEMS:
        raise ValidationError(gettext("The file has %(count)s rows; a labelled set holds at most %(limit)s.")
                              % {"count": len(parsed.rows), "limit": MAX_ITEMS})
    items, problems = [], []
    for number, row in parsed.rows:
        text = _cell(row.get(columns["text"]))
        label = _cell(row.get(columns["label"]))
        if not text and not label:
            continue
        if not text or not label:
            problems.append((gettext("Row %(row)s: text is empty.") if not text else
                             gettext("Row %(row)s: label is empty.")) % {"row": number})
            continue
        segment = {key: _cell(row.get(original)) for key, original in columns.items()
                   if key not in RESERVED and _cell(row.get(original))}
        items.append({"text": text, "label": label[:120], **({"segment": segment} if segment else {})})
    if problems:
        said = " ".join(problems[:5])
        if len(problems) > 5:
            said = gettext("%(listed)s … and %(count)s more") % {"listed": said, "count": len(problems) - 5}
        raise ValidationError(said)
    if len({i["label"] for i in items}) < 2:
        raise ValidationError(gettext("A labelled set needs at least two different labels."))
    return items


def create_labelled_set(*, name: str, items: list[dict[str, Any]], user: Any, model: RegisteredModel | None = None,
                        source: str = "upload", description: str = "") -> LabelledSet:
    slug = slugify(name)[:80]
    if not slug:
        raise ValidationError(gettext("Give the labelled set a name."))
    if LabelledSet.objects.filter(name=slug).exists():
        raise ValidationError(gettext("A labelled set named '%(name)s' exists already; choose another name.")
                              % {"name": slug})
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
