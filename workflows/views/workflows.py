"""Workflow pages: the list, creating a workflow, and the diff between two versions (the canvas is
views/canvas.py). One view per page; htmx requests get the named partial."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from workflows.access import get_workflow_for_user, team_for_new, visible_workflows
from workflows.design.diff_view import side_by_side
from workflows.design.versions import create_workflow
from workflows.graph import diff
from workflows.roles import require


@login_required
def workflow_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "workflow.view")
    archived = request.GET.get("archived") == "1"  # archived workflows are listed only when asked for
    mine = visible_workflows(request.user)
    workflows = mine.filter(archived=True) if archived else mine.listed()
    return render(request, "workflows/list.html", {"workflows": workflows, "archived": archived})


@login_required
@require_http_methods(["POST"])
def workflow_create(request: HttpRequest) -> HttpResponse:
    require(request.user, "workflow.edit")
    name = (request.POST.get("name") or "").strip()
    problem = "" if name and len(name) <= 200 else gettext("Give the workflow a name (up to 200 characters).")
    team = None
    if not problem:
        try:
            team = team_for_new(request.user, request.POST.get("team"), "workflow.edit")
        except ValueError as exc:
            problem = str(exc)
    if problem:
        return render(request, "workflows/list.html",
                      {"workflows": visible_workflows(request.user).listed(), "create_error": problem}, status=400)
    workflow, _ = create_workflow(name=name, description=request.POST.get("description", ""), graph=None,
                                  user=request.user, message="Created", team=team)
    return redirect("workflow-detail", pk=workflow.pk)


@login_required
def workflow_diff(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk)
    try:
        a, b = int(request.GET["from"]), int(request.GET["to"])
        old, new = workflow.versions.get(number=a), workflow.versions.get(number=b)
    except (KeyError, ValueError, workflow.versions.model.DoesNotExist):
        return HttpResponse(gettext("Pick two existing versions to compare."), status=400)
    if request.htmx:  # the history panel's short list
        context = {"workflow": workflow, "old": old, "new": new, "diff": diff(old.as_graph(), new.as_graph())}
        return render(request, "workflows/_diff.html", context)
    versions = workflow.versions.order_by("-number").values_list("number", flat=True)
    context = {"workflow": workflow, "old": old, "new": new, "sides": side_by_side(old.as_graph(), new.as_graph()),
               "versions": list(versions)}
    return render(request, "workflows/diff.html", context)
