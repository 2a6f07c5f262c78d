"""The worker's side of live metrics: after each micro-batch commit, a coalesced update per run.

The executor calls `after_batch_commit(run_id, nodes)` from `transaction.on_commit`, so nothing is
announced before it is committed (a rolled-back batch announces nothing). `notify` only records
which nodes changed; a thread flushes each run at most once per COALESCE_SECONDS (≤ 5 updates per
node per second however fast items go): it reads the run's NodeStats once, renders the fragments
once, and sends one event to the run's group and the workflow's group. Consumers forward it.

Only in push mode (a cross-process channel layer); with the in-memory layer the consumers poll.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from workflows.engine import observers
from workflows.models import Run

from . import snapshot, watched
from .groups import COALESCE_SECONDS, STATUS_SECONDS, push_mode, run_group, workflow_group
from .snapshot import run_signature

logger = logging.getLogger(__name__)


class Coalescer:
    """Pure bookkeeping: per run, the nodes changed since its last flush, and when it is due.

    A run idle for COALESCE_SECONDS flushes at once (leading edge); a busy one at most once per
    interval, the nodes of every batch in between sent together (trailing edge)."""

    def __init__(self, interval: float = COALESCE_SECONDS):
        self.interval = interval
        self.pending: dict[int, set[str]] = {}
        self.last: dict[int, float] = {}

    def add(self, run_id: int, nodes: Iterable[str]) -> None:
        self.pending.setdefault(run_id, set()).update(nodes)

    def next_due(self) -> float | None:
        if not self.pending:
            return None
        return min(self.last.get(run_id, float("-inf")) + self.interval for run_id in self.pending)

    def take_due(self, now: float) -> list[tuple[int, set[str]]]:
        due = [r for r in self.pending if self.last.get(r, float("-inf")) + self.interval <= now]
        for run_id in due:
            self.last[run_id] = now
        if len(self.last) > 1000:  # forget runs idle for a minute
            self.last = {r: t for r, t in self.last.items() if now - t < 60}
        return [(run_id, self.pending.pop(run_id)) for run_id in due]


def send_to_layer(event: dict[str, Any], loop: asyncio.AbstractEventLoop) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    if layer is None:
        return
    for group in (run_group(event["run"]), workflow_group(event["workflow"])):
        loop.run_until_complete(layer.group_send(group, event))


class Broadcaster:
    def __init__(self, interval: float = COALESCE_SECONDS, send: Callable[[dict[str, Any]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.coalescer = Coalescer(interval)
        self.clock = clock
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        self.custom_send = send
        self.loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        self.skipped = 0  # flushes not rendered: no socket on the run's workflow (live/watched.py)
        self.workflows: dict[int, int] = {}  # run -> its workflow, for the watch marks
        # Runs announced and not yet final -> the run row's signature last sent (flush thread only).
        self.active: dict[int, tuple] = {}
        self.status_checked = 0.0
        self.busy = False  # the flush thread is between taking work and releasing its connection
        self.holding = False  # the flush thread keeps its database connection between flushes
        self.letting_go = False  # quiesce asked the flush thread to close its connection now

    # -- the executor's side (worker thread, after commit) ----------------------------------------

    def notify(self, run_id: int, nodes: list[str]) -> None:
        if self.custom_send is None and not push_mode():
            return
        with self.cond:
            self.coalescer.add(run_id, nodes)
            self.cond.notify()
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self.run_forever, name="live-broadcast", daemon=True)
                self.thread.start()

    # -- the flushing thread --------------------------------------------------------------------

    def wait_for_due(self, timeout: float | None = None) -> list[tuple[int, set[str]]]:
        """Block until some run is due (or timeout) and take it. A step a test can call alone."""
        deadline = None if timeout is None else self.clock() + timeout
        with self.cond:
            while True:
                if self.letting_go:
                    self.letting_go = False
                    return []
                now = self.clock()
                due_at = self.coalescer.next_due()
                if due_at is not None and due_at <= now:
                    self.busy = True
                    return self.coalescer.take_due(now)
                waits = [t - now for t in (due_at, deadline) if t is not None]
                if deadline is not None and deadline <= now:
                    return []
                self.cond.wait(min(waits) if waits else None)

    def workflow_of(self, run_id: int) -> int | None:
        if run_id not in self.workflows:
            if len(self.workflows) > 10_000:
                self.workflows.clear()
            workflow_id = Run.objects.filter(pk=run_id).values_list("workflow_id", flat=True).first()
            if workflow_id is None:
                return None
            self.workflows[run_id] = workflow_id
        return self.workflows[run_id]

    def flush(self, run_id: int, nodes: set[str]) -> dict[str, Any] | None:
        # A custom sender (a test, a benchmark) is the audience itself; the channel layer's is counted.
        workflow_id = None if self.custom_send is not None else self.workflow_of(run_id)
        shown = None if workflow_id is None else watched.audience(workflow_id)
        if shown is not None and not shown:
            self.active.pop(run_id, None)  # a socket that opens later starts from its own snapshot
            self.skipped += 1
            return None
        state = snapshot.load(run_id, nodes)
        if state is None:
            self.active.pop(run_id, None)
            return None
        if state.run.is_active:
            self.active[run_id] = state.signature
        else:
            self.active.pop(run_id, None)
        event = snapshot.message(state, shown)
        if self.custom_send is not None:
            self.custom_send(event)
        else:
            if self.loop is None or self.loop.is_closed():
                self.loop = asyncio.new_event_loop()
            try:
                send_to_layer(event, self.loop)
            except Exception:
                # A connection pool left behind by a reset channel layer (settings change, Redis
                # restart) is bound to this loop: start over on a fresh loop once before giving up.
                logger.warning("live update for run %s: retrying on a fresh event loop", run_id, exc_info=True)
                self.loop.close()
                self.loop = asyncio.new_event_loop()
                send_to_layer(event, self.loop)
        self.sent += 1
        return event

    def check_statuses(self) -> None:
        """The rows of runs announced and still active: a final status (written after the last
        batch), a cancel or a retry goes out as an event without nodes. One query for all runs."""
        rows = {run.pk: run for run in Run.objects.filter(pk__in=list(self.active))}
        for run_id in list(self.active):
            run = rows.get(run_id)
            if run is None:
                self.active.pop(run_id, None)
            elif run_signature(run) != self.active[run_id]:
                self.flush(run_id, set())

    def run_forever(self) -> None:
        from django.db import connection

        while True:
            batch = self.wait_for_due(STATUS_SECONDS if self.active else None)
            self.busy = True
            self.holding = True
            for run_id, nodes in batch:
                try:
                    self.flush(run_id, nodes)
                except Exception:  # a broadcast must never stop the next one
                    logger.exception("live update for run %s failed", run_id)
                    connection.close()  # perhaps a dropped connection: the next flush opens a new one
            if self.active and self.clock() - self.status_checked >= STATUS_SECONDS:
                self.status_checked = self.clock()
                try:
                    self.check_statuses()
                except Exception:
                    logger.exception("checking run statuses failed")
                    connection.close()
            # While runs are watched the next flush comes within STATUS_SECONDS: keep this thread's
            # connection for it (one per flush was a PostgreSQL backend started and ended ~50 times a
            # run, on the cores the model calls need). With nothing to watch, let it go.
            if not self.active:
                connection.close()
                self.holding = False
            self.busy = False

    def quiesce(self, timeout: float = 5.0) -> None:
        """Drop pending updates and wait for the flush thread to let go of the database: a test
        does this before its tables are emptied (a snapshot read holding its locks while TRUNCATE
        takes them one table at a time is a deadlock) and before the test database is dropped."""
        with self.cond:
            self.coalescer = Coalescer(self.coalescer.interval)
            self.active.clear()
            if self.holding:
                self.letting_go = True
                self.cond.notify()
        deadline = time.monotonic() + timeout
        while (self.busy or self.holding) and time.monotonic() < deadline:
            time.sleep(0.01)


BROADCASTER = Broadcaster()


def install() -> None:
    """Attach the broadcaster to the executor's after-commit hook (once per process)."""
    if BROADCASTER.notify not in observers.BATCH_LISTENERS:
        observers.BATCH_LISTENERS.append(BROADCASTER.notify)
