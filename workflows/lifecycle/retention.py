"""Retention: a workflow keeps its documents for N days after they finished, then they are purged.

What goes: runs that finished before the cutoff with their items, decisions, review tasks, dead
letters, stats, budgets and labels; in runs still open (a live intake run lasts months) the documents
that finished before it; the data sets the workflow's schedules read, stored before it; the original
files no remaining row names; the sender and subject kept of e-mails taken before it.

What stays: KPI weeks (KpiWeek, signed WeeklyPack) are aggregates without personal data. Before a
purge the workflow's weeks are brought up to date and every week up to the cutoff is frozen
(`Workflow.purged_before`, read by kpi/rollup.py), so they are never counted again from a ledger that
no longer holds them. A registered model version trained on purged labels keeps what it stores of
them, the content hashes of its training documents (governance/labelsets.py `training_hashes`):
enough to keep a set that shares documents with its training data from judging it, no text.

Each purge is bounded (PURGE_BATCHES batches of lifecycle/ledger.py per call) and writes one audit
entry with the counts; the monitor duty claims a workflow with a conditional UPDATE of
`retention_checked_at`, so N workers purge it once per RETENTION_PURGE_SECONDS.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from workflows import statuses
from workflows.kpi import rollup
from workflows.models import Dataset, Item, MailboxMessage, Original, Run, Schedule, Workflow, blobs
from workflows.models.audit import record

from . import ledger

MIN_DAYS = 7  # under a week, documents could go before their run finishes or a reviewer gets to them
MAX_DAYS = 3650
PURGE_BATCHES = 50
DUE_PER_TICK = 5
COUNTS = ("runs", "items", "decisions", "labels", "review_tasks", "dead_letters", "datasets", "originals", "files",
          "mail_messages")


def parse_days(value: Any) -> int | None:
    """Days as a page or the API sends them: empty or null for "keep", else a whole number in range.
    ValidationError says what to type."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        value = "x"
    try:
        days = int(str(value).strip())
    except ValueError:
        days = None
    if days is None or not MIN_DAYS <= days <= MAX_DAYS:
        raise ValidationError(gettext("Retention is a whole number of days from %(min)s to %(max)s, or empty to "
                                      "keep documents.") % {"min": MIN_DAYS, "max": MAX_DAYS})
    return days


def set_retention(workflow: Workflow, days: int | None, *, user: Any) -> Workflow:
    """Set (or clear, with None) how many days the workflow keeps documents; audited with before and after."""
    if days is not None and not MIN_DAYS <= days <= MAX_DAYS:
        raise ValidationError(gettext("Retention is a whole number of days from %(min)s to %(max)s, or empty to "
                                      "keep documents.") % {"min": MIN_DAYS, "max": MAX_DAYS})
    with transaction.atomic():
        before = Workflow.objects.select_for_update().values_list("retention_days", flat=True).get(pk=workflow.pk)
        # A new retention is looked at by the next tick, not an hour later.
        Workflow.objects.filter(pk=workflow.pk).update(retention_days=days, retention_checked_at=None)
        record("workflow.retention", actor=user, obj=workflow, before=before, after=days)
    workflow.retention_days, workflow.retention_checked_at = days, None
    return workflow


@dataclass
class Purge:
    cutoff: dt.datetime
    counts: Counter = field(default_factory=Counter)
    complete: bool = True

    @property
    def removed(self) -> bool:
        return any(self.counts[name] for name in COUNTS)


def purge(workflow: Workflow, *, now: dt.datetime | None = None, batches: int = PURGE_BATCHES) -> Purge:
    """Purge what the workflow keeps past its retention (see the module docstring); nothing when it has none."""
    now = now or timezone.now()
    days = Workflow.objects.values_list("retention_days", flat=True).get(pk=workflow.pk)
    result = Purge(cutoff=now - dt.timedelta(days=days or 0))
    if not days:
        return result
    cutoff, counts = result.cutoff, result.counts
    freeze_kpis(workflow, cutoff)
    shas: set[str] = set()
    budget = [batches]

    def spend() -> bool:
        return budget[0] > 0

    old_runs = (Run.objects.filter(workflow=workflow, status__in=statuses.FINAL_RUN_STATUSES)
                .filter(Q(finished_at__lt=cutoff) | Q(finished_at__isnull=True, created_at__lt=cutoff))
                .order_by("id").values_list("id", flat=True))
    for run_id in list(old_runs):
        if not spend():
            break
        before = counts["batches"]
        emptied = ledger.delete_run_items(run_id, counts, budget=budget[0])
        budget[0] -= counts["batches"] - before
        if not emptied:
            break
        ledger.delete_run(run_id, counts, shas)
    if spend():
        _purge_open_runs(workflow, cutoff, counts, shas, budget)
    result.complete = spend() or not (old_runs.exists() or _old_items(workflow, cutoff).exists())
    with transaction.atomic():
        names = set(Schedule.objects.filter(workflow=workflow).values_list("dataset", flat=True))
        counts["datasets"] += ledger.deleted(Dataset.objects.filter(team_id=workflow.team_id, name__in=names,
                                                                    created_at__lt=cutoff))
        counts["mail_messages"] += (MailboxMessage.objects.filter(mailbox__workflow=workflow, created_at__lt=cutoff)
                                    .exclude(sender="", subject="").update(sender="", subject=""))
    counts["files"] += ledger.remove_unreferenced(shas)
    if result.removed:
        record("retention.purge", obj=workflow, days=days, cutoff=cutoff, complete=result.complete,
               **{name: counts[name] for name in COUNTS})
    return result


def _old_items(workflow: Workflow, cutoff: dt.datetime) -> Any:
    """Finished documents of runs still open (live intake, waiting for reviews) that finished before the cutoff."""
    return Item.objects.filter(run__workflow=workflow, run__status__in=statuses.ACTIVE_RUN_STATUSES,
                               status__in=[Item.DONE, Item.DEAD], finished_at__lt=cutoff)


def _purge_open_runs(workflow: Workflow, cutoff: dt.datetime, counts: Counter, shas: set[str],
                     budget: list[int]) -> None:
    size = ledger.batch_items()
    while budget[0] > 0:
        rows = list(_old_items(workflow, cutoff).order_by("run_id", "id").values_list("run_id", "id")[:size])
        if not rows:
            return
        by_run: dict[int, list[int]] = {}
        for run_id, item_id in rows:
            by_run.setdefault(run_id, []).append(item_id)
        with transaction.atomic():
            for run_id, ids in by_run.items():
                ledger.delete_items(run_id, ids, counts)
                # The run's originals taken before the cutoff that none of its remaining documents names.
                for original in Original.objects.filter(run_id=run_id, created_at__lt=cutoff):
                    if not Item.objects.filter(run_id=run_id, payload__original=original.sha256).exists():
                        shas.add(original.sha256)
                        counts["originals"] += ledger.deleted(Original.objects.filter(pk=original.pk))
        counts["batches"] += 1
        budget[0] -= 1


def freeze_kpis(workflow: Workflow, cutoff: dt.datetime) -> None:
    """Roll the workflow's KPI weeks up from the ledger while it still holds them, then freeze every
    week up to the cutoff's (kpi/rollup.py leaves frozen weeks as they are)."""
    rollup.ensure_fresh([workflow.pk])
    current = Workflow.objects.values_list("purged_before", flat=True).get(pk=workflow.pk)
    if current is None or current < cutoff:
        Workflow.objects.filter(pk=workflow.pk).update(purged_before=cutoff)


def due(now: dt.datetime) -> list[tuple[int, dt.datetime | None]]:
    every = dt.timedelta(seconds=float(getattr(settings, "RETENTION_PURGE_SECONDS", 3600)))
    return list(Workflow.objects.filter(retention_days__isnull=False)
                .filter(Q(retention_checked_at__isnull=True) | Q(retention_checked_at__lt=now - every))
                .order_by("retention_checked_at", "pk").values_list("pk", "retention_checked_at")[:DUE_PER_TICK])


def tick(now: dt.datetime | None = None) -> dict[str, int]:
    """Monitor duty: purge the workflows due, each claimed by one worker (a conditional UPDATE of
    retention_checked_at from the value read). A purge cut short by its batch budget gives its claim
    back, so the next tick carries on. And sweep the stored files whose hold has passed (an original
    previewed and never run, an abandoned staged upload): one indexed query when there are none."""
    now = now or timezone.now()
    totals: Counter = Counter()
    totals["files_swept"] += blobs.sweep()
    for pk, checked in due(now):
        claimed = Workflow.objects.filter(pk=pk, retention_checked_at=checked) if checked else \
            Workflow.objects.filter(pk=pk, retention_checked_at__isnull=True)
        if claimed.filter(retention_days__isnull=False).update(retention_checked_at=now) != 1:
            continue
        result = purge(Workflow.objects.get(pk=pk), now=now)
        if not result.complete:
            Workflow.objects.filter(pk=pk, retention_checked_at=now).update(retention_checked_at=None)
        totals["retention_purged_items"] += result.counts["items"]
        totals["retention_purged_runs"] += result.counts["runs"]
    return {"retention_purged_runs": totals["retention_purged_runs"],
            "retention_purged_items": totals["retention_purged_items"], "files_swept": totals["files_swept"]}
