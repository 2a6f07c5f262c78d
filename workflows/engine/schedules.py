"""Scheduled runs: a source.schedule node's cron fires a batch run on a stored data set.

Schedules follow the workflow's live version (design/publishing.py puts them in step when a version
is published; a saved draft changes nothing) and fire runs of it. Any number of workers
tick the monitor: firing claims the schedule with a conditional UPDATE on its next fire time, so one
firing starts exactly one run.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from workflows.design.schedules import next_fire
from workflows.engine.intake import IntakeError, load_items
from workflows.engine.launch import StartError, create_run
from workflows.models.audit import record
from workflows.models.datasets import Dataset, Schedule
from workflows.notifications import events as notifications

logger = logging.getLogger(__name__)


def fire_due_schedules(now: dt.datetime | None = None) -> int:
    """Start a run for every schedule that is due; returns how many runs started."""
    now = now or timezone.now()
    started = 0
    # An archived workflow fires nothing: its schedules wait, and fire again once it is restored.
    due = Schedule.objects.filter(enabled=True, next_fire_at__lte=now, workflow__archived=False)
    for schedule in due.select_related("workflow"):
        following = next_fire(schedule.cron, now)
        claimed = Schedule.objects.filter(pk=schedule.pk, next_fire_at=schedule.next_fire_at).update(
            next_fire_at=following, last_fired_at=now)
        if claimed != 1:
            continue  # another worker fired it
        started += fire(schedule)
    return started


def fire(schedule: Any) -> int:
    try:
        # Only a data set of the workflow's own team: names are unique per team, not across teams.
        dataset = Dataset.objects.get(team_id=schedule.workflow.team_id, name=schedule.dataset)
        _, items = load_items(bytes(dataset.content), dataset.filename, dataset.mapping or None)
        with transaction.atomic():
            run = create_run(schedule.workflow, user=None, items=items, origin="schedule", input_name=dataset.filename,
                             mapping=dataset.mapping)
            Schedule.objects.filter(pk=schedule.pk).update(last_run=run, last_error="")
        return 1
    except (Dataset.DoesNotExist, IntakeError, StartError) as exc:
        reason = f"data set '{schedule.dataset}' does not exist" if isinstance(exc, Dataset.DoesNotExist) else str(exc)
        logger.warning("schedule %s did not start: %s", schedule.pk, reason)
        Schedule.objects.filter(pk=schedule.pk).update(last_error=reason[:2000])
        record("schedule.failed", obj=schedule.workflow, node=schedule.node, reason=reason[:500])
        # The firing it claimed names the event: the next failure of the same schedule is news again.
        notifications.schedule_failed(schedule, reason, schedule.next_fire_at or timezone.now())
        return 0
