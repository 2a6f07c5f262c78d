"""Object lookups that check permission: the one way pages, the API and sockets fetch an object a
user asked for by id or name.

Each answers the object, or raises Http404 (no such object, or the user may not even know it
exists: no role at all in the object's team) or PermissionDenied (the user has a role there but not
one that may do `capability`); refusals are audited by `roles.deny`. What a role may do is decided in
roles.py; this module only applies it to objects.

Lists go through one helper too: `visible_workflows` (and `restrict` for anything of a workflow:
runs, review tasks, schedules, data sets), used by pages, the API and sockets alike, so a list never
shows what a lookup would refuse.
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
    Team,
    Workflow,
    WorkflowVersion,
)
from workflows.models.teams import general_team_pk
from workflows.roles import ADMIN, BUSINESS_OWNER, can, deny, require, roles_of, roles_on, team_roles, teams_where

# --- lists: one helper, every page, endpoint and socket ------------------------------------------


def restrict(queryset: Any, user: Any, capability: str, team_field: str = "workflow__team") -> Any:
    """`queryset` narrowed to the teams where the user may do `capability` (`team_field` leads from its
    rows to their team). Unchanged for an organisation-wide role, empty for a user with no role."""
    teams = teams_where(user, capability)
    if teams is None:
        return queryset
    return queryset.filter(**{f"{team_field}__in": teams})


def visible_workflows(user: Any, capability: str = "workflow.view") -> Any:
    """The workflows the user may do `capability` on (archived ones too: callers filter)."""
    return restrict(Workflow.objects.all(), user, capability, "team")


def visible_workflow_ids(user: Any, capability: str = "workflow.view") -> set[int] | None:
    """The ids of `visible_workflows`, for filtering rows already computed (None: every workflow)."""
    if teams_where(user, capability) is None:
        return None
    return set(visible_workflows(user, capability).values_list("pk", flat=True))


def visible_teams(user: Any, capability: str) -> list[Team]:
    """The teams where the user may do `capability`, by name."""
    return list(restrict(Team.objects.all(), user, capability, "pk"))


def _hidden(user: Any, capability: str, obj: Any, message: str) -> Http404:
    """A 404 for an object of a team where the user has no role at all (audited, since it exists)."""
    deny(user, capability, obj, reason="not a member of its team")
    return Http404(message)


def _check(user: Any, obj: Any, team_id: int, capability: str, seeing: str, message: str) -> None:
    if not roles_on(user, team_id):
        raise _hidden(user, seeing, obj, message)
    if not can(user, capability, obj):
        raise deny(user, capability, obj)


def get_team_for_user(user: Any, pk: Any, capability: str) -> Team:
    """The team, if the user has a role there (else 404) that may do `capability` (else 403)."""
    try:
        team = Team.objects.get(pk=pk)
    except (Team.DoesNotExist, ValueError, TypeError):
        raise Http404(gettext("No such team.")) from None
    _check(user, team, team.pk, capability, capability, gettext("No such team."))
    return team


def team_for_new(user: Any, chosen: Any, capability: str) -> Team:
    """The team something a user creates goes to: the one they chose (where they must hold `capability`);
    without a choice, their only team if they belong to one, else the General team. A user in several
    teams without an organisation-wide role must choose (ValueError says so)."""
    if chosen not in (None, ""):
        try:
            return get_team_for_user(user, chosen, capability)
        except Http404:  # a field of a form, not the object of the request: said like any bad field
            raise ValueError(gettext("No such team.")) from None
    teams = teams_where(user, capability)
    if teams is None:
        return Team.objects.get(pk=general_team_pk())
    if len(teams) == 1:
        return Team.objects.get(pk=next(iter(teams)))
    if not teams:
        raise deny(user, capability, object_type="workflows.team")
    raise ValueError(gettext("You belong to several teams: choose the team it belongs to."))


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
    _check(user, workflow, workflow.team_id, capability, "workflow.view", gettext("No such workflow."))
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
    _check(user, run, run.workflow.team_id, capability, "run.view", gettext("No such run."))
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
        task = ReviewTask.objects.select_related("item", "run__workflow").get(pk=pk)
    except (ReviewTask.DoesNotExist, ValueError, TypeError):
        raise Http404(gettext("No such review task.")) from None
    _check(user, task, task.run.workflow.team_id, "review.work", "review.work", gettext("No such review task."))
    return task


# --- business KPIs: a designer or operator sees the KPIs of their own workflows only --------------


def kpi_workflows(user: Any) -> Any:
    """Business owners and admins: every workflow of their teams (every team for an organisation-wide
    role). Designers and operators: their own there — workflows they created, saved a version of, or
    started a run of. Everyone else: none (kpi.view refused)."""
    seen = visible_workflows(user, "kpi.view")
    overseers = {BUSINESS_OWNER, ADMIN}
    if roles_of(user) & overseers:
        return seen
    whole = [team_id for team_id, roles in team_roles(user).items() if roles & overseers]
    return seen.filter(
        Q(team__in=whole)
        | Q(created_by=user)
        | Exists(WorkflowVersion.objects.filter(workflow=OuterRef("pk"), author=user))
        | Exists(Run.objects.filter(workflow=OuterRef("pk"), created_by=user)))


def get_kpi_workflow(user: Any, pk: Any, capability: str = "kpi.view") -> Workflow:
    """The workflow if the user may see its KPIs (else 403, audited; 404 outside their teams) and do
    `capability` (else 403)."""
    if not can(user, "kpi.view"):
        raise deny(user, "kpi.view", object_type="workflows.workflow", object_id=pk)
    try:
        workflow = kpi_workflows(user).get(pk=pk)
    except (Workflow.DoesNotExist, ValueError, TypeError):
        other = Workflow.objects.filter(pk=pk if str(pk).isdigit() else -1).first()
        if other is not None and not roles_on(user, other.team_id):
            raise _hidden(user, "kpi.view", other, gettext("No such workflow.")) from None
        if other is not None:
            raise deny(user, "kpi.view", other, reason="not their workflow") from None
        raise Http404(gettext("No such workflow.")) from None
    if capability != "kpi.view" and not can(user, capability, workflow):
        raise deny(user, capability, workflow)
    return workflow
