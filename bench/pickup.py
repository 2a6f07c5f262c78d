"""Pickup: how long a run waits between its commit and an idle worker claiming its shard.

A one-item run of source → table is started COUNT times, each after a random pause (so the worker
is idle, waiting, when the run commits); the figure per run is the shard task's `started_at` (set by
the worker when it claims) minus the time taken right after the run's transaction committed. Then
the worker is left idle for IDLE seconds and its CPU time is read from /proc/<pid>/stat before and
after. The worker is a real `run_worker` process with its defaults: woken by NOTIFY (PostgreSQL) or
its FIFO (SQLite), polling every ENGINE_WORKER_POLL_SECONDS in case a wake-up is lost.

With --compare-polling, blocks of runs alternate between that worker and one started as before
the wake-up (`--no-wakeup --interval 1`, db_worker's default), and both are reported.

A throwaway database is created and dropped (PostgreSQL when DATABASE_URL is set, else a SQLite
file). Ends with one line: pickup_p50_ms=… pickup_p95_ms=… idle_cpu_pct=…

    .venv/bin/python bench/pickup.py [--count 60] [--idle-seconds 30] [--compare-polling]

`measure_pickup()` is the measurement alone, for scripts that set up Django and a database themselves.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NO_WAKEUP = ("--no-wakeup", "--interval", "1")  # how `serve` started workers before the wake-up


@dataclass
class PickupFigures:
    samples_ms: list[float] = field(default_factory=list)
    idle_cpu_pct: float | None = None

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.samples_ms)

    @property
    def p95_ms(self) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    def line(self, prefix: str = "") -> str:
        cpu = f" {prefix}idle_cpu_pct={self.idle_cpu_pct:.3f}" if self.idle_cpu_pct is not None else ""
        return f"{prefix}pickup_p50_ms={self.p50_ms:.1f} {prefix}pickup_p95_ms={self.p95_ms:.1f}{cpu}"


def worker_env() -> dict[str, str]:
    """The environment of a worker on the database this process uses now."""
    from django.db import connection

    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SQLITE_PATH"}}
    db = connection.settings_dict
    if connection.vendor == "postgresql":
        auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    else:
        env["SQLITE_PATH"] = str(db["NAME"])
    env.update(LOG_LEVEL="INFO", DEBUG="0", SECRET_KEY=env.get("SECRET_KEY") or "bench-" + "x" * 60)
    return env


class Worker:
    def __init__(self, args: tuple[str, ...], folder: Path):
        self.log = folder / f"worker-{time.monotonic_ns()}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--no-reload", "--queue-name", "*", "--no-startup-delay",
             *args], cwd=ROOT, env=worker_env(), stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while "idle: waiting for a wake-up" not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start:\n{self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime, all threads

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _workflow():
    import uuid

    from tests.builders import edge, make_user, make_workflow, node

    user = make_user(f"bench-pickup-{uuid.uuid4().hex[:8]}", "designer", "operator")
    graph = {"nodes": [node("src", "source.upload"), node("out", "sink.table")], "edges": [edge("src", "out")]}
    return make_workflow(user, graph, name="bench-pickup"), user


def _sample(workflow, user, rng: random.Random) -> float:
    """One run: milliseconds from its commit to its shard's claim (the worker waits meanwhile)."""
    from django.db import transaction
    from django_tasks_db.models import DBTaskResult

    from workflows import statuses
    from workflows.engine import launch
    from workflows.models import Run, Shard

    time.sleep(rng.uniform(0.1, 1.1))  # the worker waits again, at any point of a 1 s poll
    marks: list[float] = []
    with transaction.atomic():
        # The first after-commit callback: the time right after COMMIT, before the others run.
        transaction.on_commit(lambda: marks.append(time.time()))
        run = launch.create_run(workflow, user=user, items=[{"text": "ciao"}])
    committed = marks[0]
    task_id = Shard.objects.filter(run=run).values_list("task_id", flat=True).get()
    deadline = time.monotonic() + 60
    started = None
    while started is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run.pk} was not claimed within 60 s")
        time.sleep(0.005)
        started = DBTaskResult.objects.filter(id=task_id).values_list("started_at", flat=True).get()
    while Run.objects.filter(pk=run.pk, status__in=statuses.ACTIVE_RUN_STATUSES).exists():
        time.sleep(0.01)
    return (started.timestamp() - committed) * 1000


def measure_pickup(count: int = 60, *, idle_seconds: float = 30.0, worker_args: tuple[str, ...] = (),
                   folder: Path | None = None) -> PickupFigures:
    """Pickup figures of a `run_worker` started with `worker_args` (none: its defaults, the wake-up)
    on the database Django uses now. Django must be set up and the database migrated."""
    return _measure([worker_args], count, blocks=1, idle_seconds=idle_seconds, folder=folder)[0]


def compare_pickup(count: int = 60, *, blocks: int = 5, idle_seconds: float = 30.0,
                   folder: Path | None = None) -> tuple[PickupFigures, PickupFigures]:
    """(woken, polling every 1 s as before) in alternating blocks, so that the shared machine's
    drifts in speed fall on both alike."""
    woken, polled = _measure([(), NO_WAKEUP], count, blocks=blocks, idle_seconds=idle_seconds, folder=folder)
    return woken, polled


def _measure(modes: list[tuple[str, ...]], count: int, *, blocks: int, idle_seconds: float,
             folder: Path | None) -> list[PickupFigures]:
    folder = folder or Path(tempfile.mkdtemp(prefix="cf-pickup-"))
    workflow, user = _workflow()
    rng = random.Random(20)
    figures = [PickupFigures() for _ in modes]
    per_block = max(1, count // blocks)
    for block in range(blocks):
        for mode, figure in zip(modes, figures, strict=True):
            worker = Worker(mode, folder)
            try:
                figure.samples_ms += [_sample(workflow, user, rng) for _ in range(per_block)]
                if block == blocks - 1 and idle_seconds:
                    time.sleep(1)  # the last run's after-effects (monitor, live flush) are over
                    before = worker.cpu_seconds()
                    time.sleep(idle_seconds)
                    figure.idle_cpu_pct = (worker.cpu_seconds() - before) / idle_seconds * 100
            finally:
                worker.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=60, help="runs per worker kind")
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    parser.add_argument("--compare-polling", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cf-bench-pickup-"))
    pg = os.environ.get("DATABASE_URL", "").startswith("postgres")
    os.environ.update({"DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 60, "LOG_LEVEL": "WARNING"})
    if not pg:
        os.environ["SQLITE_TEST_PATH"] = str(tmp / "bench.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    if pg:
        settings.DATABASES["default"]["TEST"]["NAME"] = "factory_bench_pickup"
    old = setup_databases(verbosity=0, interactive=False)
    try:
        if args.compare_polling:
            woken, polled = compare_pickup(args.count, idle_seconds=args.idle_seconds, folder=tmp)
            print(f"{connection.vendor}: polling every 1 s (before): {len(polled.samples_ms)} runs, "
                  f"{polled.line()}")
        else:
            woken = measure_pickup(args.count, idle_seconds=args.idle_seconds, folder=tmp)
        print(f"{connection.vendor}: woken (LISTEN/NOTIFY or FIFO, polling every "
              f"{settings.ENGINE_WORKER_POLL_SECONDS:g} s): {len(woken.samples_ms)} runs, "
              f"min {min(woken.samples_ms):.1f} ms, max {max(woken.samples_ms):.1f} ms")
    finally:
        teardown_databases(old, verbosity=0)
    print(woken.line())


if __name__ == "__main__":
    main()
