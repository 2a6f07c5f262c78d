"""The monitor duty (run_worker adds it to every worker's monitor thread): send the digests that are
due, and run each periodic check at most once every NOTIFY_CHECK_MINUTES across all workers.

The review backlog is checked here (it needs only the tables). Checks of higher layers — drift in
governance/, the weekly packs in kpi/ — are handed in by the process that builds the duty:

    Duty(checks={"drift": drift.notify_alerts, "packs": pack.notify_ready_packs})
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Count, Min
from django.urls import reverse
from django.utils import timezone

from workflows.models import NotificationCheck, ReviewTask
from workflows.models import notifications as kinds
from workflows.models.teams import GENERAL

from .digest import send_digests
from .events import notify

logger = logging.getLogger(__name__)
Check = Callable[[datetime], int]


def claim(name: str, now: datetime) -> bool:
    """True for the one caller that runs check `name` in this period (the healthchecks claim: a
    conditional UPDATE that changes exactly one row, or none)."""
    row, created = NotificationCheck.objects.get_or_create(name=name, defaults={"ran_at": now})
    if created:
        return True
    if row.ran_at > now - timedelta(minutes=settings.NOTIFY_CHECK_MINUTES):
        return False
    return NotificationCheck.objects.filter(name=name, ran_at=row.ran_at).update(ran_at=now) == 1


def check_review_backlog(now: datetime) -> int:
    """Tell each team's reviewers (its operators and the organisation's) when more of the team's
    escalations wait than NOTIFY_REVIEW_BACKLOG, or its oldest has waited longer than
    NOTIFY_REVIEW_SLA_HOURS: at most once a day for each, while it lasts. Counted per team: a member of
    one team learns nothing of another's queue."""
    waiting = (ReviewTask.objects.filter(status=ReviewTask.OPEN, kind=ReviewTask.ESCALATION)
               .values("run__workflow__team", "run__workflow__team__name")
               .annotate(n=Count("id"), oldest=Min("created_at")).order_by("run__workflow__team"))
    day = timezone.localdate(now).isoformat()
    told = 0
    limit, sla = settings.NOTIFY_REVIEW_BACKLOG, settings.NOTIFY_REVIEW_SLA_HOURS
    for row in waiting:
        team, count, oldest = row["run__workflow__team"], row["n"], row["oldest"]
        # General is every organisation's first team: its queue is "the review queue", unnamed.
        name = "" if row["run__workflow__team__name"] == GENERAL else row["run__workflow__team__name"]
        if limit and count > limit:
            told += notify(kinds.REVIEW_BACKLOG, {"reason": "count", "open": count, "limit": limit, "team": name},
                           key=f"review.backlog:count:{team}:{day}", link=reverse("review-queue"), team=team)
        if sla and oldest is not None and now - oldest > timedelta(hours=sla):
            hours = int((now - oldest).total_seconds() // 3600)
            told += notify(kinds.REVIEW_BACKLOG,
                           {"reason": "age", "open": count, "hours": hours, "sla": sla, "team": name},
                           key=f"review.backlog:age:{team}:{day}", link=reverse("review-queue"), team=team)
    return told


class Duty:
    """One pass: digests every tick, each check once per period; a failing check is logged and the
    others still run."""

    def __init__(self, checks: Mapping[str, Check] | None = None):
        self.checks: dict[str, Check] = {"review_backlog": check_review_backlog, **(checks or {})}

    def __call__(self, now: datetime | None = None) -> dict[str, int]:
        now = now or timezone.now()
        done = {"digests": send_digests(now)}
        for name, check in self.checks.items():
            try:
                if claim(name, now):
                    done[name] = check(now)
            except Exception:
                logger.exception("notification check %s failed", name)
        return done


tick = Duty()
