"""Pages of the data lifecycle: a workflow's retention, archive and delete (its lifecycle page and
the buttons on its canvas), and erasure of a person's data on request. Every change goes through
workflows/lifecycle/, as the API's do."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST

from workflows.access import get_workflow_for_user
from workflows.lifecycle import archive, erasure, places, retention
from workflows.models import ErasureRequest, Run, Schedule
from workflows.roles import can, deny, require

LIFECYCLE_CAPABILITIES = ("data.retention", "workflow.archive", "workflow.delete")


def _first_error(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _lifecycle_context(request: HttpRequest, workflow: Any, **extra: Any) -> dict[str, Any]:
    return {
        "workflow": workflow, "min_days": retention.MIN_DAYS, "max_days": retention.MAX_DAYS,
        "runs": Run.objects.filter(workflow=workflow).count(),
        "schedules": Schedule.objects.filter(workflow=workflow).count(),
        "delete_problem": archive.delete_problem(workflow),
        "can_retention": can(request.user, "data.retention", workflow),
        "can_archive": can(request.user, "workflow.archive", workflow),
        "can_delete": can(request.user, "workflow.delete", workflow), **extra,
    }


@login_required
def workflow_lifecycle(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk)
    if not any(can(request.user, c, workflow) for c in LIFECYCLE_CAPABILITIES):
        raise deny(request.user, "workflow.archive", workflow)
    return render(request, "lifecycle/workflow.html", _lifecycle_context(request, workflow))


@login_required
@require_POST
def workflow_retention(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk, "data.retention")
    try:
        days = retention.parse_days(request.POST.get("retention_days"))
    except ValidationError as exc:
        context = _lifecycle_context(request, workflow, retention_error=_first_error(exc),
                                     typed=request.POST.get("retention_days", ""))
        return render(request, "lifecycle/workflow.html", context, status=400)
    retention.set_retention(workflow, days, user=request.user)
    if days is None:
        messages.success(request, gettext("'%(name)s' now keeps its documents.") % {"name": workflow.name})
    else:
        messages.success(request, gettext("'%(name)s' now keeps documents for %(days)s days after they finish.")
                         % {"name": workflow.name, "days": days})
    return redirect("workflow-lifecycle", pk=workflow.pk)


@login_required
@require_POST
def workflow_archive(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk, "workflow.archive")
    if archive.archive(workflow, user=request.user):
        messages.success(request, gettext("'%(name)s' is archived: it is hidden from lists and takes no new runs, "
                                          "intake or schedules. Restore it to use it again.") % {"name": workflow.name})
    return redirect("workflow-lifecycle", pk=workflow.pk)


@login_required
@require_POST
def workflow_restore(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk, "workflow.archive")
    if archive.restore(workflow, user=request.user):
        messages.success(request, gettext("'%(name)s' is restored.") % {"name": workflow.name})
    return redirect("workflow-lifecycle", pk=workflow.pk)


@login_required
@require_POST
def workflow_delete(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk, "workflow.delete")
    problem = archive.delete_problem(workflow)
    if problem is None and request.POST.get("confirm_name", "").strip() != workflow.name:
        problem = gettext("Type the workflow's name exactly to confirm that it is to be deleted.")
    if problem is None:
        try:
            archive.delete(workflow, user=request.user)
        except ValidationError as exc:
            problem = _first_error(exc)
    if problem:
        context = _lifecycle_context(request, workflow, delete_error=problem)
        return render(request, "lifecycle/workflow.html", context, status=400)
    messages.success(request, gettext("'%(name)s' and its runs are deleted; its audit entries stay.")
                     % {"name": workflow.name})
    return redirect("workflow-list")


# --- erasure on request ---------------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def erasure_page(request: HttpRequest) -> HttpResponse:
    require(request.user, "data.erase")
    recent = ErasureRequest.objects.select_related("requested_by", "erased_by")[:20]
    context: dict[str, Any] = {"recent": recent, "identifier": "", "kinds": places.TITLES}
    if request.method == "GET":
        return render(request, "lifecycle/erasure.html", context)
    identifier = request.POST.get("identifier", "")
    context["identifier"] = identifier
    try:
        if request.POST.get("action") == "confirm":
            done = erasure.confirm(request.POST.get("token"), identifier, user=request.user)
            erased = [(places.TITLES[k], done.erased.get(k, 0)) for k in places.ORDER]
            return render(request, "lifecycle/erasure.html", {**context, "identifier": "", "done": done,
                                                              "erased": erased})
        found = erasure.search(identifier, user=request.user)
    except ValidationError as exc:
        return render(request, "lifecycle/erasure.html", {**context, "error": _first_error(exc)}, status=400)
    return render(request, "lifecycle/erasure.html", {**context, "search": found})


urlpatterns = [
    path("workflows/<int:pk>/lifecycle/", workflow_lifecycle, name="workflow-lifecycle"),
    path("workflows/<int:pk>/lifecycle/retention/", workflow_retention, name="workflow-retention"),
    path("workflows/<int:pk>/lifecycle/archive/", workflow_archive, name="workflow-archive"),
    path("workflows/<int:pk>/lifecycle/restore/", workflow_restore, name="workflow-restore"),
    path("workflows/<int:pk>/lifecycle/delete/", workflow_delete, name="workflow-delete"),
    path("erasure/", erasure_page, name="erasure"),
]
