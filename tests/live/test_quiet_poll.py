"""A socket reads its run row itself only when no update has come for a while.

The safety poll catches what nobody announced. While updates for the run arrive, whoever sends them
(the worker's broadcaster, or the web process's watcher in poll mode) also sends the run row's
changes, so reading it per socket only cost a database connection each time: with 50 sockets on a
running run, ten a second and about 45 % of the web process's CPU (bench/live.py).
"""

from __future__ import annotations

from django.db.models import F

from workflows.live import snapshot
from workflows.live.consumers import Tracker
from workflows.live.groups import SAFETY_POLL_SECONDS
from workflows.models import Run


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def an_update(run_id: int) -> dict:
    """The event the broadcaster sends for this run's current state, naming no node."""
    return snapshot.message(snapshot.load(run_id, set()))


def test_a_socket_hearing_updates_does_not_read_its_run_row(make_run, django_assert_num_queries):
    run = make_run(run_now=True)
    clock = Clock()
    tracker = Tracker("run", run.pk, clock=clock)
    tracker.snapshot()
    tracker.apply(an_update(run.pk))
    Run.objects.filter(pk=run.pk).update(items_total=F("items_total") + 5)  # a change nobody announced yet
    clock.now += SAFETY_POLL_SECONDS - 0.5
    with django_assert_num_queries(0):
        assert tracker.poll() is None


def test_after_a_quiet_interval_the_socket_reads_its_run_row_again(make_run):
    run = make_run(run_now=True)
    clock = Clock()
    tracker = Tracker("run", run.pk, clock=clock)
    tracker.snapshot()
    tracker.apply(an_update(run.pk))
    Run.objects.filter(pk=run.pk).update(items_total=F("items_total") + 5)
    clock.now += SAFETY_POLL_SECONDS
    frames = tracker.poll()
    assert frames and f'id="run-{run.pk}-status"' in frames[0] and f'data-total="{run.items_total + 5}"' in frames[0]


def test_an_update_for_another_run_does_not_quiet_the_poll(make_run):
    run, other = make_run(run_now=True), make_run(run_now=True)
    clock = Clock()
    tracker = Tracker("run", run.pk, clock=clock)
    tracker.snapshot()
    tracker.apply(an_update(other.pk))
    Run.objects.filter(pk=run.pk).update(items_total=F("items_total") + 5)
    assert tracker.poll()


def test_a_socket_that_never_heard_an_update_polls_from_the_start(make_run):
    run = make_run(run_now=True)
    tracker = Tracker("run", run.pk, clock=Clock())
    tracker.snapshot()
    Run.objects.filter(pk=run.pk).update(items_total=F("items_total") + 5)
    assert tracker.poll()
