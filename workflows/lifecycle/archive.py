"""Archiving (reversible) and deleting (not) a workflow.

An archived workflow is hidden from lists (Workflow.objects.listed()), starts no run and takes no
intake (engine/launch.py refuses both, which the webhook and mailbox channels report as the workflow
not being ready, taking nothing), fires no schedule (engine/schedules.py skips it), and its live
intake runs are closed so that they finish. Restoring it undoes all of that; nothing was deleted.

Deleting needs an archived workflow with no active run, and removes its runs (in batches, as
retention does: lifecycle/ledger.py), versions, schedules, the data sets only its schedules read,
its mailbox, webhook sources, baseline and KPI weeks. Its audit entries stay (they name it by id).
A workflow with signed weekly packs cannot be deleted: a signed pack is kept for good.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from workflows import statuses
from workflows.engine.launch import close_live_run
from workflows.models import Dataset, Run, Schedule, WeeklyPack, Workflow, WorkflowVersion
from workflows.models.audit import record

from . import ledger


class LifecycleError(ValidationError):
    """The workflow is not in a state that allows this; the message says what to do first."""


def archive(workflow: Workflow, *, user: Any) -> bool:
    """Archive the workflow; False when it already was (nothing written)."""
    with transaction.atomic():
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
        if locked.archived:
            return False
        now = timezone.now()
        Workflow.objects.filter(pk=workflow.pk).update(archived=True, archived_at=now)
        closed = 0
        for run in Run.objects.filter(workflow=workflow, is_live=True, status__in=statuses.ACTIVE_RUN_STATUSES):
            close_live_run(run)
            closed += 1
        record("workflow.archive", actor=user, obj=workflow, live_runs_closed=closed)
    workflow.archived, workflow.archived_at = True, now
    return True


def restore(workflow: Workflow, *, user: Any) -> bool:
    """Bring an archived workflow back; False when it was not archived."""
    with transaction.atomic():
        changed = Workflow.objects.filter(pk=workflow.pk, archived=True).update(archived=False, archived_at=None)
        if changed:
            record("workflow.restore", actor=user, obj=workflow)
    if changed:
        workflow.archived, workflow.archived_at = False, None
    return bool(changed)


def delete_problem(workflow: Workflow) -> str | None:
    """Why the workflow cannot be deleted now, or None."""
    if not workflow.archived:
        return gettext("Archive the workflow first: only an archived workflow can be deleted.")
    active = Run.objects.filter(workflow=workflow, status__in=statuses.ACTIVE_RUN_STATUSES).count()
    if active:
        return ngettext("It has %(count)s active run: cancel it or let it finish, then delete.",
                        "It has %(count)s active runs: cancel them or let them finish, then delete.",
                        active) % {"count": active}
    packs = WeeklyPack.objects.filter(workflow=workflow).count()
    if packs:
        return ngettext("It has %(count)s signed weekly pack, which is kept for good: keep the workflow archived.",
                        "It has %(count)s signed weekly packs, which are kept for good: keep the workflow "
                        "archived.", packs) % {"count": packs}
    return None


def delete(workflow: Workflow, *, user: Any) -> dict[str, int]:
    """Delete an archived workflow and everything it holds (see the module docstring); the counts.
    LifecycleError when it may not be deleted now."""
    problem = delete_problem(Workflow.objects.get(pk=workflow.pk))
    if problem:
        raise LifecycleError(problem)
    counts: Counter = Counter()
    shas: set[str] = set()
    # Runs first, in batches: a run may hold a million decisions. Each one is final (checked above), so
    # no worker writes to it meanwhile; a new run cannot start, the workflow being archived.
    for run_id in list(Run.objects.filter(workflow=workflow).order_by("id").values_list("id", flat=True)):
        ledger.delete_run_items(run_id, counts)
        ledger.delete_run(run_id, counts, shas)
    with transaction.atomic():
        locked = Workflow.objects.select_for_update().filter(pk=workflow.pk).first()
        if locked is None:
            raise LifecycleError(gettext("The workflow was deleted meanwhile."))
        problem = delete_problem(locked)
        if problem:  # restored, or a run started, while the runs were being deleted
            raise LifecycleError(problem)
        names = set(Schedule.objects.filter(workflow=workflow).values_list("dataset", flat=True))
        # A data set is its team's: kept while another workflow of the team schedules it.
        shared = set(Schedule.objects.filter(dataset__in=names, workflow__team_id=workflow.team_id)
                     .exclude(workflow=workflow).values_list("dataset", flat=True))
        counts["datasets"] += ledger.deleted(Dataset.objects.filter(team_id=workflow.team_id, name__in=names - shared))
        counts["schedules"] = Schedule.objects.filter(workflow=workflow).count()
        counts["versions"] = workflow.versions.count()
        name = locked.name
        # A version protects its parent, which always has a lower number: newest first, each goes unreferenced.
        for version_id in list(WorkflowVersion.objects.filter(workflow=workflow).order_by("-number")
                               .values_list("pk", flat=True)):
            WorkflowVersion.objects.filter(pk=version_id).delete()
        Workflow.objects.filter(pk=workflow.pk).delete()
        record("workflow.delete", actor=user, object_type=Workflow._meta.label_lower, object_id=workflow.pk,
               name=name, **{k: counts[k] for k in ("runs", "items", "decisions", "labels", "review_tasks",
                                                    "originals", "datasets", "schedules", "versions")})
    counts["files"] = ledger.remove_unreferenced(shas)
    return dict(counts)
