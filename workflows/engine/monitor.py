"""The monitor: re-enqueues stale shards, finishes runs, flushes live runs, fires schedules.

It runs inside every `run_worker` process as a thread that ticks every ENGINE_MONITOR_SECONDS.
Why there and not as a self-re-enqueuing periodic task: a task chain dies with the worker that
holds its next link (a SIGKILL between "done" and "enqueue next" ends monitoring for good, and
nothing would notice), and a task waits behind long shards in the queue. A thread in each worker
monitors for as long as any worker lives, and ticks while the worker's main loop runs a long shard.
Every step is a conditional UPDATE, so N workers ticking at once do each thing once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connections, transaction
from django.db.models import F
from django.utils import timezone

from workflows import statuses
from workflows.models import DeadLetter, Item, Run, Shard
from workflows.models.audit import record

from .launch import enqueue_shard, flush_live_run, maybe_finish_run
from .schedules import fire_due_schedules

logger = logging.getLogger(__name__)


def requeue_stale_shards(now: dt.datetime | None = None) -> int:
    """Running shards whose heartbeat is older than ENGINE_STALE_SECONDS (the worker died or lost
    its connection), and queued shards whose task was claimed by a worker that died before claiming
    the shard: bump the attempt (fencing any zombie out) and enqueue a fresh task."""
    from django_tasks_db.models import DBTaskResult

    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.ENGINE_STALE_SECONDS)
    candidates = list(Shard.objects.filter(status=Shard.RUNNING, heartbeat__lt=cutoff)
                      .values_list("id", "attempt", "status")[:200])
    queued = list(Shard.objects.filter(status=Shard.QUEUED, heartbeat__lt=cutoff)
                  .values_list("id", "attempt", "status", "task_id")[:500])
    if queued:
        ready = {str(i) for i in DBTaskResult.objects.filter(
            id__in=[q[3] for q in queued if q[3]], status="READY").values_list("id", flat=True)}
        candidates += [(i, a, s) for i, a, s, task_id in queued if str(task_id) not in ready]
    moved = 0
    for shard_id, attempt, status in candidates:
        if attempt >= settings.ENGINE_MAX_SHARD_ATTEMPTS:
            give_up_shard(shard_id, attempt, status, cutoff, now)
            continue
        with transaction.atomic():
            changed = Shard.objects.filter(pk=shard_id, attempt=attempt, status=status, heartbeat__lt=cutoff).update(
                status=Shard.QUEUED, attempt=F("attempt") + 1, heartbeat=now, worker="")
            if changed:
                shard = Shard.objects.get(pk=shard_id)
                enqueue_shard(shard)
                moved += 1
                logger.warning("re-enqueued %s shard %s as attempt %s", status, shard_id, shard.attempt)
    return moved


def give_up_shard(shard_id: int, attempt: int, status: str, cutoff: dt.datetime, now: dt.datetime) -> bool:
    """A shard that went stale ENGINE_MAX_SHARD_ATTEMPTS times: every worker that ran it died or hung
    (an input that crashes a model, say). Its pending items become dead letters with the reason, so
    the run can finish and the items can be retried once the cause is fixed; the attempt is bumped,
    which fences out a worker still computing it."""
    with transaction.atomic():
        changed = Shard.objects.filter(pk=shard_id, attempt=attempt, status=status, heartbeat__lt=cutoff).update(
            status=Shard.FAILED, attempt=F("attempt") + 1, finished_at=now, worker="")
        if not changed:
            return False
        shard = Shard.objects.select_related("run").get(pk=shard_id)
        items = Item.objects.filter(run_id=shard.run_id, status=Item.PENDING)
        items = (items.filter(id__in=shard.item_ids) if shard.item_ids is not None
                 else items.filter(seq__gte=shard.start_seq, seq__lt=shard.end_seq))
        ids = list(items.values_list("id", flat=True))
        reason = (f"Given up after {attempt} attempts: each worker that ran this part of the run died or stopped "
                  f"answering (no heartbeat for {settings.ENGINE_STALE_SECONDS} s). Retry once the cause is fixed.")
        DeadLetter.objects.bulk_create([DeadLetter(run_id=shard.run_id, item_id=i, node="", reason=reason,
                                                   error_code="shard_abandoned", attempts=attempt) for i in ids])
        dead = Item.objects.filter(id__in=ids, status=Item.PENDING).update(status=Item.DEAD, finished_at=now)
        Run.objects.filter(pk=shard.run_id).update(items_dead=F("items_dead") + dead)
        record("shard.abandoned", obj=shard.run, shard=shard_id, attempts=attempt, items=dead)
    logger.error("gave up shard %s after %s attempts; %s items dead-lettered", shard_id, attempt, dead)
    maybe_finish_run(shard.run_id)
    return True


def finish_runs() -> int:
    open_runs = Run.objects.filter(status=statuses.RUNNING, is_live=False).exclude(
        shards__status__in=[Shard.QUEUED, Shard.RUNNING]).values_list("id", flat=True)[:100]
    return sum(1 for run_id in list(open_runs) if maybe_finish_run(run_id) in statuses.FINAL_RUN_STATUSES)


def flush_live_runs(now: dt.datetime | None = None) -> int:
    now = now or timezone.now()
    quiet = now - dt.timedelta(seconds=settings.ENGINE_INTAKE_FLUSH_SECONDS)
    runs = Run.objects.filter(status__in=statuses.ACTIVE_RUN_STATUSES, sharded_upto__lt=F("items_total"),
                              last_intake_at__lte=quiet).values_list("id", flat=True)[:100]
    return sum(flush_live_run(run_id) for run_id in list(runs))


def tick(now: dt.datetime | None = None) -> dict[str, int]:
    """One pass of every monitor duty; each is safe to run concurrently in N workers."""
    return {
        "requeued": requeue_stale_shards(now),
        "flushed": flush_live_runs(now),
        "finished": finish_runs(),
        "scheduled": fire_due_schedules(now),
    }


class MonitorThread(threading.Thread):
    """Runs `duties` every ENGINE_MONITOR_SECONDS: the executor's `tick`, and whatever the process
    adds (run_worker adds the governance take-over of silent jobs, which this layer does not import)."""

    def __init__(self, interval: float | None = None, duties: list[Callable[[], dict[str, int]]] | None = None):
        super().__init__(name="factory-monitor", daemon=True)
        self.interval = interval if interval is not None else settings.ENGINE_MONITOR_SECONDS
        self.duties = duties or [tick]
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(self.interval):
            try:
                close_old_connections()
            except Exception:  # a connection that cannot even be closed: drop them all, the duties reconnect
                logger.exception("monitor could not close old connections")
                connections.close_all()
            # Each duty on its own: one that fails (a killed connection, a locked SQLite file, a mail
            # server down) must not keep the duties after it from running this tick.
            for duty in self.duties:
                try:
                    result: Any = duty()
                except Exception:
                    logger.exception("monitor duty %s failed", getattr(duty, "__qualname__", duty))
                    connections.close_all()
                    continue
                if result and any(result.values()):
                    logger.info("monitor: %s", result)
        connections.close_all()

    def stop(self) -> None:
        self.stopping.set()
