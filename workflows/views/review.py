"""The review queue: operators accept or correct the model's proposal; each decision resumes the item."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from workflows.access import get_review_task_for_user
from workflows.governance import review
from workflows.models import ReviewTask
from workflows.roles import require


@login_required
def review_queue(request: HttpRequest) -> HttpResponse:
    require(request.user, "review.work")
    queue = request.GET.get("queue") or ""
    tasks = list(review.open_tasks(queue)[:100])
    for task in tasks:
        decision = review.model_decision(task)
        task.proposed = review.proposal_of(task)
        task.decision = decision
        task.choices = review.allowed_labels(task, decision)
        task.text = (task.item.payload or {}).get("text") or (task.item.payload or {}).get("subject") or ""
    queues = sorted(set(ReviewTask.objects.filter(status=ReviewTask.OPEN).values_list("queue", flat=True)))
    context = {"tasks": tasks, "queue": queue, "queues": queues, "accuracy": review.live_accuracy(),
               "open_count": review.open_tasks(queue).count()}
    return render(request, "review/queue.html", context)


@login_required
@require_http_methods(["POST"])
def review_decide(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_review_task_for_user(request.user, pk)
    try:
        label = review.decide(task, user=request.user, label=request.POST.get("label") or "")
        if label is None:
            messages.error(request, gettext("Someone else decided this item already."))
        elif label.corrected:
            messages.success(request, gettext("Item %(item)s: corrected to '%(label)s'.")
                             % {"item": task.item.seq, "label": label.label})
        else:
            messages.success(request, gettext("Item %(item)s: accepted '%(label)s'.")
                             % {"item": task.item.seq, "label": label.label})
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    queue = request.POST.get("queue") or ""
    return redirect(f"{reverse('review-queue')}?queue={queue}" if queue else "review-queue")
