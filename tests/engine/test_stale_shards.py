"""One slow or poisonous shard must not pin worker after worker: a heartbeat thread keeps a shard
that is still computing from being taken for dead, and a shard found stale too often is given up,
its items dead-lettered with the reason."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone

from tests.engine.helpers import make_runnable_workflow, tickets
from workflows import statuses
from workflows.engine import launch
from workflows.engine.executor import run_shard
from workflows.engine.monitor import requeue_stale_shards
from workflows.engine.nodes.models import ExtractHandler
from workflows.models import DeadLetter, Item, Run, Shard


@pytest.mark.django_db(transaction=True)  # the heartbeat thread writes through its own connection
def test_a_batch_longer_than_the_stale_limit_is_not_taken_for_dead(personas, settings, monkeypatch):
    settings.ENGINE_STALE_SECONDS = 1
    settings.ENGINE_HEARTBEAT_SECONDS = 0.1
    settings.ENGINE_BATCH_SIZE = 4
    seen = []
    original = ExtractHandler.process

    def slow(self, batch, step):
        time.sleep(1.6)  # one batch outlasts ENGINE_STALE_SECONDS
        seen.append(requeue_stale_shards())  # the monitor of another worker looks now
        return original(self, batch, step)

    monkeypatch.setattr(ExtractHandler, "process", slow)
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(4))
    shard = run.shards.get()
    result = run_shard(shard.pk, shard.attempt)
    assert seen == [0], "the monitor re-enqueued a shard that was still computing"
    shard.refresh_from_db()
    assert shard.attempt == 1 and shard.status == Shard.DONE and result["items"] == 4


@pytest.mark.django_db
def test_a_shard_stale_too_often_is_given_up_with_its_items_dead_lettered(personas, settings):
    settings.ENGINE_MAX_SHARD_ATTEMPTS = 3
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(6))
    shard = run.shards.get()
    long_ago = timezone.now() - dt.timedelta(seconds=settings.ENGINE_STALE_SECONDS + 5)
    Run.objects.filter(pk=run.pk).update(status=statuses.RUNNING)
    for attempt in (1, 2):  # two workers died on it: re-enqueued each time
        Shard.objects.filter(pk=shard.pk).update(status=Shard.RUNNING, heartbeat=long_ago)
        assert requeue_stale_shards() == 1
        assert Shard.objects.get(pk=shard.pk).attempt == attempt + 1
    Shard.objects.filter(pk=shard.pk).update(status=Shard.RUNNING, heartbeat=long_ago)
    assert requeue_stale_shards() == 0  # the third time it is given up, not re-enqueued
    shard.refresh_from_db()
    assert shard.status == Shard.FAILED and shard.attempt == 4  # a worker still on attempt 3 is fenced out
    assert Item.objects.filter(run=run, status=Item.DEAD).count() == 6
    letters = DeadLetter.objects.filter(run=run)
    assert letters.count() == 6 and all("Given up after 3 attempts" in d.reason for d in letters)
    run.refresh_from_db()
    assert run.items_dead == 6 and run.status == statuses.FAILED
    assert launch.retry_dead_letters(run, user=personas["operator"]) == 6  # and they can be retried
