"""Poll mode (in-memory channel layer; the worker is another process): one watcher per run and
event loop in the web process, shared by every socket on that run. Every POLL_SECONDS it reads the
run's NodeStats `batches` counters and its row; when something changed it renders the fragments
once and sends the same event the worker's broadcaster sends in push mode to the run's and the
workflow's groups. So a run watched by 50 sockets costs one query and one render, not 50.

`batches` rather than `updated_at`: two workers merge into one row, and the row's updated_at is
its batch's start, which can go backwards; the counter only grows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from channels.db import database_sync_to_async

from workflows.models import NodeStats, Run

from . import snapshot
from .groups import POLL_SECONDS, run_group, workflow_group

logger = logging.getLogger(__name__)


class RunWatcher:
    def __init__(self, run_id: int, interval: float = POLL_SECONDS):
        self.run_id = run_id
        self.interval = interval
        self.refs = 0
        self.batches: dict[str, int] = {}
        self.signature: tuple | None = None
        self.task: asyncio.Task | None = None

    def baseline(self) -> None:
        self.batches = dict(NodeStats.objects.filter(run_id=self.run_id).values_list("node", "batches"))
        run = Run.objects.filter(pk=self.run_id).first()
        self.signature = snapshot.run_signature(run) if run else None

    def check(self) -> dict[str, Any] | None:
        """The event for what changed since the last check, or None. A step a test can call alone."""
        changed = {n for n, b in NodeStats.objects.filter(run_id=self.run_id).values_list("node", "batches")
                   if self.batches.get(n) != b}
        if not changed:
            run = Run.objects.filter(pk=self.run_id).first()
            if run is None or snapshot.run_signature(run) == self.signature:
                return None
        state = snapshot.load(self.run_id, changed)
        if state is None:
            return None
        self.batches.update({n: b for n, b in state.batches.items() if n in changed})
        self.signature = state.signature
        return snapshot.message(state)

    async def run_forever(self, layer: Any) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                event = await database_sync_to_async(self.check)()
                if event is not None:
                    await layer.group_send(run_group(event["run"]), event)
                    await layer.group_send(workflow_group(event["workflow"]), event)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("watching run %s failed", self.run_id)


# (id of the event loop, run id) -> watcher. Tests run each socket test on a loop of its own.
WATCHERS: dict[tuple[int, int], RunWatcher] = {}


async def acquire(run_id: int, layer: Any) -> RunWatcher:
    key = (id(asyncio.get_running_loop()), run_id)
    watcher = WATCHERS.get(key)
    if watcher is None or watcher.task is None or watcher.task.done():
        watcher = WATCHERS[key] = RunWatcher(run_id)
        await database_sync_to_async(watcher.baseline)()
        watcher.task = asyncio.ensure_future(watcher.run_forever(layer))
    watcher.refs += 1
    return watcher


async def release(run_id: int) -> None:
    key = (id(asyncio.get_running_loop()), run_id)
    watcher = WATCHERS.get(key)
    if watcher is None:
        return
    watcher.refs -= 1
    if watcher.refs <= 0:
        WATCHERS.pop(key, None)
        if watcher.task is not None:
            watcher.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher.task
