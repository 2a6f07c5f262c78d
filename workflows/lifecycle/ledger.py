"""Deleting runs and documents from the ledger in bounded batches, and the original files no row
names any more. Shared by retention and by deleting a workflow.

Why batches: a run can hold a million decisions. One transaction per batch of BATCH_ITEMS items (their
labels, review tasks, dead letters and decisions first, then the items) holds locks on those rows
only, for a short time, while the executor keeps writing other runs; a purge stopped half-way leaves
whole documents gone and the rest intact, and the next purge carries on. Nothing locks the tables.

Files: the artifact store (models/blobs.py) is content-addressed, so one file may be the original of
rows in many runs. A file is deleted after the transaction that removed its last Original row
committed, and only if no row names its sha256 then (nor an upload still on its way to a run holds it).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet

from workflows.models import DeadLetter, Decision, Item, Label, Original, ReviewTask, Run, blobs

logger = logging.getLogger(__name__)


def batch_items() -> int:
    return int(getattr(settings, "RETENTION_BATCH_ITEMS", 2000))


def deleted(queryset: QuerySet) -> int:
    """Rows of the queryset's own model deleted (cascades are counted by their own kind)."""
    return queryset.delete()[1].get(queryset.model._meta.label, 0)


def delete_items(run_id: int, item_ids: list[int], tally: Counter) -> None:
    """Delete these items of one run and everything made from them; the caller holds the transaction."""
    tally["labels"] += deleted(Label.objects.filter(item_id__in=item_ids))
    tally["review_tasks"] += deleted(ReviewTask.objects.filter(item_id__in=item_ids))
    tally["dead_letters"] += deleted(DeadLetter.objects.filter(item_id__in=item_ids))
    # (run, item) is the prefix of the ledger's unique index: this reads only these items' rows.
    tally["decisions"] += deleted(Decision.objects.filter(run_id=run_id, item_id__in=item_ids))
    tally["items"] += deleted(Item.objects.filter(pk__in=item_ids))


def delete_run_items(run_id: int, tally: Counter, *, budget: int | None = None) -> bool:
    """Delete a run's items batch by batch, one transaction each; True when none is left (False when
    `budget` batches ran out first)."""
    size = batch_items()
    while budget is None or budget > 0:
        ids = list(Item.objects.filter(run_id=run_id).order_by("id").values_list("id", flat=True)[:size])
        if not ids:
            return True
        with transaction.atomic():
            delete_items(run_id, ids, tally)
        tally["batches"] += 1
        if budget is not None:
            budget -= 1
    return not Item.objects.filter(run_id=run_id).exists()


def delete_run(run_id: int, tally: Counter, shas: set[str]) -> None:
    """Delete an emptied run with its shards, stats, budgets and Original rows (their shas are added to
    `shas` for `remove_unreferenced`); labels of the run left without an item go too."""
    with transaction.atomic():
        shas.update(Original.objects.filter(run_id=run_id).values_list("sha256", flat=True))
        tally["originals"] += Original.objects.filter(run_id=run_id).count()
        tally["labels"] += deleted(Label.objects.filter(run_id=run_id))
        tally["runs"] += deleted(Run.objects.filter(pk=run_id))


def remove_unreferenced(shas: Iterable[str]) -> int:
    """Delete the stored files of these shas that no Original row names any more; the number deleted.
    Called after the deleting transaction committed. A hold does not keep them: the runs that took them
    are gone (an erasure must not wait a day)."""
    try:
        return blobs.release(shas, holds=False)
    except OSError:  # a local copy that cannot be removed: the rows are gone, the next purge retries
        logger.exception("could not delete every original of %s", sorted(set(shas))[:5])
        return 0
