"""KPI page server time over a large ledger.

Builds one workflow whose ledger holds ROWS decisions (default 1,000,000: 400,000 documents over 12
ISO weeks, each with a cascade decision and a sink decision, a quarter with a large-model answer, a
quarter reviewed by a person with its label), with bulk inserts into a throwaway database
(PostgreSQL when DATABASE_URL is set, else a SQLite file). Then measures:
  cold rollup: every week rebuilt from the ledger (what the first page view after a migration costs);
  week rebuild: one full week recomputed (what a page view costs while documents of that week finish);
  page: GET of the workflow's KPI dashboard as a business owner through the Django test client
        (middleware, queries, template), rollups fresh — median of REPS repetitions;
  overview: the across-workflows page, same way.
Ends with one line: kpi_page_ms=… rows=…

    .venv/bin/python bench/kpi.py [--rows 1000000] [--reps 7]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
LABELS = ["billing", "technical", "account"]


def setup_django(db_env: dict[str, str]) -> None:
    os.environ.update(db_env)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "factory.settings")
    import django

    django.setup()


def build_ledger(rows: int, workflow, user) -> int:
    """Bulk-insert documents until the ledger holds `rows` decisions; returns the decision count."""
    from django.db import connection, transaction
    from django.utils import timezone

    from tests.builders import ledger_run, ledger_stats
    from workflows.kpi.isoweeks import current_week, week_bounds
    from workflows.models import Decision, Item, ReviewTask
    from workflows.models.registry import Label

    rng = random.Random(8)
    # Twelve whole weeks before this one; nothing finishes in the future.
    start = week_bounds(current_week())[0] - timedelta(weeks=12)
    span = 12 * 7 * 86400 - 5 * 86400  # and at most 96 h from receipt to completion
    items_per_run = 10_000
    documents = int(rows / 2.5)
    q = connection.ops.quote_name
    item_sql = (f"INSERT INTO {q(Item._meta.db_table)} (run_id, seq, payload, status, received_at, finished_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)")
    cols = ("run_id", "item_id", "node", "model_ref", "output", "label", "confidence", "port", "latency_ms", "error",
            "attempt", "batch_id", "batch_size", "shard_attempt", "created_at")
    decision_sql = (f"INSERT INTO {q(Decision._meta.db_table)} ({', '.join(cols)}) "
                    f"VALUES ({', '.join(['%s'] * len(cols))})")
    written = 0
    for first in range(0, documents, items_per_run):
        count = min(items_per_run, documents - first)
        with transaction.atomic():
            run = ledger_run(workflow, user)
            plans = []
            item_rows = []
            for seq in range(count):
                received = start + timedelta(seconds=rng.random() * span)
                conf = rng.random()
                path = "small" if conf >= 0.75 else ("large" if rng.random() < 0.5 else "human")
                hours = min(rng.lognormvariate(0.5, 1.0) * (8 if path == "human" else 0.2), 96.0)
                plans.append((seq, received, received + timedelta(hours=hours), conf, path, rng.random() < 0.25))
                item_rows.append((run.pk, seq, json.dumps({"text": f"ticket {first + seq}"}), "done", received,
                                  received + timedelta(hours=hours)))
            with connection.cursor() as cursor:
                cursor.executemany(item_sql, item_rows)
            ids = dict(Item.objects.filter(run=run).values_list("seq", "id"))
            decisions = []
            tasks = []
            for seq, _received, finished, conf, path, answers in plans:
                item_id, small_label = ids[seq], LABELS[seq % 3]
                if path == "large":
                    output = {"label": "billing", "confidence": 0.9, "decided_by": "large",
                              "small": {"label": small_label, "confidence": conf}}
                    decisions.append((run.pk, item_id, "cas", "local/smollm2", json.dumps(output), "billing", 0.9,
                                      "decided"))
                else:
                    output = {"label": small_label, "confidence": conf, "decided_by": path}
                    if path == "human":
                        output["large_answer"] = "label: unsure"
                    decisions.append((run.pk, item_id, "cas", "tickets:v1", json.dumps(output), small_label, conf,
                                      "review" if path == "human" else "decided"))
                if path == "human":
                    decisions.append((run.pk, item_id, "rev", "", "{}", None, None, "parked"))
                    tasks.append((item_id, small_label, conf, finished))
                if answers:
                    output = {"answer": "Dear customer",
                              "llm": {"cost_eur": 0.0004, "tokens_in": 180, "tokens_out": 60}}
                    decisions.append((run.pk, item_id, "ans", "local/smollm2", json.dumps(output), None, None, "out"))
                decisions.append((run.pk, item_id, "out", "", "{}", None, None, "done"))
            now = timezone.now()
            with connection.cursor() as cursor:
                cursor.executemany(decision_sql, [(*d, 5.0, "", 1, "b", 32, 1, now) for d in decisions])
            ReviewTask.objects.bulk_create([ReviewTask(run=run, item_id=i, node="rev", status=ReviewTask.DECIDED,
                                                       result={"label": lab}, decided_at=f)
                                            for i, lab, _, f in tasks], batch_size=5000)
            by_item = dict(ReviewTask.objects.filter(run=run).values_list("item_id", "id"))
            Label.objects.bulk_create([Label(run=run, item_id=i, review_task_id=by_item[i], node="cas", text="t",
                                             label=lab if rng.random() < 0.8 else "account", predicted=lab,
                                             confidence=c)
                                       for i, lab, c, _ in tasks], batch_size=5000)
            calls = sum(1 for p in plans if p[4] != "small")
            ledger_stats(run, "cas", items_in=count, cpu_seconds=count * 0.004,
                         extra={"cost_eur": calls * 0.0003, "tokens": calls * 90, "llm_calls": calls})
            ledger_stats(run, "ans", items_in=sum(p[5] for p in plans), cpu_seconds=0.0)
            written += len(decisions)
        if written >= rows:
            break
    return written


def timed(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="cf-bench-kpi-"))
    pg = os.environ.get("DATABASE_URL", "").startswith("postgres")
    db_env = {"DEBUG": "0", "SECRET_KEY": "bench-" + "x" * 60, "LOG_LEVEL": "WARNING",
              "ALLOWED_HOSTS": "testserver,localhost"}
    if not pg:
        db_env["SQLITE_TEST_PATH"] = str(tmp / "bench.sqlite3")
    setup_django(db_env)
    from django.conf import settings
    from django.db import connection
    from django.test import Client
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
    if pg:
        settings.DATABASES["default"]["TEST"]["NAME"] = "factory_bench_kpi"
    setup_test_environment()
    old = setup_databases(verbosity=0, interactive=False)
    try:
        from tests.builders import make_baseline, make_user, make_workflow
        from workflows.kpi import isoweeks, rollup
        from workflows.models import KpiWeek

        designer = make_user("designer", "designer")
        owner = make_user("owner", "business_owner")
        workflow = make_workflow(designer, name="Bench triage")
        make_baseline(workflow)
        for i in range(4):  # a few small neighbours for the overview
            make_baseline(make_workflow(designer, name=f"Other {i}"))
        started = time.perf_counter()
        rows = build_ledger(args.rows, workflow, designer)
        print(f"inserted {rows:,} decisions in {time.perf_counter() - started:.0f} s ({connection.vendor})", flush=True)
        if pg:
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")

        started = time.perf_counter()
        weeks = rollup.rebuild(workflow.pk)
        cold = time.perf_counter() - started
        print(f"cold rollup: {weeks} weeks in {cold:.1f} s", flush=True)
        busiest = KpiWeek.objects.filter(workflow=workflow).order_by("-facts__docs").values_list(
            "week_start", flat=True).first()
        week_ms = statistics.median(timed(lambda: rollup.store_week(workflow.pk, busiest), 3))
        print(f"one week rebuilt: {week_ms:.0f} ms (week of {busiest})", flush=True)

        client = Client()
        client.force_login(owner)
        last_week = isoweeks.week_label(isoweeks.current_week() - timedelta(weeks=1))
        url = f"/workflows/{workflow.pk}/kpis/?week={last_week}"

        def page() -> None:
            response = client.get(url, secure=True)
            assert response.status_code == 200, response.status_code

        def overview() -> None:
            response = client.get(f"/kpis/?week={last_week}", secure=True)
            assert response.status_code == 200, response.status_code

        # Right after a change every page view recomputes the weeks it touched (that is the week
        # rebuild above); once the ledger has been idle for the refresh margin, pages read rollups only.
        time.sleep(rollup.REFRESH_MARGIN.total_seconds() + 1)
        page()  # warm: templates compiled, rollups fresh
        if os.environ.get("KPI_PROFILE"):
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(page)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
        page_ms = timed(page, args.reps)
        overview_ms = timed(overview, args.reps)
        print(f"dashboard ms: {', '.join(f'{m:.0f}' for m in page_ms)}")
        print(f"overview ms:  {', '.join(f'{m:.0f}' for m in overview_ms)} "
              f"(median {statistics.median(overview_ms):.0f})")
        print(f"kpi_page_ms={statistics.median(page_ms):.0f} rows={rows}")
    finally:
        teardown_databases(old, verbosity=0)


if __name__ == "__main__":
    main()
