"""`db_worker` with the executor's monitor inside, woken by enqueues, resilient to a dropped database connection.

    manage.py run_worker --queue-name '*'          # same options as db_worker, plus --no-wakeup, --no-monitor

Start as many as you like on as many machines as you like (PostgreSQL claims tasks with SELECT …
FOR UPDATE SKIP LOCKED). Each runs the monitor thread (engine/monitor.py says why a thread), so
stale shards are re-enqueued as long as any worker is alive.

An idle worker does not poll every second as db_worker does: it waits for a wake-up
(engine/wakeup.py: LISTEN/NOTIFY on PostgreSQL, a FIFO on SQLite) and polls only every
--interval seconds (ENGINE_WORKER_POLL_SECONDS) in case a wake-up was lost.
"""

from __future__ import annotations

import logging
import random
import time

from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, connections
from django.db.backends.signals import connection_created
from django_tasks_db.management.commands import db_worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from workflows import notifications
from workflows.engine import monitor as engine_monitor
from workflows.engine import wakeup
from workflows.governance import drift, liveness
from workflows.inbound import mailboxes
from workflows.kpi import pack
from workflows.lifecycle import retention
from workflows.models import audit

logger = logging.getLogger("workflows.engine")


class ResilientWorker(db_worker.Worker):
    """A killed connection (failover, pg_terminate_backend) must not end the worker: drop the
    connection and go on; the interrupted shard's heartbeat goes stale and the monitor retries it.

    The loop is db_worker's (django-tasks-db 0.13), with its sleep between polls replaced by a wait
    on `waiter` (None: sleep as db_worker does); db_worker has no hook for that sleep."""

    def __init__(self, *, waiter: wakeup.Waiter | None = None, **options):  # type: ignore[no-untyped-def]
        super().__init__(**options)
        self.waiter = waiter
        self.said_idle = False

    def run_task(self, db_task_result):  # type: ignore[no-untyped-def]
        try:
            super().run_task(db_task_result)
        except (OperationalError, InterfaceError):
            logger.warning("database connection lost while finishing task %s; reconnecting", db_task_result.id)
            self.running_task = False
            connections.close_all()

    def run(self) -> None:
        db_worker.logger.info("Starting worker worker_id=%s queues=%s", self.worker_id, ",".join(self.queue_names))
        if self.startup_delay and self.interval:
            time.sleep(random.random())  # db_worker's: N workers started together do not poll in step
        if self.waiter is not None:
            self.waiter.open()  # before the first poll: an enqueue between the two would wait for the next
        try:
            while True:
                try:
                    self.loop()
                    return
                except (OperationalError, InterfaceError):
                    if not self.running:
                        return
                    logger.warning("database connection lost; reconnecting in 1 s", exc_info=True)
                    connections.close_all()
                    time.sleep(1)
        finally:
            if self.waiter is not None:
                self.waiter.close()

    def loop(self) -> None:
        while self.running:
            close_old_connections()  # dropped or expired connections, right after waking up
            task_result, retrieved = self.claim()
            if task_result is not None:
                self.run_task(task_result)
            if self.batch and retrieved and task_result is None:
                db_worker.logger.info("No more tasks to run for worker_id=%s - exiting gracefully.", self.worker_id)
                return
            if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
                db_worker.logger.info("Run maximum tasks (%d) on worker=%s - exiting gracefully.", self._run_tasks,
                                      self.worker_id)
                return
            close_old_connections()
            # After a task, look again at once; with none, wait (a Ctrl+C during a task ends the loop).
            if self.running and task_result is None:
                self.idle()

    def claim(self) -> tuple[DBTaskResult | None, bool]:
        """(the task claimed or None, whether the queue could be read: a locked SQLite file cannot)."""
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            tasks = tasks.filter(queue_name__in=self.queue_names)
        if self.excluded_queue_names:
            tasks = tasks.exclude(queue_name__in=self.excluded_queue_names)
        with exclusive_transaction(tasks.db):
            try:
                task_result = tasks.get_locked()
                if task_result is not None:
                    task_result.claim(self.worker_id)  # so no other worker runs it
            except OperationalError as exc:
                if is_locked_database_exception(exc):  # it unlocks eventually: try again next time
                    return None, False
                raise
        return task_result, True

    def idle(self) -> None:
        if not self.said_idle:
            # Once per process: that it is up and waiting (the wake-up tests wait for this line).
            logger.info("idle: waiting for a wake-up (%s), polling every %s s",
                        self.waiter.kind if self.waiter else "none", self.interval)
            self.said_idle = True
        if self.waiter is not None:
            self.waiter.wait(self.interval)
        else:
            time.sleep(self.interval)


def end_idle_transactions(sender, connection, **kwargs):  # type: ignore[no-untyped-def]
    """On each new PostgreSQL connection of a worker: WORKER_IDLE_TRANSACTION_SECONDS (settings says why)."""
    seconds = settings.WORKER_IDLE_TRANSACTION_SECONDS
    if connection.vendor == "postgresql" and seconds > 0:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, false)", [f"{seconds}s"])


class Command(db_worker.Command):
    help = ("Run a task worker (db_worker) with the executor's monitor (stale shards, live-run flushes, schedules), "
            "woken at once by enqueues.")

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        super().add_arguments(parser)
        parser.add_argument("--no-monitor", action="store_true", help="Do not run the monitor thread in this worker.")
        parser.add_argument("--no-wakeup", action="store_false", dest="listen",
                            help="Do not listen for wake-ups: only poll the queue every --interval seconds.")
        # With wake-ups the poll is only the fallback for a lost one, so it can be rare.
        parser.set_defaults(interval=None)
        parser._option_string_actions["--interval"].help = (  # db_worker's text says 1 s
            "Seconds between polls of the queue when idle (default: ENGINE_WORKER_POLL_SECONDS, "
            f"{settings.ENGINE_WORKER_POLL_SECONDS:g}, with wake-ups; 1 with --no-wakeup).")

    def handle(self, *, verbosity, queue_name, interval, batch, backend_name, startup_delay, reload, max_tasks,  # type: ignore[no-untyped-def]
               worker_id, exclude_queues, no_monitor=False, listen=True, **options):
        self.configure_logging(verbosity)
        connection_created.connect(end_idle_transactions, dispatch_uid="worker-idle-transactions")
        connections.close_all()  # opened before the receiver (checks at start-up): reopened with it
        if interval is None:
            interval = settings.ENGINE_WORKER_POLL_SECONDS if listen else 1.0
        excluded = exclude_queues.split(",") if exclude_queues else []
        worker = ResilientWorker(queue_names=queue_name.split(","), interval=interval, batch=batch,
                                 backend_name=backend_name, startup_delay=startup_delay, max_tasks=max_tasks,
                                 worker_id=worker_id, excluded_queue_names=excluded,
                                 waiter=wakeup.Waiter() if listen else None)
        # Digests and periodic checks; the checks of layers above notifications/ are handed in here.
        notify = notifications.Duty(checks={"drift": drift.notify_alerts, "packs": pack.notify_ready_packs})
        monitor = None if no_monitor else engine_monitor.MonitorThread(
            duties=[engine_monitor.tick, liveness.tick, notify, mailboxes.tick, retention.tick, audit.checkpoint_tick])
        if monitor:
            monitor.start()
        worker.configure_signals()
        try:
            worker.run()
        finally:
            if monitor:
                monitor.stop()

