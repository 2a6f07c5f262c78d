"""Real `run_worker` subprocesses against the test database: scale-out, SIGKILL chaos, killed connections.

The subprocess uses the same database as the test: on PostgreSQL the test database's name goes in
DATABASE_URL, on SQLite the test database is a file (settings TEST NAME) passed as SQLITE_PATH.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection
from django.db.models import Count

from tests.engine.helpers import make_runnable_workflow, tickets
from workflows import statuses
from workflows.engine import launch
from workflows.models import Decision, Item, Run, Shard

pytestmark = [pytest.mark.worker, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
NODES = 4  # src, ext, route, out


def worker_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SQLITE_PATH"}}
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        assert str(db["NAME"]) != ":memory:" and "memory" not in str(db["NAME"]), "worker tests need a file database"
        env["SQLITE_PATH"] = str(db["NAME"])
    env.update({"ENGINE_STALE_SECONDS": "2", "ENGINE_MONITOR_SECONDS": "0.3", "DEBUG": "0",
                "SECRET_KEY": "worker-test-" + "x" * 50, "LOG_LEVEL": "WARNING", **extra})
    return env


class Workers:
    def __init__(self, tmp_path: Path, **env: str):
        self.env = worker_env(**env)
        self.procs: list[subprocess.Popen] = []
        self.tmp_path = tmp_path

    def start(self, name: str = "w") -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}-{len(self.procs)}.log", "w")
        proc = subprocess.Popen(
            # The poll interval serve uses (ENGINE_WORKER_POLL_SECONDS): enqueues wake the workers by
            # NOTIFY, and a lost wake-up must only delay a shard, never lose it.
            [sys.executable, "manage.py", "run_worker", "--no-reload", "--queue-name", "*", "--no-startup-delay",
             "--worker-id", f"{name}-{len(self.procs)}", "-v", "0"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in sorted(self.tmp_path.glob("*.log")))


@pytest.fixture
def workers(transactional_db, tmp_path, settings):
    settings.ENGINE_SHARD_SIZE = 50
    settings.ENGINE_BATCH_SIZE = 16
    made: list[Workers] = []

    def start(**env: str) -> Workers:
        w = Workers(tmp_path, **env)
        made.append(w)
        return w

    yield start
    for w in made:
        w.stop()


def wait_for(run: Run, workers: Workers, timeout: float = 60) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in statuses.FINAL_RUN_STATUSES:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run.pk} still {run.status} after {timeout}s: {run.items_done}/{run.items_total}\n"
                         f"{workers.logs()}")


def assert_complete(run: Run, count: int) -> None:
    assert run.status == statuses.SUCCEEDED, run.status
    assert run.items_done == count
    assert Item.objects.filter(run=run).exclude(status=Item.DONE).count() == 0
    assert Decision.objects.filter(run=run).count() == count * NODES
    dupes = Decision.objects.filter(run=run).values("item", "node").annotate(n=Count("id")).filter(n__gt=1).count()
    assert dupes == 0
    assert Decision.objects.filter(run=run, node="out").values("item").distinct().count() == count  # 0 lost


def write_chaos_figures(test: str, run: Run, items: int, started: float, kills: int = 0,
                        connection_kills: int = 0, **extra: float) -> None:
    """With CF_RELIABILITY_DIR set (bench/report.py): this test's figures in chaos.json, with totals
    over the chaos tests. Written before the assertions, so that a failure shows in the figures too."""
    folder = os.environ.get("CF_RELIABILITY_DIR")
    if not folder:
        return
    done = set(Item.objects.filter(run=run, status=Item.DONE).values_list("id", flat=True))
    reached = set(Decision.objects.filter(run=run, node="out").values_list("item", flat=True))
    pairs = Decision.objects.filter(run=run).values("item", "node").distinct().count()
    entry = {"kills": kills, "connection_kills": connection_kills, "items": items,
             "items_lost": items - len(done & reached),
             "duplicates": Decision.objects.filter(run=run).count() - pairs,
             "seconds": round(time.monotonic() - started, 1), **extra}
    path = Path(folder) / "chaos.json"
    figures = json.loads(path.read_text()) if path.exists() else {"tests": {}}
    figures["tests"][test] = entry
    figures.update({key: round(sum(t.get(key, 0) for t in figures["tests"].values()), 1) for key in entry})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")


def test_a_worker_runs_1000_items_with_one_decision_per_item_and_node(personas, workers):
    workflow = make_runnable_workflow(personas["designer"])
    pool = workers()
    pool.start()
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(1000))
    assert_complete(wait_for(run, pool), 1000)


def test_two_workers_split_the_shards_of_one_run(personas, workers):
    workflow = make_runnable_workflow(personas["designer"])
    pool = workers(ENGINE_HANDLER_MODULES="tests.engine.slow_handlers")
    pool.start("a")
    pool.start("b")
    time.sleep(1.5)  # both are polling before the run exists
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(1000))
    run = wait_for(run, pool)
    assert_complete(run, 1000)
    by_worker = dict(Shard.objects.filter(run=run).values_list("worker").annotate(n=Count("id")))
    assert len(by_worker) == 2, by_worker


def test_sigkill_ten_times_then_the_run_completes_unattended(personas, workers):
    workflow = make_runnable_workflow(personas["designer"])
    pool = workers(ENGINE_HANDLER_MODULES="tests.engine.slow_handlers", SLOW_EXTRACT_MS="10")
    rng = random.Random(5)
    started = time.monotonic()
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(1000))
    mid_run_kills = 0
    proc = pool.start()
    for _ in range(10):
        # Kill at a random point after this worker has committed something (start-up takes 1–3 s
        # on a busy machine; a kill before that tests nothing).
        run.refresh_from_db()
        before, deadline = run.items_done, time.monotonic() + 30
        while run.items_done == before and time.monotonic() < deadline:
            time.sleep(0.05)
            run.refresh_from_db()
        time.sleep(rng.uniform(0.0, 0.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        run.refresh_from_db()
        mid_run_kills += 0 < run.items_done < run.items_total
        proc = pool.start()
    assert mid_run_kills >= 8, f"only {mid_run_kills} kills landed mid-run: make the run longer"
    run = wait_for(run, pool, timeout=90)
    write_chaos_figures("sigkill", run, 1000, started, kills=10)
    assert_complete(run, 1000)
    assert Shard.objects.filter(run=run, attempt__gt=1).exists()  # the monitor did re-enqueue


@pytest.mark.skipif("os.environ.get('DATABASE_URL', '').startswith('postgres') is False")
def test_a_killed_database_connection_mid_run_loses_nothing(personas, workers):
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL only")
    workflow = make_runnable_workflow(personas["designer"])
    pool = workers(ENGINE_HANDLER_MODULES="tests.engine.slow_handlers")
    pool.start()
    started = time.monotonic()
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(1000))
    terminated = 0
    for _ in range(3):
        time.sleep(2.0)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            terminated += cursor.fetchone()[0]
    assert terminated >= 3
    run = wait_for(run, pool, timeout=90)
    write_chaos_figures("pg_terminate_backend", run, 1000, started, connection_kills=terminated)
    assert_complete(run, 1000)
    assert pool.procs[0].poll() is None, "the worker survived its connections being killed"
