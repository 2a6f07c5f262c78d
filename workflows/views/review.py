"""The review queue: operators check what the line produced for an item and accept or correct it.

Escalations (items parked for a person) and spot checks (a sample of items a model decided alone)
are two tabs of one page; governance/review.py decides both.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_http_methods

from workflows.access import get_review_task_for_user, restrict, visible_workflow_ids
from workflows.governance import review
from workflows.governance.accuracy import live_accuracy
from workflows.models import ReviewTask
from workflows.roles import require


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    require(request.user, "review.work")
    queue = request.GET.get("queue") or ""
    kind = review.kind_of(request.GET.get("kind")) or ReviewTask.ESCALATION
    open_tasks = restrict(ReviewTask.objects.filter(status=ReviewTask.OPEN), request.user, "review.work",
                          "run__workflow__team")
    per_kind = dict(open_tasks.order_by().values_list("kind").annotate(n=Count("id")).values_list("kind", "n"))
    mine = restrict(review.open_tasks(queue, kind), request.user, "review.work", "run__workflow__team")
    context = {
        "tasks": review.task_views(mine[:100]), "queue": queue, "kind": kind,
        "spot": kind == ReviewTask.SPOT_CHECK,
        "queues": sorted(set(open_tasks.filter(kind=kind).values_list("queue", flat=True))),
        "open_count": mine.count() if queue else per_kind.get(kind, 0),
        "escalations_open": per_kind.get(ReviewTask.ESCALATION, 0),
        "spot_checks_open": per_kind.get(ReviewTask.SPOT_CHECK, 0),
        **accuracy_tables(visible_workflow_ids(request.user, "review.work")),
    }
    return render(request, "review/queue.html", context)


def accuracy_tables(workflow_ids: set[int] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Live accuracy per node and model version, spot checks and escalations as two tables (never mixed:
    governance/accuracy.py says why), each rate with its 95 % interval; of `workflow_ids` only (None: all)."""
    rows = [a for a in live_accuracy() if workflow_ids is None or a.workflow_id in workflow_ids]

    def table(part: str) -> list[dict[str, Any]]:
        return [{"workflow": a.workflow, "node": a.node, "model_ref": a.model_ref, "reviewed": rate.n,
                 "correct": rate.correct, "accuracy": rate.rate, "low": rate.low, "high": rate.high}
                for a in rows if (rate := getattr(a, part)).n]

    return {"spot_accuracy": table("spot"), "accuracy": table("escalated"),
            "accuracy_window_days": settings.ACCURACY_WINDOW_DAYS}


@login_required
@require_http_methods(["POST"])
def review_decide(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_review_task_for_user(request.user, pk)
    # Each output is its own input: "field.<name>" for an extracted field, "text.<name>" for the
    # summary or the drafted answer; only what the page sent is compared with what the line produced.
    fields = {k.removeprefix("field."): v for k, v in request.POST.items() if k.startswith("field.")}
    texts = {k.removeprefix("text."): v for k, v in request.POST.items() if k.startswith("text.")}
    try:
        decided = review.decide_task(task, user=request.user, label=request.POST.get("label") or "",
                                     fields=fields, texts=texts)
        if decided is None:
            messages.error(request, gettext("Someone else decided this item already."))
        else:
            messages.success(request, _said(task, decided))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    query = {k: request.POST[k] for k in ("queue", "kind") if request.POST.get(k)}
    return redirect(f"{reverse('review-queue')}?{urlencode(query)}" if query else "review-queue")


def _said(task: ReviewTask, decided: review.Decided) -> str:
    label = decided.label
    if label is not None and label.corrected:
        said = gettext("Item %(item)s: corrected to '%(label)s'.") % {"item": task.item.seq, "label": label.label}
    else:
        said = gettext("Item %(item)s: accepted '%(label)s'.") % {"item": task.item.seq,
                                                                   "label": label.label if label else "—"}
    if decided.corrections:
        count = len(decided.corrections)
        said += " " + ngettext("%(count)s output corrected: %(fields)s.", "%(count)s outputs corrected: %(fields)s.",
                               count) % {"count": count, "fields": ", ".join(c.field for c in decided.corrections)}
    return said
