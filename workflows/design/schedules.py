"""A workflow's schedules as its live version declares them: one Schedule row per
`source.schedule` node, kept in step whenever a version is published (engine/schedules.py fires them)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter
from django.conf import settings
from django.utils import timezone

from workflows.models.datasets import Schedule


def next_fire(cron: str, after: dt.datetime) -> dt.datetime:
    """The next firing after `after`; cron is read in the installation's time zone (TIME_ZONE, Europe/Rome
    by default)."""
    local = after.astimezone(ZoneInfo(settings.TIME_ZONE))
    return croniter(cron, local).get_next(dt.datetime).astimezone(dt.UTC)


def sync_schedules(workflow: Any, graph: Any, now: dt.datetime | None = None) -> None:
    """Make the workflow's Schedule rows match the source.schedule nodes of `graph` (its live version)."""
    now = now or timezone.now()
    wanted = {}
    for node in graph.nodes:
        if node.type == "source.schedule":
            cron, dataset = node.config.get("cron"), node.config.get("dataset")
            if isinstance(cron, str) and croniter.is_valid(cron) and isinstance(dataset, str) and dataset:
                wanted[node.id] = (cron.strip(), dataset)
    Schedule.objects.filter(workflow=workflow).exclude(node__in=list(wanted)).delete()
    for node_id, (cron, dataset) in wanted.items():
        schedule, created = Schedule.objects.get_or_create(
            workflow=workflow, node=node_id,
            defaults={"cron": cron, "dataset": dataset, "next_fire_at": next_fire(cron, now)})
        if not created and (schedule.cron != cron or schedule.dataset != dataset):
            schedule.cron, schedule.dataset, schedule.next_fire_at = cron, dataset, next_fire(cron, now)
            schedule.save(update_fields=["cron", "dataset", "next_fire_at"])
