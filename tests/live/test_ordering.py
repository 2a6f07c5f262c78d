"""Counts on a socket never go back: two workers' events cross, status-only events name no node, and
the socket's own poll reads the run row between events (the load test saw each of these)."""

from __future__ import annotations

import pytest

from workflows.live import snapshot
from workflows.live.consumers import Tracker

RUN = 7


def event(batches: int, total: int, done: int, nodes: tuple[str, ...] = ("ext",), status: str = "running",
          dead: int = 0, live: bool = True, parked: int = 0) -> dict:
    line = f'<p id="run-{RUN}-status" data-finished="{done + dead}" data-total="{total}">{status}</p>'
    stats = "".join(f'<dl id="live-{RUN}-{n}-stats" data-batches="{batches}"></dl>' for n in nodes)
    return {"run": RUN, "nodes": list(nodes), "batches": {"src": batches, "ext": batches},
            "signature": [status, total, done, dead, parked, live], "html": {"run": [stats + line], "canvas": [line]}}


def tracker(batches: int = 2, total: int = 100, done: int = 64) -> Tracker:
    t = Tracker("run", RUN)
    t.apply(event(batches, total, done))
    return t


def test_an_event_read_before_the_last_one_is_dropped():
    t = tracker()
    assert t.apply(event(1, 100, 32)) is None


def test_a_status_only_event_older_than_the_run_line_shown_is_dropped():
    t = tracker()
    assert t.apply(event(2, 90, 64, nodes=())) is None  # intake came in between: same batches, fewer items
    assert t.apply(event(1, 100, 32, nodes=())) is None
    assert t.apply(event(2, 120, 64, nodes=())) == event(2, 120, 64, nodes=())["html"]["run"]


def test_newer_stats_with_an_older_run_line_go_without_the_line():
    t = tracker()
    t.apply(event(3, 130, 96, nodes=()))  # another worker's status event, read after commit 3
    frames = t.apply(event(3, 120, 96))  # this worker's stats of commit 3, its run row read before intake
    assert frames == [f'<dl id="live-{RUN}-ext-stats" data-batches="3"></dl>']
    assert t.signature[1] == 130 and t.batches["ext"] == 3


def test_the_poll_does_not_hold_back_stats_it_did_not_send():
    t = tracker()
    t.read_at, t.signature = {"src": 5, "ext": 5}, ("running", 200, 160, 0, 0, True)  # what poll() leaves
    frames = t.apply(event(4, 180, 128))
    assert frames and 'data-batches="4"' in frames[0] and "run-7-status" not in frames[0]


def test_a_final_status_goes_back_to_running_only_with_a_retry():
    t = tracker()
    t.apply(event(3, 100, 90, nodes=(), status="completed_with_errors", dead=10, live=False))
    assert t.apply(event(3, 100, 90, nodes=(), dead=10, live=False)) is None  # read before the run finished
    assert t.apply(event(3, 100, 90, nodes=(), live=True, status="completed_with_errors",
                         dead=10)) is None  # live again
    assert t.apply(event(3, 100, 90, nodes=(), dead=0, live=False)) is not None  # retry of the dead letters


def test_a_waiting_run_goes_back_to_running_only_with_a_decision():
    t = tracker()
    t.apply(event(3, 100, 95, nodes=(), status="waiting", parked=5, live=False))
    assert t.apply(event(3, 100, 95, nodes=(), parked=5, live=False)) is None  # read before it settled
    assert t.apply(event(3, 100, 95, nodes=(), parked=4, live=False)) is not None  # a reviewer decided one


@pytest.mark.django_db(transaction=True)
def test_the_run_line_comes_out_of_real_frames_and_nothing_else(make_run):
    run = make_run(40, run_now=True)
    state = snapshot.load(run.pk)
    for kind, line_id in (("run", f'id="run-{run.pk}-status"'), ("canvas", 'id="cf-live-run"')):
        frames = snapshot.render(state, kind)
        stripped = snapshot.without_run_line(frames, kind, run.pk)
        assert line_id in frames[0] and line_id not in stripped[0]
        removed = len(frames[0]) - len(stripped[0])
        assert 0 < removed < 1500, removed
        node_id = f'id="live-{run.pk}-ext-stats"' if kind == "run" else 'id="cf-live-ext"'
        assert node_id in stripped[0]
