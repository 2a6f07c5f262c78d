"""Object lookups that check permission: the one way pages, the API and sockets fetch an object a
user asked for by id or name.

Each answers the object, or raises Http404 (no such object, or the user may not even know it
exists) or PermissionDenied (the user may see it but not do `capability`); refusals are audited by
`roles.deny`. What a role may do is decided in roles.py; this module only applies it to objects.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.utils.translation import gettext

from workflows.models import (
    ModelJob,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
    ReviewTask,
    Run,
    Workflow,
    WorkflowVersion,
)
from workflows.roles import ADMIN, BUSINESS_OWNER, can, deny, require, roles_of


def get_workflow_for_user(user: Any, pk: Any, capability: str = "workflow.view") -> Workflow:
    """The workflow, if the user may see it (else 404) and do `capability` on it (else 403)."""
    if not can(user, "workflow.view"):
        # Users without a role learn nothing, not even whether the workflow exists.
        deny(user, "workflow.view", object_type="workflows.workflow", object_id=pk)
        raise Http404(gettext("No such workflow."))
    try:
        workflow = Workflow.objects.get(pk=pk)
    except (Workflow.DoesNotExist, ValueError, TypeError):
        raise Http404(gettext("No such workflow.")) from None
    if capability != "workflow.view" and not can(user, capability):
        raise deny(user, capability, workflow)
    return workflow


def get_run_for_user(user: Any, pk: Any, capability: str = "run.view") -> Run:
    """The run, if the user may see it (else 404) and do `capability` on it (else 403)."""
    if not can(user, "run.view"):
        deny(user, "run.view", object_type="workflows.run", object_id=pk)
        raise Http404(gettext("No such run."))
    try:
        run = Run.objects.select_related("workflow", "version", "created_by").get(pk=pk)
    except (Run.DoesNotExist, ValueError, TypeError):
        raise Http404(gettext("No such run.")) from None
    if capability != "run.view" and not can(user, capability):
        raise deny(user, capability, run)
    return run


def get_model_for_user(user: Any, name: str) -> RegisteredModel:
    require(user, "model.view")
    try:
        return RegisteredModel.objects.prefetch_related("aliases__version__model").get(name=name)
    except RegisteredModel.DoesNotExist:
        raise Http404(gettext("No such model.")) from None


def get_version_for_user(user: Any, name: str, number: Any) -> ModelVersion:
    model = get_model_for_user(user, name)
    try:
        return model.versions.select_related("model", "parent__model", "author", "trained_by").get(number=number)
    except (ModelVersion.DoesNotExist, ValueError, TypeError):
        raise Http404(gettext("No such version.")) from None


def get_promotion_for_user(user: Any, pk: Any) -> PromotionRequest:
    require(user, "model.view")
    try:
        return PromotionRequest.objects.select_related("version__model", "requested_by", "decided_by", "labelled_set",
                                                       "previous_version").get(pk=pk)
    except (PromotionRequest.DoesNotExist, ValueError, TypeError):
        raise Http404(gettext("No such promotion request.")) from None


def get_job_for_user(user: Any, pk: Any) -> ModelJob:
    require(user, "model.view")
    job = ModelJob.objects.select_related("model", "base_version__model", "result_version__model", "labelled_set",
                                          "created_by").filter(pk=pk).first()
    if job is None:
        raise Http404(gettext("No such job."))
    return job


def get_review_task_for_user(user: Any, pk: Any) -> ReviewTask:
    require(user, "review.work")
    try:
        return ReviewTask.objects.select_related("item").get(pk=pk)
    except (ReviewTask.DoesNotExist, ValueError, TypeError):
        raise Http404(gettext("No such review task.")) from None


# --- business KPIs: a designer or operator sees the KPIs of their own workflows only --------------


def kpi_workflows(user: Any) -> Any:
    """Business owners and admins: every workflow. Designers and operators: their own — workflows they
    created, saved a version of, or started a run of. Everyone else: none (kpi.view refused)."""
    if not can(user, "kpi.view"):
        return Workflow.objects.none()
    if roles_of(user) & {BUSINESS_OWNER, ADMIN}:
        return Workflow.objects.all()
    return Workflow.objects.filter(
        Q(created_by=user)
        | Exists(WorkflowVersion.objects.filter(workflow=OuterRef("pk"), author=user))
        | Exists(Run.objects.filter(workflow=OuterRef("pk"), created_by=user)))


def get_kpi_workflow(user: Any, pk: Any, capability: str = "kpi.view") -> Workflow:
    """The workflow if the user may see its KPIs (else 403, audited) and do `capability` (else 403)."""
    if not can(user, "kpi.view"):
        raise deny(user, "kpi.view", object_type="workflows.workflow", object_id=pk)
    try:
        workflow = kpi_workflows(user).get(pk=pk)
    except (Workflow.DoesNotExist, ValueError, TypeError):
        if Workflow.objects.filter(pk=pk if str(pk).isdigit() else -1).exists():
            raise deny(user, "kpi.view", object_type="workflows.workflow", object_id=pk,
                       reason="not their workflow") from None
        raise Http404(gettext("No such workflow.")) from None
    if capability != "kpi.view" and not can(user, capability):
        raise deny(user, capability, workflow)
    return workflow
