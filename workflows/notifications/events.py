"""Writing notifications: `notify`, who receives each kind, and one function per event.

A notification must never break the action that triggers it: every function here writes inside a
savepoint of its own (the caller's transaction, when there is one, so a rolled-back action notifies
nobody) and logs instead of raising. The event's `key` makes a repeat a no-op, per person.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from datetime import date
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.urls import reverse

from workflows.models import Notification, NotificationPreference
from workflows.models import notifications as kinds
from workflows.roles import ADMIN, CAPABILITIES, ORGANISATION_WIDE

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Who is told of each kind when the event names nobody in particular: a capability of roles.py,
# so that whoever may act on the event hears of it.
WHO = {
    kinds.DRIFT: ("promotion.request",),  # may roll back; designers may also route the step to review
    kinds.REVIEW_BACKLOG: ("review.work",),
    kinds.PROMOTION_WAITING: ("promotion.approve",),
    kinds.SCHEDULE_FAILED: ("workflow.edit",),
    kinds.RUN_FAILED: ("workflow.edit",),
    kinds.BUDGET_EXHAUSTED: ("endpoint.manage",),
    kinds.PACK_READY: ("pack.sign",),
    kinds.PUBLICATION_WAITING: ("workflow.publish_approve",),
}


def mail_configured() -> bool:
    """E-mail goes out only when an SMTP server is named; without one (`make run`) people are told in the app."""
    return bool(settings.EMAIL_HOST)


def users_with(capability: str, team: int | None = None) -> Any:
    """Active users whose role grants `capability` (superusers count as administrators, as in roles.py):
    in `team` (an organisation-wide role, or a membership of that team), else anywhere."""
    allowed = CAPABILITIES[capability]
    members = Q(memberships__role__in=allowed)
    if team is not None:
        members &= Q(memberships__team_id=team)
    who = Q(groups__name__in=allowed) | (Q() if capability in ORGANISATION_WIDE else members)
    if ADMIN in allowed:
        who |= Q(is_superuser=True)
    return get_user_model().objects.filter(who, is_active=True).distinct()


def _recipients(to: Iterable[Any], team: int | None = None) -> list[Any]:
    """Users and capability names (held in `team` when given), as one list of distinct active users."""
    users: dict[int, Any] = {}
    for entry in to:
        if entry is None:
            continue
        for user in (users_with(entry, team) if isinstance(entry, str) else [entry]):
            if user.is_active:
                users.setdefault(user.pk, user)
    return list(users.values())


def never_raises(write: Callable[..., T]) -> Callable[..., T | int]:
    """Run `write` in a savepoint; on any error roll the savepoint back, log, and answer 0."""

    @functools.wraps(write)
    def guarded(*args: Any, **kwargs: Any) -> T | int:
        try:
            with transaction.atomic():
                return write(*args, **kwargs)
        except Exception:
            logger.exception("notification %s not written", write.__name__)
            return 0

    return guarded


@never_raises
def notify(kind: str, params: dict[str, Any], *, key: str, link: str = "", to: Iterable[Any] | None = None,
           team: int | None = None) -> int:
    """Tell `to` (users and/or capabilities; default: WHO[kind]) that `kind` happened. `params` fill the
    kind's sentence in each reader's language; `key` names the event; an event of a workflow names its
    `team`, so that capabilities reach only people with a role there. Answers how many people were told
    (a person told of this event before is not told again)."""
    if kind not in kinds.KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    users = _recipients(WHO.get(kind, ()) if to is None else to, team)
    if not users:
        return 0
    ids = [u.pk for u in users]
    wanted = {p.user_id: p for p in NotificationPreference.objects.filter(user__in=ids, kind=kind)}
    already = set(Notification.objects.filter(user__in=ids, key=key[:200]).values_list("user_id", flat=True))
    mail = mail_configured()
    rows = []
    for user in (u for u in users if u.pk not in already):
        preference = wanted.get(user.pk)
        in_app = preference.in_app if preference else True
        email = mail and bool(user.email) and (preference.email if preference else True)
        if in_app or email:
            rows.append(Notification(user=user, kind=kind, params=params, link=link[:500], key=key[:200],
                                     in_app=in_app, email=email))
    # ON CONFLICT DO NOTHING on (user, key): a second worker writing the same event at the same moment
    # tells nobody twice either (it then counts people the other told).
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


# --- one function per event: each builds its parameters inside the guard, so a caller adds one line --------

@never_raises
def drift_alert(workflow: Any, node: str, model_ref: str) -> int:
    # Once per model version at a step: a version promoted later is judged afresh.
    return notify(kinds.DRIFT, {"workflow": workflow.name, "node": node, "model": model_ref},
                  key=f"drift:{workflow.pk}:{node}:{model_ref}", link=reverse("drift"), team=workflow.team_id)


@never_raises
def promotion_waiting(request: Any, may_decide: Callable[[Any], bool]) -> int:
    """Validators who may decide `request` (four eyes: `may_decide`, from governance) are told it waits."""
    validators = [v for v in users_with("promotion.approve") if may_decide(v)]
    return notify(kinds.PROMOTION_WAITING, _promotion_params(request), to=validators,
                  key=f"promotion.waiting:{request.pk}", link=reverse("promotion-detail", args=[request.pk]))


@never_raises
def promotion_decided(request: Any) -> int:
    params = {**_promotion_params(request), "decision": request.status,
              "decided_by": request.decided_by.get_username() if request.decided_by_id else "",
              "reason": request.decision_reason or ""}
    return notify(kinds.PROMOTION_DECIDED, params, to=[request.requested_by],
                  key=f"promotion.decided:{request.pk}", link=reverse("promotion-detail", args=[request.pk]))


@never_raises
def publication_waiting(request: Any, may_decide: Callable[[Any], bool]) -> int:
    """Those who may approve `request` (four eyes: `may_decide`, from design/publishing) are told it waits."""
    deciders = [u for u in users_with("workflow.publish_approve", request.workflow.team_id) if may_decide(u)]
    return notify(kinds.PUBLICATION_WAITING, _publication_params(request), to=deciders,
                  key=f"publication.waiting:{request.pk}", link=reverse("workflow-detail", args=[request.workflow_id]))


@never_raises
def publication_decided(request: Any) -> int:
    params = {**_publication_params(request), "decision": request.decision,
              "decided_by": request.decided_by.get_username() if request.decided_by_id else "",
              "reason": request.decision_reason or ""}
    return notify(kinds.PUBLICATION_DECIDED, params, to=[request.requested_by] if request.requested_by_id else [],
                  key=f"publication.decided:{request.pk}", link=reverse("workflow-detail", args=[request.workflow_id]))


def _publication_params(request: Any) -> dict[str, Any]:
    workflow = request.workflow
    return {"workflow": workflow.name, "version": request.version.number, "live": workflow.published or "-",
            "requested_by": request.requested_by.get_username() if request.requested_by_id else ""}


def _promotion_params(request: Any) -> dict[str, Any]:
    version = request.version
    return {"number": request.pk, "version": version.ref, "alias": f"{version.model.name}@{request.alias}",
            "requested_by": request.requested_by.get_username() if request.requested_by_id else ""}


@never_raises
def schedule_failed(schedule: Any, reason: str, fired_at: Any) -> int:
    workflow = schedule.workflow
    return notify(kinds.SCHEDULE_FAILED, {"workflow": workflow.name, "node": schedule.node, "reason": reason[:500]},
                  key=f"schedule.failed:{schedule.pk}:{fired_at.isoformat()}",
                  link=reverse("workflow-detail", args=[workflow.pk]), team=workflow.team_id)


@never_raises
def run_failed(run: Any, finished_at: Any) -> int:
    """The person who started the run; a run nobody started (a schedule, an inbox) tells its editors."""
    starter = run.created_by if run.created_by_id else None
    return notify(kinds.RUN_FAILED, {"run": run.pk, "workflow": run.workflow.name, "total": run.items_total,
                                     "dead": run.items_dead},
                  to=[starter] if starter is not None and starter.is_active else None,
                  key=f"run.failed:{run.pk}:{finished_at.isoformat()}", link=reverse("run-detail", args=[run.pk]),
                  team=run.workflow.team_id)


@never_raises
def budget_exhausted(budget: Any) -> int:
    """A node's budget in a run: its workflow's editors and whoever started the run. An endpoint's
    monthly budget: the administrators, who set it."""
    if budget.scope == budget.NODE:
        run = budget.run
        params = {"scope": budget.scope, "node": budget.node, "run": run.pk, "workflow": run.workflow.name}
        to: list[Any] = ["workflow.edit", run.created_by if run.created_by_id else None]
        link = reverse("run-detail", args=[run.pk])
        team = run.workflow.team_id
    else:
        params = {"scope": budget.scope, "endpoint": budget.endpoint, "month": budget.month}
        to = ["endpoint.manage"]
        link = reverse("endpoint-list")
        team = None
    return notify(kinds.BUDGET_EXHAUSTED, params, to=to, key=f"budget.exhausted:{budget.pk}", link=link, team=team)


@never_raises
def pack_ready(workflow: Any, monday: date, week: str) -> int:
    return notify(kinds.PACK_READY, {"workflow": workflow.name, "week": week},
                  key=f"pack.ready:{workflow.pk}:{monday.isoformat()}",
                  link=reverse("kpi-pack", args=[workflow.pk, week]), team=workflow.team_id)
