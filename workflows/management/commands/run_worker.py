"""`db_worker` with the executor's monitor inside, and resilient to a dropped database connection.

    manage.py run_worker --queue-name '*'          # same options as db_worker

Start as many as you like on as many machines as you like (PostgreSQL claims tasks with SELECT …
FOR UPDATE SKIP LOCKED). Each runs the monitor thread (engine/monitor.py says why a thread), so
stale shards are re-enqueued as long as any worker is alive.
"""

from __future__ import annotations

import logging
import time

from django.db import InterfaceError, OperationalError, connections
from django_tasks_db.management.commands import db_worker

from workflows.engine import monitor as engine_monitor
from workflows.governance import liveness

logger = logging.getLogger("workflows.engine")


class ResilientWorker(db_worker.Worker):
    """A killed connection (failover, pg_terminate_backend) must not end the worker: drop the
    connection and go on; the interrupted shard's heartbeat goes stale and the monitor retries it."""

    def run_task(self, db_task_result):  # type: ignore[no-untyped-def]
        try:
            super().run_task(db_task_result)
        except (OperationalError, InterfaceError):
            logger.warning("database connection lost while finishing task %s; reconnecting", db_task_result.id)
            self.running_task = False
            connections.close_all()

    def run(self) -> None:
        while True:
            try:
                super().run()
                return
            except (OperationalError, InterfaceError):
                if not self.running:
                    return
                logger.warning("database connection lost; reconnecting in 1 s", exc_info=True)
                connections.close_all()
                time.sleep(1)


class Command(db_worker.Command):
    help = "Run a task worker (db_worker) with the executor's monitor (stale shards, live-run flushes, schedules)."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        super().add_arguments(parser)
        parser.add_argument("--no-monitor", action="store_true", help="Do not run the monitor thread in this worker.")

    def handle(self, *, verbosity, queue_name, interval, batch, backend_name, startup_delay, reload, max_tasks,  # type: ignore[no-untyped-def]
               worker_id, exclude_queues, no_monitor=False, **options):
        self.configure_logging(verbosity)
        excluded = exclude_queues.split(",") if exclude_queues else []
        worker = ResilientWorker(queue_names=queue_name.split(","), interval=interval, batch=batch,
                                 backend_name=backend_name, startup_delay=startup_delay, max_tasks=max_tasks,
                                 worker_id=worker_id, excluded_queue_names=excluded)
        monitor = None if no_monitor else engine_monitor.MonitorThread(duties=[engine_monitor.tick, liveness.tick])
        if monitor:
            monitor.start()
        worker.configure_signals()
        try:
            worker.run()
        finally:
            if monitor:
                monitor.stop()
