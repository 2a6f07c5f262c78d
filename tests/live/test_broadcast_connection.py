"""The worker's flush thread keeps one database connection while it watches a run, and lets it go after.

A run of a few seconds is flushed five times a second plus its status checks: opening a connection
per flush started and ended a PostgreSQL backend each time (~50 a run), work that competed with the
model calls for the worker's cores.
"""

from __future__ import annotations

import threading
import time

import pytest
from django.db.backends.signals import connection_created
from django.db.models import F
from django.utils import timezone

from workflows import statuses
from workflows.live.broadcast import Broadcaster
from workflows.live.groups import COALESCE_SECONDS
from workflows.live.snapshot import run_signature
from workflows.models import NodeStats, Run


def wait(check, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def opened():
    """Names of the threads that opened a database connection meanwhile, one entry per connection."""
    names: list[str] = []

    def note(sender, connection, **kwargs):
        names.append(threading.current_thread().name)

    connection_created.connect(note)
    yield names
    connection_created.disconnect(note)


def test_one_connection_serves_every_flush_of_a_watched_run_and_is_closed_when_it_ends(make_run, opened):
    run = make_run(8)
    Run.objects.filter(pk=run.pk).update(status=statuses.RUNNING, started_at=timezone.now())
    events: list[dict] = []
    broadcaster = Broadcaster(send=events.append)
    for batch in range(6):
        NodeStats.objects.filter(run=run, node="ext").update(items_in=F("items_in") + 1, batches=F("batches") + 1)
        broadcaster.notify(run.pk, ["ext"])
        wait(lambda batch=batch: len(events) > batch)
        time.sleep(COALESCE_SECONDS + 0.05)  # each batch its own flush
    assert len(events) >= 6
    assert opened.count("live-broadcast") == 1, opened
    assert broadcaster.holding

    Run.objects.filter(pk=run.pk).update(status=statuses.SUCCEEDED, finished_at=timezone.now())
    wait(lambda: not broadcaster.holding)  # the status check announced the end, then let go
    assert events[-1]["signature"] == list(run_signature(Run.objects.get(pk=run.pk)))
    assert opened.count("live-broadcast") == 1
    broadcaster.quiesce()


def test_quiesce_makes_the_flush_thread_let_go_of_its_connection_at_once(make_run, opened):
    run = make_run(8)
    Run.objects.filter(pk=run.pk).update(status=statuses.RUNNING, started_at=timezone.now())
    events: list[dict] = []
    broadcaster = Broadcaster(send=events.append)
    broadcaster.notify(run.pk, ["ext"])
    wait(lambda: events and broadcaster.holding and not broadcaster.busy)
    started = time.monotonic()
    broadcaster.quiesce()
    assert not broadcaster.holding and not broadcaster.busy
    assert time.monotonic() - started < 0.4  # not the status check's next turn (0.5 s)
