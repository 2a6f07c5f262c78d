"""Heartbeats renewed by a thread while a worker computes: a running shard's, a model job's, a
promotion's evidence.

The executor also renews a shard's heartbeat at every micro-batch commit, but one batch can take
longer than ENGINE_STALE_SECONDS (a slow model, a large-model call that waits on its endpoint, a long
document), and a training job commits nothing for minutes: without this thread the monitor would
take such work for dead and start a second attempt beside the first, which keeps computing. The
thread writes through its own database connection, only a conditional UPDATE of its own attempt, and
stops as soon as that UPDATE matches nothing (the attempt was fenced out or finished).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from workflows.models import Shard

logger = logging.getLogger(__name__)


class Heartbeat:
    """`with Heartbeat(renew):` calls `renew()` every ENGINE_HEARTBEAT_SECONDS until the block ends or
    `renew` returns False (nothing of this attempt left to keep alive)."""

    def __init__(self, renew: Callable[[], bool], interval: float | None = None, name: str = "heartbeat"):
        self.renew = renew
        self.interval = interval if interval is not None else settings.ENGINE_HEARTBEAT_SECONDS
        self.stopped = threading.Event()
        self.beats = 0
        self.thread = threading.Thread(target=self.run, name=name, daemon=True)

    @classmethod
    def for_shard(cls, shard_id: int, attempt: int) -> Heartbeat:
        def renew() -> bool:
            return bool(Shard.objects.filter(pk=shard_id, attempt=attempt, status=Shard.RUNNING)
                        .update(heartbeat=timezone.now()))

        return cls(renew, name=f"heartbeat-shard-{shard_id}")

    def __enter__(self) -> Heartbeat:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopped.set()
        self.thread.join()

    def run(self) -> None:
        try:
            while not self.stopped.wait(self.interval):
                try:
                    alive = self.renew()
                except DatabaseError:  # a busy SQLite file or a dropped connection: try again next beat
                    logger.warning("%s could not be written", self.thread.name, exc_info=True)
                    connection.close()
                    continue
                if not alive:
                    return
                self.beats += 1
        finally:
            connection.close()  # this thread's own connection
