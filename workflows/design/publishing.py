"""Publishing: the one way a workflow's live version moves.

Saving makes a draft (design/versions.py); runs, REST intake, schedules, mailboxes and inbound
webhooks use the live version (`Workflow.live`). Publishing makes a runnable version live: the same
checks a run start makes (validation, a plan, every model reference pinned, the data-residency
policy), every problem said at once. Where the workflow needs a second person
(`Workflow.publish_needs_approval`, set by administrators), publishing files a PublishRequest that
another person decides under the four-eyes rule that promotions use (workflows/four_eyes.py): the
requester and the authors of the draft may not approve it. The live version moves, its schedules are
put in step and the audit entry `workflow.published` (from, to) is written in one transaction, under
the workflow's row lock, which is also what keeps one request open per workflow.

The checks that depend on the process (a handler for every node type) and on where items come from
(a source node for the origin) stay at run start (engine/launch.py: check_runnable), which starts
from `readiness` here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from workflows.design import texts
from workflows.design.references import graph_resolvers, policy_problems, resolve_models
from workflows.design.schedules import sync_schedules
from workflows.four_eyes import FourEyes
from workflows.graph.plan import Plan, PlanError, plan
from workflows.models import Workflow, WorkflowVersion
from workflows.models.audit import record
from workflows.models.graph import PublishRequest
from workflows.notifications import events as notifications
from workflows.roles import can, deny, require

# The four-eyes rule of publications: the same rule as promotions (workflows/four_eyes.py).
FOUR_EYES = FourEyes(
    capability="workflow.publish_approve", refused="workflow.publish.refused",
    no_role=gettext_noop("Only a designer or a validator can approve or reject a publication."),
    requester=gettext_noop("You asked for this publication; another person must decide it."),
    maker=gettext_noop("You edited this draft; another person must decide its publication."))


class Unpublishable(ValidationError):
    """The version cannot go live; `problems` says every reason, each how to fix it."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(problems)


# Checks of a plan that layers above this one hand in at start-up (apps.py): the engine's, that every
# step has a handler installed. Each returns its problems, in the reader's language.
PLAN_CHECKS: list[Callable[[Plan], list[str]]] = []


@dataclass
class Readiness:
    """What a run start needs of a version: its plan and pinned models, or every problem."""

    plan: Plan | None = None
    models: dict[str, dict] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def readiness(version: WorkflowVersion) -> Readiness:
    """The version's plan and model pins, and every reason (in the reader's language) it cannot run."""
    if not version.is_runnable:
        said = "; ".join(texts.problem_json(p)["text"] for p in version.problems if p.get("severity") == "error")
        return Readiness(problems=[gettext("Version %(number)s has problems to fix before it can run: %(problems)s")
                                   % {"number": version.number, "problems": said}])
    graph = version.as_graph()
    try:
        the_plan = plan(graph, **graph_resolvers())
    except PlanError as exc:
        return Readiness(problems=[texts.translate(p.message) for p in exc.problems])
    problems = [problem for check in PLAN_CHECKS for problem in check(the_plan)]
    problems += policy_problems(version.workflow, graph)
    try:
        models = resolve_models(graph, version.workflow)
    except LookupError as exc:
        problems.append(str(exc))
        models = {}
    return Readiness(plan=the_plan, models=models, problems=problems)


def publish_problems(workflow: Workflow, version: WorkflowVersion) -> list[str]:
    problems = readiness(version).problems
    if workflow.archived:
        problems.insert(0, gettext("The workflow is archived: restore it before publishing a version."))
    return problems


def draft_makers(workflow: Workflow, version: WorkflowVersion) -> set[int | None]:
    """Who made what publishing `version` would put live: the authors of every version since the live
    one up to it (only its own author when it is not newer than the live one)."""
    since = workflow.published or 0
    if version.number <= since:
        return {version.author_id}
    return set(workflow.versions.filter(number__gt=since, number__lte=version.number)
               .values_list("author_id", flat=True))


def publish(workflow: Workflow, version: WorkflowVersion, *, user: Any, reason: str = "") -> PublishRequest | None:
    """Make `version` live, or, where the workflow needs a second person, file a request for it
    (returned; None when the version went live at once).

    Raises Unpublishable (every problem) or ValidationError (already live, a request already open)."""
    require(user, "workflow.publish", workflow)
    if version.workflow_id != workflow.pk:
        raise ValidationError(gettext("Version %(number)s is not a version of this workflow.")
                              % {"number": version.number})
    problems = publish_problems(workflow, version)
    if problems:
        raise Unpublishable(problems)
    with transaction.atomic():
        # The workflow's row is the lock: two publishers, or two requests, wait for each other here.
        locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
        if locked.published == version.number:
            raise ValidationError(gettext("Version %(number)s already is the live version.")
                                  % {"number": version.number})
        if not locked.publish_needs_approval:
            _go_live(locked, version, user=user)
            workflow.published = locked.published
            return None
        pending = PublishRequest.objects.filter(workflow=locked, decision=PublishRequest.OPEN).first()
        if pending is not None:
            raise ValidationError(gettext("The request to publish version %(number)s is still open: approve, "
                                          "reject or cancel it first.") % {"number": pending.version.number})
        request = PublishRequest.objects.create(workflow=locked, version=version, requested_by=user,
                                                reason=(reason or "").strip())
        record("workflow.publish.request", actor=user, obj=locked, request=request.pk, version=version.number,
               live=locked.published, reason=request.reason)
        notifications.publication_waiting(request, may_decide=lambda who: not why_not_decide(request, who))
    return request


def publish_if_runnable(workflow: Workflow, version: WorkflowVersion, *, user: Any) -> bool:
    """A new workflow's first version goes live when it can run, so the gallery → run flow stays one step
    (the creator holds workflow.edit, which publishing a workflow nobody else has seen needs)."""
    if publish_problems(workflow, version):
        return False
    locked = Workflow.objects.select_for_update().get(pk=workflow.pk)
    _go_live(locked, version, user=user, first=True)
    workflow.published = locked.published
    return True


def _go_live(locked: Workflow, version: WorkflowVersion, *, user: Any, **audit: Any) -> None:
    """Move the live version (the caller holds the workflow's row), its schedules with it, and audit."""
    previous = locked.published
    Workflow.objects.filter(pk=locked.pk).update(published=version.number)
    locked.published = version.number
    sync_schedules(locked, version.as_graph())
    record("workflow.published", actor=user, obj=locked, checksum=version.checksum,
           **{"from": previous, "to": version.number}, **audit)


def why_not_decide(request: PublishRequest, user: Any) -> str:
    """Why `user` may not decide this request (in English), or "" when they may."""
    return FOUR_EYES.why_not(user, requested_by=request.requested_by_id,
                             makers=draft_makers(request.workflow, request.version), obj=request)


def _check_four_eyes(request: PublishRequest, user: Any) -> None:
    FOUR_EYES.check(user, request, requested_by=request.requested_by_id,
                    makers=draft_makers(request.workflow, request.version), workflow=request.workflow_id,
                    version=request.version.number)


def _locked_open(request: PublishRequest) -> tuple[Workflow, PublishRequest]:
    locked = Workflow.objects.select_for_update().get(pk=request.workflow_id)
    request = PublishRequest.objects.select_for_update().select_related("version").get(pk=request.pk)
    if not request.is_open:
        raise ValidationError(gettext("This request to publish version %(number)s is already %(decision)s.")
                              % {"number": request.version.number, "decision": request.get_decision_display()})
    return locked, request


def approve(request: PublishRequest, *, user: Any, reason: str = "") -> PublishRequest:
    """A second person puts the requested version live (checked again: the registry may have changed)."""
    _check_four_eyes(request, user)
    with transaction.atomic():
        locked, request = _locked_open(request)
        problems = publish_problems(locked, request.version)
        if problems:
            raise Unpublishable(problems)
        previous = locked.published
        _go_live(locked, request.version, user=user, request=request.pk,
                 requested_by=request.requested_by.get_username() if request.requested_by_id else None)
        _decide(request, PublishRequest.APPROVED, user=user, reason=reason, previous=previous)
        record("workflow.publish.approve", actor=user, obj=locked, request=request.pk,
               version=request.version.number, previous=previous, reason=request.decision_reason)
        notifications.publication_decided(request)
    return request


def reject(request: PublishRequest, *, user: Any, reason: str) -> PublishRequest:
    _check_four_eyes(request, user)
    if not (reason or "").strip():
        raise ValidationError(gettext("Give the reason for rejecting, so the designer knows what to fix."))
    with transaction.atomic():
        locked, request = _locked_open(request)
        _decide(request, PublishRequest.REJECTED, user=user, reason=reason, previous=locked.published)
        record("workflow.publish.reject", actor=user, obj=locked, request=request.pk,
               version=request.version.number, reason=request.decision_reason)
        notifications.publication_decided(request)
    return request


def may_cancel(request: PublishRequest, user: Any) -> bool:
    """The requester withdraws their request; whoever may decide it may also drop it."""
    return user.pk == request.requested_by_id or can(user, "workflow.publish_approve", request)


def cancel(request: PublishRequest, *, user: Any) -> PublishRequest:
    if not may_cancel(request, user):
        raise deny(user, "workflow.publish", request)
    with transaction.atomic():
        locked, request = _locked_open(request)
        _decide(request, PublishRequest.CANCELLED, user=user, reason="", previous=locked.published)
        record("workflow.publish.cancel", actor=user, obj=locked, request=request.pk,
               version=request.version.number)
    return request


def _decide(request: PublishRequest, decision: str, *, user: Any, reason: str, previous: int | None) -> None:
    request.decision = decision
    request.decided_by = user
    request.decided_at = timezone.now()
    request.decision_reason = (reason or "").strip()
    request.previous = previous
    request.save(update_fields=["decision", "decided_by", "decided_at", "decision_reason", "previous"])


def open_request(workflow: Workflow) -> PublishRequest | None:
    return (PublishRequest.objects.filter(workflow=workflow, decision=PublishRequest.OPEN)
            .select_related("version", "requested_by").first())


def set_policy(workflow: Workflow, *, needs_approval: bool, user: Any) -> Workflow:
    """Whether publishing this workflow needs a second person: administrators only."""
    require(user, "workflow.policy", workflow)
    with transaction.atomic():
        Workflow.objects.select_for_update().filter(pk=workflow.pk).update(publish_needs_approval=needs_approval)
        workflow.publish_needs_approval = needs_approval
        record("workflow.publish.policy", actor=user, obj=workflow, needs_approval=needs_approval)
    return workflow
