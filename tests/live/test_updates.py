"""Updates after the snapshot: only committed changes, at a bounded rate, in both delivery modes.

Poll mode (in-memory layer, the embedded default): the consumer reads its run's NodeStats counters.
Push mode (channels-redis): the worker's broadcaster sends coalesced events after commit.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import threading
import time

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from tests.engine.helpers import drain
from tests.live.sockets import communicator, receive, run_async
from workflows.engine import observers
from workflows.live.broadcast import BROADCASTER, Broadcaster, Coalescer
from workflows.live.groups import run_group, workflow_group
from workflows.models import NodeStats, Run

pytestmark = pytest.mark.django_db(transaction=True)


def processed(html: str, run_id: int, node: str) -> int | None:
    """The node's processed count in the LAST frame that has it (several frames can arrive joined)."""
    found = re.findall(rf'id="live-{run_id}-{node}-stats".*?class="live-in">(\d+)<', html, re.S)
    return int(found[-1]) if found else None


async def drain_watched(run, user, count: int) -> tuple[int, int]:
    """A socket on the run's page while the run is drained: the most items `out` processed that it
    was shown (waiting up to 15 s for `count`), and how many messages it took."""
    com = communicator(f"/ws/runs/{run.pk}/", user)
    assert (await com.connect())[0]
    await receive(com)
    await database_sync_to_async(drain)()  # the executor's on_commit hook feeds BROADCASTER
    best, messages = 0, 0
    deadline = time.monotonic() + 15
    while best != count and time.monotonic() < deadline:
        # Events without node stats come too (the run's final status): keep the best seen.
        try:
            html = await receive(com, max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        best = max(best, processed(html, run.pk, "out") or 0)
        messages += 1
    await com.disconnect()
    return best, messages


class Writer(threading.Thread):
    """Changes a NodeStats row in a transaction of its own, held open until told to commit or roll back."""

    def __init__(self, run_id: int, node: str, add: int):
        super().__init__(daemon=True)
        self.run_id, self.node, self.add = run_id, node, add
        self.written = threading.Event()
        self.decided = threading.Event()
        self.commit = False

    def run(self) -> None:
        try:
            with transaction.atomic():
                NodeStats.objects.filter(run_id=self.run_id, node=self.node).update(
                    items_in=F("items_in") + self.add, batches=F("batches") + 1, updated_at=timezone.now())
                self.written.set()
                self.decided.wait(10)
                if not self.commit:
                    transaction.set_rollback(True)
        finally:
            connection.close()


# --- poll mode -----------------------------------------------------------------------------------


def test_polling_sends_a_committed_change_and_never_an_uncommitted_one(make_run, personas, settings):
    settings.LIVE_MODE = "poll"
    run = make_run(40)

    async def go():
        com = communicator(f"/ws/runs/{run.pk}/", personas["operator"])
        assert (await com.connect())[0]
        first = await receive(com)
        assert processed(first, run.pk, "ext") == 0
        held = Writer(run.pk, "ext", 5)
        held.start()
        await database_sync_to_async(held.written.wait, thread_sensitive=False)(5)
        assert await com.receive_nothing(timeout=0.8)  # uncommitted: invisible to the poller
        held.decided.set()  # roll back
        await database_sync_to_async(held.join, thread_sensitive=False)(5)
        assert await com.receive_nothing(timeout=0.6)
        done = Writer(run.pk, "ext", 7)
        done.commit = True
        done.start()
        done.decided.set()
        started = time.monotonic()
        update = await receive(com, 2)
        took = time.monotonic() - started
        await com.disconnect()
        return update, took

    update, took = run_async(go)
    assert processed(update, run.pk, "ext") == 7
    assert processed(update, run.pk, "src") is None  # only what changed
    assert took < 1.0


def test_polling_follows_a_run_to_its_end(make_run, personas, settings):
    settings.LIVE_MODE = "poll"
    run = make_run(40)

    async def go():
        com = communicator(f"/ws/runs/{run.pk}/", personas["operator"])
        assert (await com.connect())[0]
        await receive(com)
        await database_sync_to_async(drain)()
        seen = ""
        deadline = time.monotonic() + 5
        while 'data-status="succeeded"' not in seen and time.monotonic() < deadline:
            seen = await receive(com, 2)
        await com.disconnect()
        return seen

    last = run_async(go)
    assert 'data-status="succeeded"' in last and 'value="1.000"' in last


def test_the_canvas_follows_a_new_run_when_polling(make_run, personas, settings):
    settings.LIVE_MODE = "poll"
    first = make_run(8, run_now=True)

    async def go():
        com = communicator(f"/ws/workflows/{first.workflow_id}/live/", personas["designer"])
        assert (await com.connect())[0]
        snapshot = await receive(com)
        second = await database_sync_to_async(make_run)(16)
        switched = await receive(com, 3)
        await com.disconnect()
        return snapshot, second, switched

    snapshot, second, switched = run_async(go)
    assert f'data-run="{first.pk}"' in snapshot
    assert f'id="cf-live-run" class="cf-live-run" hx-swap-oob="true" data-run="{second.pk}"' in switched


# --- push mode: the broadcaster --------------------------------------------------------------------


def test_the_coalescer_sends_a_busy_run_at_most_once_per_interval():
    c = Coalescer(interval=0.2)
    sent: dict[str, int] = {}
    now = 100.0
    for step in range(1000):  # 1,000 batch commits in one second, two nodes each
        now = 100.0 + step / 1000
        c.add(7, ["a", "b"] if step % 2 else ["a", "c"])
        for _, nodes in c.take_due(now):
            for n in nodes:
                sent[n] = sent.get(n, 0) + 1
    for _, nodes in c.take_due(now + 0.2):  # the trailing flush
        for n in nodes:
            sent[n] = sent.get(n, 0) + 1
    assert 5 <= sent["a"] <= 6 and sent["b"] <= 6 and sent["c"] <= 6
    assert c.pending == {}
    c.add(8, ["x"])  # an idle run goes at once (leading edge)
    assert c.take_due(now + 0.21) == [(8, {"x"})]


def test_a_fast_stream_of_commits_is_broadcast_at_most_five_times_a_second_per_node(make_run):
    run = make_run(8)
    events: list[dict] = []
    broadcaster = Broadcaster(send=events.append)
    stop = time.monotonic() + 1.5
    commits = 0
    while time.monotonic() < stop:
        NodeStats.objects.filter(run=run, node="ext").update(items_in=F("items_in") + 1, batches=F("batches") + 1)
        broadcaster.notify(run.pk, ["ext"])
        commits += 1
        time.sleep(0.002)
    time.sleep(0.5)  # the trailing flush
    assert commits > 100  # ≥ 65 commits a second against ≤ 5 broadcasts
    assert 5 <= len(events) <= 1.5 * 5 + 2, len(events)
    gaps = [b["at"] - a["at"] for a, b in itertools.pairwise(events)]
    # Due 0.2 s apart; "at" is stamped after the snapshot is read, whose time varies on a busy machine
    # (0.142 s was seen once), so only half the interval is asserted: commits came every ~3 ms.
    assert min(gaps) >= 0.1, gaps
    final = NodeStats.objects.get(run=run, node="ext")
    assert events[-1]["batches"]["ext"] == final.batches  # the last state always gets out
    assert processed(events[-1]["html"]["run"][0], run.pk, "ext") == final.items_in


def test_nothing_is_announced_for_a_batch_that_rolls_back(make_run, monkeypatch):
    run = make_run(16)
    calls: list[tuple[int, list[str]]] = []
    monkeypatch.setattr(observers, "BATCH_LISTENERS", [lambda run_id, nodes: calls.append((run_id, nodes))])

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():
        drain()  # every batch commits inside our transaction…
        raise Boom  # …which rolls back: on_commit never fires
    assert calls == []
    assert NodeStats.objects.get(run=run, node="ext").items_in == 0
    drain()
    assert calls and all(run_id == run.pk for run_id, _ in calls)
    assert set(calls[0][1]) == {"src", "ext", "route", "out"}


def test_the_consumer_forwards_broadcast_events_in_push_mode(make_run, personas, settings, monkeypatch):
    settings.LIVE_MODE = "push"
    run = make_run(16)
    events: list[dict] = []
    broadcaster = Broadcaster(send=events.append)
    monkeypatch.setattr(observers, "BATCH_LISTENERS", [broadcaster.notify])

    async def go():
        layer = get_channel_layer()
        page = communicator(f"/ws/runs/{run.pk}/", personas["operator"])
        canvas = communicator(f"/ws/workflows/{run.workflow_id}/live/", personas["operator"])
        assert (await page.connect())[0] and (await canvas.connect())[0]
        await receive(page)
        await receive(canvas)
        await database_sync_to_async(drain)()
        await asyncio.sleep(0.5)  # the broadcaster's thread: leading and trailing flush
        assert 1 <= len(events) <= 3
        event = events[-1]
        await layer.group_send(run_group(run.pk), event)
        await layer.group_send(workflow_group(run.workflow_id), event)
        page_html = await receive(page)
        canvas_html = await receive(canvas)
        # An event older than what the socket already has is dropped (two workers' events can cross).
        stale = {**event, "batches": {n: 0 for n in event["batches"]}}
        await layer.group_send(run_group(run.pk), stale)
        quiet = await page.receive_nothing(timeout=0.3)
        await page.disconnect()
        await canvas.disconnect()
        return page_html, canvas_html, quiet

    page_html, canvas_html, quiet = run_async(go)
    assert processed(page_html, run.pk, "ext") == 16 and "cf-live-ext" not in page_html
    assert 'id="cf-live-ext"' in canvas_html and f"live-{run.pk}-ext-stats" not in canvas_html
    assert quiet


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (channels-redis)")
def test_with_redis_the_worker_broadcast_reaches_the_socket(make_run, personas, settings):
    settings.LIVE_MODE = "auto"
    assert "Redis" in settings.CHANNEL_LAYERS["default"]["BACKEND"]
    run = make_run(80)

    sent_before = BROADCASTER.sent
    best, messages = run_async(lambda: drain_watched(run, personas["operator"], 80))
    assert best == 80
    assert messages <= 10  # 10 batches, coalesced
    assert BROADCASTER.sent > sent_before
    assert Run.objects.get(pk=run.pk).status == "succeeded"


def test_in_poll_mode_every_socket_on_a_run_shares_one_watcher(make_run, personas, settings):
    from workflows.live import watch

    settings.LIVE_MODE = "poll"
    run = make_run(40)

    async def go():
        sockets = [communicator(f"/ws/runs/{run.pk}/", personas["operator"]) for _ in range(3)]
        canvas = communicator(f"/ws/workflows/{run.workflow_id}/live/", personas["operator"])
        for com in [*sockets, canvas]:
            assert (await com.connect())[0]
            await receive(com)
        watchers = [w for (_, run_id), w in watch.WATCHERS.items() if run_id == run.pk]
        refs = [w.refs for w in watchers]
        await database_sync_to_async(drain)()
        finals = []
        for com in [*sockets, canvas]:
            seen = ""
            deadline = time.monotonic() + 5
            while 'value="1.000"' not in seen and time.monotonic() < deadline:
                seen = await receive(com, 2)
            finals.append(seen)
            await com.disconnect()
        left = [w for (_, run_id), w in watch.WATCHERS.items() if run_id == run.pk]
        return refs, finals, left

    refs, finals, left = run_async(go)
    assert refs == [4]  # one watcher, four sockets (three run pages and the canvas)
    assert all('value="1.000"' in f for f in finals)
    assert left == []  # the last socket to leave stops it


def test_the_broadcaster_announces_a_final_status_written_after_the_last_batch(make_run):
    run = make_run(16)
    events: list[dict] = []
    broadcaster = Broadcaster(send=events.append)
    Run.objects.filter(pk=run.pk).update(status="running")
    broadcaster.flush(run.pk, {"ext"})
    assert run.pk in broadcaster.active
    broadcaster.check_statuses()
    assert len(events) == 1  # nothing changed
    Run.objects.filter(pk=run.pk).update(status="cancelled")
    broadcaster.check_statuses()
    assert len(events) == 2 and events[-1]["nodes"] == [] and 'data-status="cancelled"' in events[-1]["html"]["run"][0]
    assert run.pk not in broadcaster.active  # final: no longer watched


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (channels-redis)")
def test_with_redis_a_run_nobody_watches_is_not_rendered_and_a_socket_turns_it_on(make_run, personas, settings):
    """Rendering a run's fragments (every page kind, every language) five times a second took CPU
    and the GIL from the model calls beside it, for sockets that did not exist: a batch run at night,
    an API client. A socket marks its workflow watched; only then does the worker render and send."""
    from workflows.live import watched

    settings.LIVE_MODE = "auto"
    unwatched = make_run(48)
    watched.forget(unwatched.workflow_id)
    sent, skipped = BROADCASTER.sent, BROADCASTER.skipped
    drain()
    time.sleep(0.6)  # the broadcaster's thread: leading and trailing flush
    assert BROADCASTER.sent == sent and BROADCASTER.skipped > skipped

    run = make_run(48)  # the same workflow, now with a socket on it

    assert run_async(lambda: drain_watched(run, personas["operator"], 48))[0] == 48
    assert BROADCASTER.sent > sent
    assert watched.anyone(run.workflow_id)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (channels-redis)")
def test_a_watch_mark_lapses_unless_renewed(settings):
    from workflows.live import watched

    watched.mark(987654, "run", "it", seconds=1)
    assert watched.audience(987654) == {("run", "it")} and not watched.anyone(987655)
    time.sleep(1.3)
    assert not watched.anyone(987654)


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (channels-redis)")
def test_a_run_is_rendered_only_for_the_pages_and_languages_watched(make_run, settings, monkeypatch):
    from workflows.live import broadcast, watched

    settings.LIVE_MODE = "auto"
    run = make_run(16, run_now=True)
    watched.forget(run.workflow_id)
    watched.mark(run.workflow_id, "run", "it")
    sent: list[dict] = []
    monkeypatch.setattr(broadcast, "send_to_layer", lambda event, loop: sent.append(event))
    Broadcaster().flush(run.pk, {"ext"})
    (event,) = sent
    assert event["html"] == {} and list(event["translated"]["it"]) == ["run"]
    assert "Nessuno scarto." in event["translated"]["it"]["run"][0]  # "No dead letters.", in Italian


def test_without_a_shared_layer_every_run_counts_as_watched(settings):
    """The in-memory layer has no place to mark a watch in: the broadcaster must not go silent."""
    from workflows.live import watched

    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert watched.anyone(123456)
