"""Labelled sets: documents with their true label, from an uploaded CSV/XLSX or from reviews.

An upload is previewed and mapped like a run upload (engine/intake.py reads it, engine/mapping.py
guesses the columns): the person picks the text column, the label column and the segment columns
(language, channel, customer type…), so evidence can be broken down by segment. Errors name the row
and the column.

A set used as evidence must carry the candidate's labels and none of its training documents
(check_evaluation_set); when a request names none, the newest set that fits is taken.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.text import slugify
from django.utils.translation import gettext, ngettext

from workflows.engine import intake
from workflows.engine import mapping as mapping_guess
from workflows.models.audit import record
from workflows.models.registry import Label, LabelledSet, ModelVersion, RegisteredModel

MAX_ITEMS = 20_000
MAX_BYTES = 20 * 1024 * 1024
RESERVED_ORDER = ("text", "label")
# The keys runs' payloads carry segments under: an uploaded segment column goes by one when its name
# says so, and the evidence's replay reads the same keys, so the two break accuracy down alike.
SEGMENT_KEYS = ("language", "channel", "customer_type", "segment")
FORMATS = (".csv", ".tsv", ".txt", ".xlsx")


def content_hash(text: str) -> str:
    """What identifies a document across labelled sets and training data (whitespace and case do not
    count): an evaluation set overlapping the candidate's training data is refused by this."""
    return hashlib.sha256(" ".join(text.split()).casefold().encode()).hexdigest()[:16]


def _cell(value: Any) -> str:
    return "" if value is None else str(value).strip()


@dataclass(frozen=True)
class Mapping:
    """Which column holds the text, which the label, and which become segments."""

    text: str
    label: str
    segments: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preview:
    """What the person checks before a set is saved, beside the first rows (intake's Parsed.preview):
    every column with sample values, and the columns guessed for text and label ("" where none fits:
    the person chooses)."""

    columns: list[mapping_guess.Column]
    suggested: Mapping


def _said(items: list[str]) -> str:
    return ", ".join(items)


def read_file(name: str, data: bytes) -> intake.Parsed:
    """The file read by the run intake (workflows/engine/intake.py), so it gets the same checks:
    encoding detection and BOM, ragged rows, NUL bytes, zip bombs and damaged workbooks."""
    if len(data) > MAX_BYTES:
        raise ValidationError(gettext("The file is %(size)s MB; the limit is %(limit)s MB.")
                              % {"size": f"{len(data) / 1e6:.1f}", "limit": f"{MAX_BYTES / 1e6:.0f}"})
    if not name.lower().endswith(FORMATS):
        raise ValidationError(gettext("Upload a .csv or .xlsx file with a 'text' and a 'label' column."))
    try:
        return intake.parse(data, name)
    except intake.IntakeError as exc:
        raise ValidationError(exc.message) from None


def _sample(parsed: intake.Parsed) -> list[dict[str, Any]]:
    """The first rows' values: what the column guesses read."""
    return [values for _, values in parsed.rows[:mapping_guess.SAMPLE_ROWS]]


def suggest(parsed: intake.Parsed) -> Mapping:
    """Text and label guessed as the run upload guesses its fields (by name, then by content: a column
    of identifiers is never text); every other column is offered as a segment."""
    chosen = {c.field: c.column for c in mapping_guess.guess(list(RESERVED_ORDER), parsed.columns, _sample(parsed))}
    # A column named `text` is the text even when its values are single words (a keyword set): the
    # guess only refuses identifiers for text when nothing says otherwise.
    named = {mapping_guess.normalise(c): c for c in parsed.columns}
    for field in RESERVED_ORDER:
        if not chosen[field] and named.get(field) and named[field] not in chosen.values():
            chosen[field] = named[field]
    return Mapping(chosen["text"], chosen["label"],
                   tuple(c for c in parsed.columns if c not in {chosen["text"], chosen["label"]}
                         and not _named_as_id(c)))


def _named_as_id(column: str) -> bool:
    """A ticket number is no segment: every value would be a segment of one document."""
    name = mapping_guess.normalise(column)
    return name in mapping_guess.ID_NAMES or name.split("_")[-1] in mapping_guess.ID_NAMES


def preview(parsed: intake.Parsed) -> Preview:
    return Preview(mapping_guess.describe(parsed.columns, _sample(parsed)), suggest(parsed))


def mapping_from(raw: Any) -> Mapping | None:
    """A mapping sent by a person or a client: {"text": column, "label": column, "segments": [columns]}."""
    if not raw:
        return None
    if not isinstance(raw, dict):
        raise ValidationError(gettext("The mapping must be an object {\"text\": column, \"label\": column, "
                                      "\"segments\": [columns]}."))
    segments = raw.get("segments") or []
    if isinstance(segments, str):
        segments = [segments]
    if not isinstance(segments, list | tuple) or not all(isinstance(s, str) for s in segments):
        raise ValidationError(gettext("The mapping's segments must be a list of column names."))
    return Mapping(str(raw.get("text") or ""), str(raw.get("label") or ""), tuple(s for s in segments if s))


def _segment_keys(parsed: intake.Parsed, columns: tuple[str, ...]) -> dict[str, str]:
    """{column: segment key}: the keys runs' payload columns go by (language, channel, customer_type,
    segment) when a column's name says so, its normalised name otherwise, so evidence and replay meet."""
    known = {c.column: c.field for c in mapping_guess.guess(list(SEGMENT_KEYS), list(columns), _sample(parsed))
             if c.column and c.reason == "name"}
    return {column: known.get(column) or mapping_guess.normalise(column) or column for column in columns}


def _check_mapping(parsed: intake.Parsed, chosen: Mapping) -> None:
    missing = [field for field, column in (("text", chosen.text), ("label", chosen.label)) if not column]
    if missing:
        said = {"missing": gettext("%(first)s and no %(second)s") % {"first": "'text'", "second": "'label'"}
                if len(missing) == 2 else repr(missing[0]), "columns": _said(parsed.columns)}
        raise ValidationError((gettext("The file has no %(missing)s column (it has %(columns)s); choose the "
                                       "column that holds it.") if parsed.columns else
                               gettext("The file has no %(missing)s column (it has none).")) % said)
    unknown = [c for c in (chosen.text, chosen.label, *chosen.segments) if c not in parsed.columns]
    if unknown:
        raise ValidationError(gettext("The file has no column %(missing)s. Its columns are: %(columns)s.")
                              % {"missing": _said([repr(c) for c in unknown]), "columns": _said(parsed.columns)})
    if chosen.text == chosen.label:
        raise ValidationError(gettext("Text and label must be two different columns."))


def items_from(parsed: intake.Parsed, chosen: Mapping | None = None) -> list[dict[str, Any]]:
    """[{text, label, segment{…}}] or ValidationError listing the first problems. Without a mapping,
    text and label are guessed and every other column (but identifiers) is a segment; an empty segment
    cell is left out."""
    chosen = chosen or suggest(parsed)
    _check_mapping(parsed, chosen)
    if len(parsed.rows) > MAX_ITEMS:
        raise ValidationError(gettext("The file has %(count)s rows; a labelled set holds at most %(limit)s.")
                              % {"count": len(parsed.rows), "limit": MAX_ITEMS})
    keys = _segment_keys(parsed, tuple(c for c in chosen.segments if c not in {chosen.text, chosen.label}))
    items, problems = [], []
    for number, row in parsed.rows:
        text = _cell(row.get(chosen.text))
        label = _cell(row.get(chosen.label))
        if not text and not label:
            continue
        if not text or not label:
            problems.append((gettext("Row %(row)s: text is empty.") if not text else
                             gettext("Row %(row)s: label is empty.")) % {"row": number})
            continue
        segment = {key: _cell(row.get(column)) for column, key in keys.items() if _cell(row.get(column))}
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
    rows = Label.objects.filter(model=model, field="").values_list("text", "label", "segment")
    return [{"text": text, "label": label, **({"segment": segment} if segment else {})}
            for text, label, segment in rows]


# --- evaluation sets ------------------------------------------------------------------------------


def candidate_labels(version: ModelVersion) -> list[str]:
    """The labels a classifier version gives ([] when its registration recorded none)."""
    return sorted(str(label) for label in version.labels or [])


def set_labels(labelled: LabelledSet) -> list[str]:
    return sorted(labelled.labels or {i["label"] for i in labelled.items})


def training_hashes(version: ModelVersion) -> set[str]:
    """Content hashes of the documents the version learnt from. A quantised version is a copy of its
    parent, so it learnt what its parent learnt: the lineage is followed through such copies."""
    hashes: set[str] = set()
    for current in version.lineage():
        hashes.update((current.meta.get("params") or {}).get("training_hashes") or [])
        if current.source != "quantised":
            break
    return hashes


def label_mismatch(version: ModelVersion, labelled: LabelledSet) -> tuple[list[str], list[str]]:
    """(labels the candidate gives that the set lacks, labels of the set the candidate cannot give);
    both empty when they match, or when the version recorded no labels (nothing to compare)."""
    labels = candidate_labels(version)
    if not labels:
        return [], []
    have = set(set_labels(labelled))
    return sorted(set(labels) - have), sorted(have - set(labels))


def overlap(version: ModelVersion, labelled: LabelledSet) -> int:
    """How many of the set's documents the version was trained on."""
    hashes = training_hashes(version)
    return sum(1 for item in labelled.items if content_hash(item["text"]) in hashes) if hashes else 0


def check_evaluation_set(version: ModelVersion, labelled: LabelledSet) -> None:
    """Raise ValidationError unless the set can judge the version: its labels are the candidate's
    (else accuracy compares different questions: 0 % against 0 %), and it holds none of the documents
    the candidate learnt from (else the candidate is marked on its own homework)."""
    if not labelled.items:
        raise ValidationError(gettext("Labelled set '%(name)s' has no documents.") % {"name": labelled.name})
    missing, extra = label_mismatch(version, labelled)
    if missing or extra:
        parts = ([gettext("missing %(labels)s") % {"labels": _said(missing)}] if missing else []) + (
            [gettext("extra %(labels)s") % {"labels": _said(extra)}] if extra else [])
        raise ValidationError(gettext("Labelled set '%(name)s' does not carry the labels of %(ref)s (%(difference)s): "
                                      "choose or upload a set labelled %(labels)s.")
                              % {"name": labelled.name, "ref": version.ref, "difference": "; ".join(parts),
                                 "labels": _said(candidate_labels(version))})
    shared = overlap(version, labelled)
    if shared:
        raise ValidationError(ngettext(
            "Labelled set '%(name)s' shares %(count)s document with the data %(ref)s was trained on: evaluate it on "
            "documents it has not seen.",
            "Labelled set '%(name)s' shares %(count)s documents with the data %(ref)s was trained on: evaluate it on "
            "documents it has not seen.", shared) % {"name": labelled.name, "count": shared, "ref": version.ref})


def default_evaluation_set(version: ModelVersion) -> LabelledSet:
    """The newest set that can judge the version: the model's own sets first, then sets made for no
    model. ValidationError when none fits, saying to upload one."""
    model = version.model
    for candidates in (model.labelled_sets.order_by("-created_at", "-id"),
                       LabelledSet.objects.filter(model=None).order_by("-created_at", "-id")):
        for labelled in candidates:
            try:
                check_evaluation_set(version, labelled)
            except ValidationError:
                continue
            return labelled
    labels = candidate_labels(version)
    if not labels:
        raise ValidationError(gettext("No labelled set can judge %(ref)s: none carries its labels without holding "
                                      "documents it was trained on. Upload one (Models → Upload a labelled set) and "
                                      "choose it.") % {"ref": version.ref})
    raise ValidationError(gettext("No labelled set can judge %(ref)s: none is labelled %(labels)s without holding "
                                  "documents it was trained on. Upload one (Models → Upload a labelled set) and "
                                  "choose it.") % {"ref": version.ref, "labels": _said(labels)})
