"""New classifiers: from the registry (a name and labels) or for one classify step of a workflow.

Thin: parse, authorise, call governance/classifiers.py, redirect to the model page, where the
classifier is trained from its labels.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from workflows.access import get_workflow_for_user
from workflows.governance import classifiers
from workflows.roles import require


@login_required
@require_http_methods(["POST"])
def classifier_create(request: HttpRequest) -> HttpResponse:
    require(request.user, "model.train")
    try:
        model = classifiers.create_classifier(name=request.POST.get("name", ""), labels=request.POST.get("labels", ""),
                                              description=request.POST.get("description", ""), user=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("model-list")
    messages.success(request, gettext("Classifier %(name)s registered. Upload a labelled set or let reviewers label "
                                      "documents, then train its first version.") % {"name": model.name})
    return redirect("model-detail", name=model.name)


@login_required
@require_http_methods(["POST"])
def node_classifier(request: HttpRequest, pk: int, node: str) -> HttpResponse:
    """"Train a classifier for this step": the step's own classifier (made now if it has none yet)."""
    workflow = get_workflow_for_user(request.user, pk)
    require(request.user, "model.train", workflow)
    model = classifiers.classifier_for_node(workflow, node[:64], user=request.user)
    if model is None:
        messages.error(request, gettext("Step '%(node)s' is not a classify step of the saved workflow; save the "
                                        "workflow first.") % {"node": node[:64]})
        return redirect("workflow-detail", pk=workflow.pk)
    return redirect("model-detail", name=model.name)
