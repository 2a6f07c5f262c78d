"""Where a person's data can be, and how each place is searched and erased (lifecycle/erasure.py runs
them in order).

Each place finds the rows holding the identifier (lifecycle/matching.py) and erases them its own way:
rows whose purpose is the document go (labels, labelled-set and data-set rows, original files,
notifications); rows that must stay have their texts that hold the identifier replaced by a
placeholder — an item stays for its run's counters and the KPIs, a decision because the KPIs count it
(its label, confidence, path and cost are kept), a review task because a person's time is counted, an
e-mail's ledger row because it keeps the message from being taken twice.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from django.db.models import QuerySet
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy

from workflows.engine import intake
from workflows.models import (
    Dataset,
    Decision,
    Item,
    Label,
    LabelledSet,
    MailboxMessage,
    Notification,
    Original,
    ReviewTask,
)

from .matching import PLACEHOLDER, first_snippet, json_contains, matching, scrub, snippet, text_contains

SAMPLES = 3
CHUNK = 500
TITLES = {
    "items": gettext_lazy("Documents (run items)"),
    "decisions": gettext_lazy("Step outputs (decisions)"),
    "labels": gettext_lazy("Labels"),
    "review_tasks": gettext_lazy("Review tasks"),
    "datasets": gettext_lazy("Data-set rows"),
    "labelled_sets": gettext_lazy("Labelled-set rows"),
    "originals": gettext_lazy("Original files"),
    "notifications": gettext_lazy("Notifications"),
    "mail_messages": gettext_lazy("E-mails taken from mailboxes"),
}
ORDER = tuple(TITLES)


@dataclass
class Sample:
    where: str
    text: str
    link: str = ""


@dataclass
class Found:
    kind: str
    count: int = 0
    samples: list[Sample] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    # data sets and labelled sets: {row id: [row numbers or positions]}
    rows: dict[int, list[int]] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return str(TITLES[self.kind])

    def add(self, pk: int, where: str, text: str, link: str = "", rows: int = 1) -> None:
        self.ids.append(pk)
        self.count += rows
        if len(self.samples) < SAMPLES:
            self.samples.append(Sample(where=where, text=text, link=link))


def _rows(queryset: QuerySet, fields: list[str], needle: str, *columns: str) -> Any:
    return matching(queryset, fields, needle).only("pk", *columns).order_by("pk").iterator(chunk_size=CHUNK)


# --- finding --------------------------------------------------------------------------------------


def find_items(needle: str) -> Found:
    found = Found("items")
    for item in _rows(Item.objects.all(), ["payload"], needle, "run_id", "payload"):
        if json_contains(item.payload, needle):
            found.add(item.pk, gettext("Run %(run)s, item %(item)s") % {"run": item.run_id, "item": item.pk},
                      first_snippet([item.payload], needle), reverse("run-item", args=[item.run_id, item.pk]))
    return found


def find_decisions(needle: str) -> Found:
    found = Found("decisions")
    for d in _rows(Decision.objects.all(), ["output", "error"], needle, "run_id", "item_id", "node", "output", "error"):
        if json_contains(d.output, needle) or text_contains(d.error, needle):
            found.add(d.pk, gettext("Run %(run)s, step %(node)s") % {"run": d.run_id, "node": d.node},
                      first_snippet([d.output, d.error], needle), reverse("run-item", args=[d.run_id, d.item_id]))
    return found


LABEL_TEXTS = ["text", "value", "label", "predicted"]


def find_labels(needle: str) -> Found:
    found = Found("labels")
    for label in _rows(Label.objects.all(), LABEL_TEXTS, needle, *LABEL_TEXTS, "source", "node"):
        values = [getattr(label, name) for name in LABEL_TEXTS]
        if any(text_contains(v, needle) for v in values):
            found.add(label.pk, gettext("Label of step %(node)s (%(source)s)")
                      % {"node": label.node or "—", "source": label.get_source_display()},
                      first_snippet(values, needle))
    return found


def find_review_tasks(needle: str) -> Found:
    found = Found("review_tasks")
    for task in _rows(ReviewTask.objects.all(), ["proposal", "result", "instructions"], needle,
                      "run_id", "item_id", "node", "proposal", "result", "instructions"):
        values = [task.proposal, task.result, task.instructions]
        if any(json_contains(v, needle) for v in values):
            found.add(task.pk, gettext("Review of run %(run)s at step %(node)s") % {"run": task.run_id,
                                                                                  "node": task.node},
                      first_snippet(values, needle), reverse("run-item", args=[task.run_id, task.item_id]))
    return found


def _parsed(dataset: Dataset) -> intake.Parsed | None:
    try:
        return intake.parse(bytes(dataset.content), dataset.filename)
    except (intake.IntakeError, ValueError):
        return None


def find_datasets(needle: str) -> Found:
    """Data sets are files: each is read as a run would read it and searched row by row (one that no
    longer reads is searched as text, and goes whole if it holds the identifier)."""
    found = Found("datasets")
    for pk in list(Dataset.objects.order_by("pk").values_list("pk", flat=True)):
        dataset = Dataset.objects.only("pk", "name", "filename", "content").filter(pk=pk).first()  # one file at a time
        if dataset is None:
            continue
        parsed = _parsed(dataset)
        if parsed is None:
            text = bytes(dataset.content).decode("utf-8", errors="replace")
            if text_contains(text, needle):
                found.rows[dataset.pk] = []
                found.add(dataset.pk, gettext("Data set %(name)s") % {"name": dataset.name}, snippet(text, needle))
            continue
        rows = [number for number, values in parsed.rows if json_contains(values, needle)]
        if rows:
            found.rows[dataset.pk] = rows
            first = dict(parsed.rows)[rows[0]]
            listed = ", ".join(map(str, rows[:10])) + ("…" if len(rows) > 10 else "")
            found.add(dataset.pk, gettext("Data set %(name)s, rows %(rows)s") % {"name": dataset.name, "rows": listed},
                      first_snippet([first], needle), reverse("dataset-list"), rows=len(rows))
    return found


def find_labelled_sets(needle: str) -> Found:
    found = Found("labelled_sets")
    for labelled in _rows(LabelledSet.objects.all(), ["items"], needle, "name", "items"):
        positions = [i for i, row in enumerate(labelled.items or []) if json_contains(row, needle)]
        if positions:
            found.rows[labelled.pk] = positions
            found.add(labelled.pk, gettext("Labelled set %(name)s") % {"name": labelled.name},
                      first_snippet([labelled.items[positions[0]]], needle), rows=len(positions))
    return found


def find_originals(needle: str, items: Found) -> Found:
    """Files named with the identifier, and the files the documents that hold it came from."""
    found = Found("originals")
    named = {o.pk: o for o in _rows(Original.objects.all(), ["name"], needle, "run_id", "sha256", "name")}
    wanted: dict[int, set[str]] = {}
    for item in Item.objects.filter(pk__in=items.ids).only("run_id", "payload").iterator(chunk_size=CHUNK):
        sha = (item.payload or {}).get("original") if isinstance(item.payload, dict) else None
        if isinstance(sha, str):
            wanted.setdefault(item.run_id, set()).add(sha)
    for run_id, shas in wanted.items():
        named.update({o.pk: o for o in Original.objects.filter(run_id=run_id, sha256__in=shas)})
    for pk in sorted(named):
        original = named[pk]
        found.add(pk, gettext("Run %(run)s, original file") % {"run": original.run_id},
                  snippet(original.name, needle) or original.name)
    return found


def find_notifications(needle: str) -> Found:
    found = Found("notifications")
    for note in _rows(Notification.objects.all(), ["params"], needle, "user_id", "kind", "params"):
        if json_contains(note.params, needle):
            found.add(note.pk, gettext("Notification %(kind)s") % {"kind": note.kind},
                      first_snippet([note.params], needle))
    return found


def find_mail_messages(needle: str) -> Found:
    found = Found("mail_messages")
    for message in _rows(MailboxMessage.objects.all(), ["sender", "subject"], needle, "mailbox_id", "sender",
                         "subject"):
        if text_contains(message.sender, needle) or text_contains(message.subject, needle):
            found.add(message.pk, gettext("Mailbox %(mailbox)s") % {"mailbox": message.mailbox_id},
                      first_snippet([message.sender, message.subject], needle))
    return found


def find_all(needle: str) -> dict[str, Found]:
    found = {"items": find_items(needle)}
    for kind, finder in (("decisions", find_decisions), ("labels", find_labels),
                         ("review_tasks", find_review_tasks), ("datasets", find_datasets),
                         ("labelled_sets", find_labelled_sets), ("notifications", find_notifications),
                         ("mail_messages", find_mail_messages)):
        found[kind] = finder(needle)
    found["originals"] = find_originals(needle, found["items"])
    return {kind: found[kind] for kind in ORDER}


def find_any(needles: list[str]) -> dict[str, Found]:
    """`find_all` for each of `needles` (a name in its word orders), merged: a row holding two of them
    is listed and counted once."""
    results = [find_all(needle) for needle in needles]
    if len(results) == 1:
        return results[0]
    merged: dict[str, Found] = {}
    for kind in ORDER:
        into = merged[kind] = Found(kind)
        seen: set[tuple[str, str]] = set()
        for found in (result[kind] for result in results):
            into.ids.extend(pk for pk in found.ids if pk not in set(into.ids))
            for pk, rows in found.rows.items():
                into.rows[pk] = sorted(set(into.rows.get(pk, [])) | set(rows))
            for sample in found.samples:
                if len(into.samples) < SAMPLES and (sample.where, sample.text) not in seen:
                    seen.add((sample.where, sample.text))
                    into.samples.append(sample)
        # Data sets and labelled sets count rows (a data set that no longer reads goes whole: one).
        into.count = (sum(max(len(rows), 1) for rows in into.rows.values()) if kind in ("datasets", "labelled_sets")
                      else len(into.ids))
    return merged


# --- erasing (in the caller's transaction) --------------------------------------------------------


def _scrub_rows(model: Any, ids: list[int], fields: list[str], needle: str) -> int:
    changed = 0
    for start in range(0, len(ids), CHUNK):
        rows = list(model.objects.select_for_update().filter(pk__in=ids[start:start + CHUNK]).only("pk", *fields))
        for row in rows:
            for name in fields:
                setattr(row, name, scrub(getattr(row, name), needle)[0])
        model.objects.bulk_update(rows, fields)
        changed += len(rows)
    return changed


def _delete(model: Any, ids: list[int]) -> int:
    return sum(model.objects.filter(pk__in=ids[i:i + CHUNK]).delete()[1].get(model._meta.label, 0)
               for i in range(0, len(ids), CHUNK))


def _rewrite(dataset: Dataset, drop: list[int]) -> bool:
    """The data set without the rows `drop` (in its own format; an XLSX as JSON lines, which keep its
    numbers numbers). False when nothing would be left: the caller deletes it instead."""
    parsed = _parsed(dataset)
    if parsed is None or not drop:
        return False
    kept = [values for number, values in parsed.rows if number not in set(drop)]
    if not kept:
        return False
    filename = dataset.filename
    if parsed.format == "csv":
        out = io.StringIO()
        writer = csv.writer(out, delimiter=parsed.delimiter or ",")
        writer.writerow(parsed.columns)
        writer.writerows([[values.get(c, "") for c in parsed.columns] for values in kept])
        content = out.getvalue().encode("utf-8")
    else:
        content = "".join(json.dumps(values, ensure_ascii=False, default=str) + "\n" for values in kept).encode()
        if parsed.format != "jsonl":
            filename = str(PurePath(filename).with_suffix(".jsonl"))
    Dataset.objects.filter(pk=dataset.pk).update(content=content, size=len(content), rows=len(kept),
                                                 filename=filename[:255])
    return True


def erase_datasets(found: Found) -> int:
    erased = 0
    for dataset in Dataset.objects.select_for_update().filter(pk__in=list(found.rows)):
        drop = found.rows[dataset.pk]
        if _rewrite(dataset, drop):
            erased += len(drop)
        else:
            dataset.delete()
            erased += max(len(drop), 1)
    return erased


def erase_labelled_sets(found: Found) -> int:
    erased = 0
    for labelled in LabelledSet.objects.select_for_update().filter(pk__in=list(found.rows)):
        drop = set(found.rows[labelled.pk])
        LabelledSet.objects.filter(pk=labelled.pk).update(
            items=[row for i, row in enumerate(labelled.items or []) if i not in drop])
        erased += len(drop)
    return erased


def erase_mail_messages(found: Found, needle: str) -> int:
    changed = 0
    for message in MailboxMessage.objects.select_for_update().filter(pk__in=found.ids):
        MailboxMessage.objects.filter(pk=message.pk).update(
            sender=PLACEHOLDER if text_contains(message.sender, needle) else message.sender,
            subject=PLACEHOLDER if text_contains(message.subject, needle) else message.subject)
        changed += 1
    return changed


def erase_all(found: dict[str, Found], needle: str) -> tuple[dict[str, int], set[str]]:
    """Erase what `find_all` found; ({kind: rows erased}, the shas of the original rows deleted)."""
    shas = set(Original.objects.filter(pk__in=found["originals"].ids).values_list("sha256", flat=True))
    erasers: dict[str, Callable[[], int]] = {
        "items": lambda: _scrub_rows(Item, found["items"].ids, ["payload"], needle),
        "decisions": lambda: _scrub_rows(Decision, found["decisions"].ids, ["output", "error"], needle),
        "labels": lambda: _delete(Label, found["labels"].ids),
        "review_tasks": lambda: _scrub_rows(ReviewTask, found["review_tasks"].ids,
                                            ["proposal", "result", "instructions"], needle),
        "datasets": lambda: erase_datasets(found["datasets"]),
        "labelled_sets": lambda: erase_labelled_sets(found["labelled_sets"]),
        "originals": lambda: _delete(Original, found["originals"].ids),
        "notifications": lambda: _delete(Notification, found["notifications"].ids),
        "mail_messages": lambda: erase_mail_messages(found["mail_messages"], needle),
    }
    return {kind: erasers[kind]() for kind in ORDER}, shas
