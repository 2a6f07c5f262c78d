"""Executor overhead and full-product throughput, measured in one run on this machine.

(a) overhead per node per micro-batch: a shard through source → 20 no-op stations → table minus the
    same shard through source → table, divided by 20 × micro-batches. Everything a station costs is
    in it: routing, the decision rows, the NodeStats merge, the transaction. In-process, no queue.
(b) product vs bare: documents enqueued as a run, claimed by a real `run_worker` process, classified
    (MiniLM int8 + BBC head, the lead's runtime) and written to the ledger, start to final status;
    against a bare onnxruntime loop running the same runtime over the same short documents in
    batches of 32. Ratio = bare time / product time (1.0 = no overhead), the median over 5 pairs
    each measured back to back.
Medians of 5 interleaved repetitions. A throwaway database is created and dropped (PostgreSQL when
DATABASE_URL is set, else a SQLite file). Ends with one line:
overhead_ms_per_node_batch=… product_vs_bare=…

    .venv/bin/python bench/engine.py [--docs 2048] [--rss-items 0]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
REPS = 5
CHAIN = 20


def short_tickets(count: int) -> list[str]:
    """Support tickets of 20–60 tokens, varied enough that no two batches are identical."""
    openings = ["Hello, my invoice", "Hi team, the app", "Good morning, our order", "Dear support, the router",
                "Hey, my account", "Hello, the match stream", "Hi, the new phone", "Good evening, the election site"]
    middles = ["was charged twice this month", "crashes every time I open the settings page",
               "has not arrived although you promised delivery by Friday",
               "keeps dropping the connection after an update", "was locked after three failed logins",
               "buffers constantly during the second half", "gets very hot while charging overnight",
               "shows the wrong results for my region"]
    endings = ["Please help me as soon as possible.", "Can you refund the difference?", "What should I do next?",
               "I need this fixed before Monday.", "Thanks in advance for your help.", "Is this a known problem?"]
    return [f"{openings[i % 8]} {middles[(i // 8) % 8]} (ref {1000 + i}). {endings[(i // 64) % 6]}"
            for i in range(count)]


def setup_django(db_env: dict[str, str]) -> None:
    os.environ.update(db_env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")
    import django

    django.setup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=2048)
    parser.add_argument("--rss-items", type=int, default=0, help="also run this many items and report worker RSS")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cf-bench-"))
    pg = os.environ.get("DATABASE_URL", "").startswith("postgres")
    db_env = {"ENGINE_HANDLER_MODULES": "bench.engine_handlers", "ENGINE_SHARD_SIZE": "256", "ENGINE_BATCH_SIZE": "32",
              "ENGINE_MONITOR_SECONDS": "1", "DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 60, "LOG_LEVEL": "WARNING"}
    if not pg:
        db_env["SQLITE_TEST_PATH"] = str(tmp / "bench.sqlite3")
    setup_django(db_env)
    from django.conf import settings
    from django.db import connection
    from django.test.utils import setup_databases, teardown_databases

    if pg:
        settings.DATABASES["default"]["TEST"]["NAME"] = "factory_bench"
    old = setup_databases(verbosity=0, interactive=False)
    worker = None
    try:
        import bench.engine_handlers  # noqa: F401  (registers the no-op type and the bench classifier)
        from tests.builders import edge, make_user, make_workflow, node
        from tests.engine.helpers import register_model
        from workflows.engine import launch
        from workflows.engine.executor import run_shard
        from workflows.models import Run, Shard

        user = make_user("bench", "designer", "operator")
        vendor = connection.vendor

        # --- (a) overhead per node per micro-batch --------------------------------------------------
        def chain(length: int) -> dict:
            nodes = ([node("src", "source.upload")] + [node(f"n{i}", "bench.noop") for i in range(length)]
                     + [node("out", "sink.table")])
            ids = [n["id"] for n in nodes]
            return {"nodes": nodes, "edges": [edge(a, b) for a, b in itertools.pairwise(ids)]}

        long_wf = make_workflow(user, chain(CHAIN), name="chain-20")
        short_wf = make_workflow(user, chain(0), name="chain-0")
        items = [{"text": t} for t in short_tickets(640)]
        batches = len(items) // 32
        settings.ENGINE_SHARD_SIZE = len(items)

        def shard_seconds(workflow) -> float:
            run = launch.create_run(workflow, user=user, items=items)
            shard = Shard.objects.get(run=run)
            started = time.perf_counter()
            run_shard(shard.pk, shard.attempt)
            elapsed = time.perf_counter() - started
            assert Run.objects.get(pk=run.pk).items_done == len(items)
            return elapsed

        shard_seconds(long_wf)  # warm-up
        long_t, short_t = [], []
        for _ in range(REPS):
            long_t.append(shard_seconds(long_wf))
            short_t.append(shard_seconds(short_wf))
        overhead_ms = (statistics.median(long_t) - statistics.median(short_t)) * 1000 / (CHAIN * batches)
        print(f"(a) {vendor}: {len(items)} items, {batches} micro-batches of 32: "
              f"chain-20 {statistics.median(long_t) * 1000:.0f} ms, "
              f"chain-0 {statistics.median(short_t) * 1000:.0f} ms per shard → "
              f"{overhead_ms:.3f} ms per node per micro-batch")

        # --- (b) product vs bare -------------------------------------------------------------------
        settings.ENGINE_SHARD_SIZE = 256
        register_model("bbc", "classifier")
        wf = make_workflow(user, {"nodes": [node("src", "source.upload"),
                                            node("cls", "classify", model="bbc@production"),
                                            node("out", "sink.table")],
                                  "edges": [edge("src", "cls"), edge("cls", "out")]}, name="classify")
        docs = short_tickets(args.docs)
        from bench.engine_handlers import classifier

        runtime = classifier()
        env = dict(os.environ)
        db = connection.settings_dict
        if pg:
            env["DATABASE_URL"] = (f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
                                   f"/{db['NAME']}")
        else:
            env["SQLITE_PATH"] = str(db["NAME"])
            env.pop("DATABASE_URL", None)
        worker = subprocess.Popen([sys.executable, "manage.py", "run_worker", "--no-reload", "--queue-name", "*",
                                   "-v", "0"], cwd=ROOT, env=env)  # serve's settings: woken by NOTIFY

        def product_seconds(count: int) -> float:
            started = time.perf_counter()
            run = launch.create_run(wf, user=user, items=[{"text": t} for t in docs[:count]])
            deadline = time.monotonic() + 600
            with connection.cursor() as cursor:  # the watcher's own cost kept small: one plain query per 10 ms
                while time.monotonic() < deadline:
                    cursor.execute("SELECT status FROM workflows_run WHERE id = %s", [run.pk])
                    if cursor.fetchone()[0] not in ("queued", "running"):
                        break
                    time.sleep(0.01)
            elapsed = time.perf_counter() - started
            run.refresh_from_db()
            assert run.status == "succeeded" and run.items_done == count, (run.status, run.items_done)
            return elapsed

        def bare_seconds() -> float:
            started = time.perf_counter()
            for i in range(0, len(docs), 32):
                runtime.classify(docs[i : i + 32])
            return time.perf_counter() - started

        product_seconds(256)  # warm-up: the worker loads the model
        bare_seconds()
        bare_t, product_t = [], []
        for _ in range(REPS):
            bare_t.append(bare_seconds())
            product_t.append(product_seconds(len(docs)))
        # The median of the 5 pairs' ratios: each pair is measured back to back, so the machine's slow
        # drifts in speed (it is shared) cancel out of the ratio instead of deciding it.
        pairs = [b / p for b, p in zip(bare_t, product_t, strict=True)]
        ratio = statistics.median(pairs)
        print(f"(b) {vendor}: {len(docs)} short tickets, MiniLM int8 + BBC head: "
              f"bare {len(docs) / statistics.median(bare_t):.0f} docs/s, "
              f"product (queue → worker → ledger) {len(docs) / statistics.median(product_t):.0f} docs/s; "
              f"pair ratios {' '.join(f'{r:.3f}' for r in sorted(pairs))}")

        if args.rss_items:
            def rss_kb(pid: int) -> int:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
                return 0

            samples = []
            chunk = 10_000
            for done in range(0, args.rss_items, chunk):
                run = launch.create_run(wf, user=user, items=[{"text": docs[i % len(docs)]} for i in range(chunk)])
                while Run.objects.filter(pk=run.pk, status__in=["queued", "running"]).exists():
                    time.sleep(0.2)
                samples.append(rss_kb(worker.pid) // 1024)
                print(f"    worker RSS after {done + chunk} items: {samples[-1]} MB", flush=True)
            print(f"(rss) {args.rss_items} items: worker RSS first {samples[0]} MB, last {samples[-1]} MB, "
                  f"max {max(samples)} MB")
    finally:
        if worker is not None:
            worker.kill()
            worker.wait()
        from workflows.engine import committer

        committer.release()  # (a) ran shards in this process: the commit thread's connection holds the database
        teardown_databases(old, verbosity=0)
    print(f"overhead_ms_per_node_batch={overhead_ms:.3f} product_vs_bare={ratio:.3f}")


if __name__ == "__main__":
    main()
