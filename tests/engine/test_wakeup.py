"""An idle worker claims a task when it is enqueued, not at its next poll (engine/wakeup.py).

The workers here poll only every 120 s: a run that finishes within the test's patience was claimed
because a wake-up reached the worker (the control test shows the same worker without wake-ups
does not claim it meanwhile). A lost wake-up must only delay a task: a suppressed notification, a
killed LISTEN connection, a database the listener cannot reach. SQLite (the embedded profile) wakes
its workers through a FIFO each, from another process.
"""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection, transaction

from tests.engine.helpers import make_runnable_workflow, tickets
from tests.engine.test_worker import wait_for, worker_env
from workflows import statuses
from workflows.engine import launch, wakeup
from workflows.models import Run

ROOT = Path(__file__).resolve().parents[2]
FALLBACK = "120"  # seconds between polls: far beyond any patience below
PATIENCE = 60.0

postgres_only = pytest.mark.skipif("os.environ.get('DATABASE_URL', '').startswith('postgres') is False",
                                   reason="LISTEN/NOTIFY is PostgreSQL's")


class Worker:
    """One `run_worker` subprocess on the test database, logging at INFO into a file."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None, name: str = "w"):
        self.log = tmp_path / f"{name}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--no-reload", "--queue-name", "*", "--no-startup-delay",
             "--worker-id", name, *args],
            cwd=ROOT, env={**(env or worker_env()), "LOG_LEVEL": "INFO"}, stdout=self.log.open("w"),
            stderr=subprocess.STDOUT)

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    logs = text  # what tests.engine.test_worker.wait_for shows when a run does not finish

    def wait_idle(self) -> None:
        """Until the worker says it polled, found nothing and waits: from then on only a wake-up (or
        the 120 s poll) makes it look at the queue again."""
        deadline = time.monotonic() + PATIENCE
        while "idle: waiting for a wake-up" not in self.text():
            assert self.proc.poll() is None, f"the worker exited:\n{self.text()}"
            assert time.monotonic() < deadline, f"the worker never went idle:\n{self.text()}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


@pytest.fixture
def start_worker(transactional_db, tmp_path, settings):
    settings.ENGINE_SHARD_SIZE = 50
    started: list[Worker] = []

    def start(*args: str, **kwargs) -> Worker:
        worker = Worker(tmp_path, *args, name=f"w{len(started)}", **kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def listen_pids() -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND application_name = %s",
                       [wakeup.APPLICATION_NAME])
        return [row[0] for row in cursor.fetchall()]


# --- real workers ----------------------------------------------------------------------------------

@pytest.mark.worker
def test_an_idle_worker_claims_a_new_run_at_once_not_at_its_next_poll(personas, start_worker):
    workflow = make_runnable_workflow(personas["designer"])
    worker = start_worker("--interval", FALLBACK)
    worker.wait_idle()
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(10))
    run = wait_for(run, worker, timeout=PATIENCE)
    assert run.status == statuses.SUCCEEDED and run.items_done == 10


@pytest.mark.worker
def test_without_wakeups_the_same_worker_waits_for_its_poll(personas, start_worker):
    """The control: what the test above would see if the wake-up did not work."""
    workflow = make_runnable_workflow(personas["designer"])
    worker = start_worker("--interval", FALLBACK, "--no-wakeup")
    worker.wait_idle()
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(10))
    time.sleep(3)
    assert Run.objects.get(pk=run.pk).status == statuses.QUEUED


@pytest.mark.worker
def test_a_lost_wakeup_only_delays_the_run_until_the_poll(personas, start_worker, monkeypatch):
    workflow = make_runnable_workflow(personas["designer"])
    worker = start_worker("--interval", "1")
    worker.wait_idle()
    monkeypatch.setattr(wakeup, "notify", lambda using="default": None)  # the notification is lost
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(10))
    run = wait_for(run, worker, timeout=PATIENCE)
    assert run.status == statuses.SUCCEEDED and run.items_done == 10


@postgres_only
@pytest.mark.worker
def test_a_killed_listen_connection_comes_back_and_no_run_is_lost(personas, start_worker):
    workflow = make_runnable_workflow(personas["designer"])
    worker = start_worker("--interval", FALLBACK)
    worker.wait_idle()
    [first] = listen_pids()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [first])
    # Enqueued while the worker may still be without its listener: found by the poll that follows.
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(10))
    assert wait_for(run, worker, timeout=PATIENCE).status == statuses.SUCCEEDED
    deadline = time.monotonic() + PATIENCE
    while not [pid for pid in listen_pids() if pid != first]:
        assert time.monotonic() < deadline, f"the worker did not LISTEN again:\n{worker.text()}"
        time.sleep(0.1)
    assert "wake-up listener lost" in worker.text()
    # The new listener wakes it as the first did.
    again = launch.create_run(workflow, user=personas["operator"], items=tickets(10))
    assert wait_for(again, worker, timeout=PATIENCE).status == statuses.SUCCEEDED
    assert worker.proc.poll() is None


@pytest.mark.worker
@pytest.mark.slow
def test_the_embedded_profile_wakes_a_worker_from_the_web_process(tmp_path):
    """SQLite: the enqueue happens in another process (the web server in `serve`), which writes into
    the worker's FIFO after commit."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "SQLITE_PATH"}}
    env.update(FACTORY_VAR_DIR=str(tmp_path), DEBUG="1")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    database = tmp_path / "factory.sqlite3"
    worker = Worker(tmp_path, "--interval", FALLBACK, env=env)
    try:
        worker.wait_idle()
        assert f"FIFO in {database}.wakeup" in worker.text()
        script = (
            "from tests.builders import edge, make_user, make_workflow, node\n"
            "from workflows.engine import launch\n"
            "user = make_user('op', 'designer', 'operator')\n"
            "graph = {'nodes': [node('src', 'source.upload'), node('out', 'sink.table')],\n"
            "         'edges': [edge('src', 'out')]}\n"
            "run = launch.create_run(make_workflow(user, graph, name='Wake'), user=user, items=[{'text': 'ciao'}])\n"
            "print(run.pk)\n")
        made = subprocess.run([sys.executable, "manage.py", "shell", "-c", script], cwd=ROOT, env=env, check=True,
                              capture_output=True, text=True)
        run_id = int(made.stdout.split()[-1])
        deadline = time.monotonic() + PATIENCE
        status = None
        while time.monotonic() < deadline:
            with sqlite3.connect(database, timeout=30) as db:
                status = db.execute("SELECT status FROM workflows_run WHERE id = ?", [run_id]).fetchone()[0]
            if status in statuses.FINAL_RUN_STATUSES:
                break
            time.sleep(0.2)
        assert status == statuses.SUCCEEDED, f"run {run_id} is {status}:\n{worker.text()}"
    finally:
        worker.stop()


# --- the waiter alone ------------------------------------------------------------------------------

@pytest.fixture
def waiter(transactional_db):
    made = wakeup.Waiter()
    yield made
    made.close()


@postgres_only
def test_the_notification_is_sent_on_commit_never_on_rollback(waiter):
    waiter.open()
    wakeup._LOCAL.discard(waiter)  # only the NOTIFY, not this process's own after-commit wake-up
    assert waiter.wait(0) is True  # just connected: poll once
    with transaction.atomic():
        wakeup.notify()
        assert waiter.wait(0.3) is False  # not committed yet
    assert waiter.wait(PATIENCE) is True
    assert waiter.wait(0.3) is False  # drained: nothing left to spin on
    with pytest.raises(RuntimeError), transaction.atomic():
        wakeup.notify()
        raise RuntimeError("rolled back")
    assert waiter.wait(0.3) is False
    with transaction.atomic():  # a rolled-back savepoint drops its NOTIFY; the next enqueue sends again
        with pytest.raises(RuntimeError), transaction.atomic():
            wakeup.notify()
            raise RuntimeError("savepoint rolled back")
        wakeup.notify()
    assert waiter.wait(PATIENCE) is True


def test_a_commit_in_a_workers_own_process_wakes_it_directly(waiter):
    wakeup._LOCAL.add(waiter)  # as open() does, without a listener: the monitor thread enqueues here
    wakeup.notify()  # outside a transaction: at once
    assert waiter.wait(PATIENCE) is True
    assert waiter.wait(0.2) is False


@postgres_only
def test_the_waiter_reconnects_after_its_connection_is_killed(waiter):
    waiter.open()
    assert waiter.wait(0) is True
    [first] = listen_pids()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [first])
    assert waiter.wait(PATIENCE) is True  # the loss is noticed at once, and the caller polls
    assert not waiter.listening
    assert waiter.wait(PATIENCE) is True  # reconnected: poll once, what was sent meanwhile is lost
    assert waiter.listening and listen_pids() and first not in listen_pids()
    wakeup._LOCAL.discard(waiter)
    wakeup.notify()
    assert waiter.wait(PATIENCE) is True


@postgres_only
def test_a_waiter_that_cannot_listen_polls_meanwhile(waiter, monkeypatch):
    monkeypatch.setitem(connection.settings_dict, "NAME", "factory_no_such_database")
    waiter.open()
    assert not waiter.listening
    monkeypatch.undo()
    answers: list[bool] = []
    # Asked to wait two minutes, it comes back within a second to let the worker poll, then listens.
    thread = threading.Thread(target=lambda: answers.extend([waiter.wait(120), waiter.wait(120)]), daemon=True)
    thread.start()
    thread.join(PATIENCE)
    assert not thread.is_alive(), "the waiter slept through its poll while it could not listen"
    assert answers == [False, True] and waiter.listening


def test_a_fifo_is_woken_by_another_process_and_a_dead_workers_fifo_is_removed(tmp_path):
    folder = tmp_path / "db.sqlite3.wakeup"
    fifo = wakeup._Fifo(folder)
    try:
        assert list(folder.iterdir()) == [fifo.path]
        sender = ("from pathlib import Path; from workflows.engine.wakeup import wake_folder; "
                  f"assert wake_folder(Path({str(folder)!r})) == 1")
        subprocess.run([sys.executable, "-c", sender], cwd=ROOT, check=True)
        assert select.select([fifo.fileno()], [], [], PATIENCE)[0]
        assert fifo.drain() is True and fifo.drain() is False
        assert select.select([fifo.fileno()], [], [], 0.2)[0] == []  # no end-of-file to spin on
        dead = folder / "123-dead.fifo"
        os.mkfifo(dead)  # a worker that was SIGKILLed left it behind
        assert wakeup.wake_folder(folder) == 1
        assert not dead.exists() and fifo.path.exists()
    finally:
        fifo.close()
    assert not fifo.path.exists() and not folder.exists()
