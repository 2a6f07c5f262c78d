"""A running shard's heartbeat, renewed by a thread while the worker computes.

The executor also renews it at every micro-batch commit, but one batch can take longer than
ENGINE_STALE_SECONDS (a slow model, a large-model call that waits on its endpoint, a long document):
without this thread the monitor would take such a shard for dead and start a second attempt beside
the first, which keeps computing. The thread writes through its own database connection, only the
conditional UPDATE of its own attempt, and stops as soon as the attempt is fenced out.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from workflows.models import Shard

logger = logging.getLogger(__name__)


class Heartbeat:
    """`with Heartbeat(shard_id, attempt):` renews the heartbeat every ENGINE_HEARTBEAT_SECONDS."""

    def __init__(self, shard_id: int, attempt: int, interval: float | None = None):
        self.shard_id, self.attempt = shard_id, attempt
        self.interval = interval if interval is not None else settings.ENGINE_HEARTBEAT_SECONDS
        self.stopped = threading.Event()
        self.beats = 0
        self.thread = threading.Thread(target=self.run, name=f"heartbeat-{shard_id}", daemon=True)

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
                    alive = Shard.objects.filter(pk=self.shard_id, attempt=self.attempt,
                                                 status=Shard.RUNNING).update(heartbeat=timezone.now())
                except DatabaseError:  # a busy SQLite file or a dropped connection: try again next beat
                    logger.warning("heartbeat of shard %s could not be written", self.shard_id, exc_info=True)
                    connection.close()
                    continue
                if not alive:
                    return  # fenced out or finished: nothing of this attempt to keep alive
                self.beats += 1
        finally:
            connection.close()  # this thread's own connection
