"""Runs one shard through the plan, micro-batch by micro-batch.

For each micro-batch every node runs once over the items routed to it (routing splits the batch by
port), then ONE transaction writes what the batch decided: the fence check (the shard still carries
our attempt and is still running: a zombie or a cancelled shard commits nothing), the decisions (one
multi-row insert, ON CONFLICT DO NOTHING on (run, item, node)), review tasks, dead letters, item
statuses, run counters and the NodeStats merge. Inference happens outside the transaction, so row
locks are held for milliseconds.

A retried shard skips items already finished and, for the others, replays recorded decisions (their
outputs and routes) instead of recomputing them: the ledger is the checkpoint.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from workflows.graph.plan import Plan, Step, plan

from . import state
from .handlers import Handler, Outcome, RunContext, handler_for
from .state import ItemState
from .stats import StatsDelta, merge_into

logger = logging.getLogger(__name__)
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"

# --- the live-metrics hook -----------------------------------------------------------------------

BATCH_LISTENERS: list[Callable[[int, list[str]], None]] = []


def after_batch_commit(run_id: int, nodes: list[str]) -> None:
    """Called (transaction.on_commit) after each micro-batch commit with the nodes whose NodeStats
    changed. The live-metrics issue attaches its coalesced broadcast with `BATCH_LISTENERS.append`."""
    for listener in BATCH_LISTENERS:
        try:
            listener(run_id, nodes)
        except Exception:  # a broadcast must never fail a committed batch
            logger.exception("batch listener failed for run %s", run_id)


class Fenced(Exception):
    """The shard moved on (newer attempt, cancelled): this worker must not commit."""


@lru_cache(maxsize=64)
def plan_for_version(version_id: int, checksum: str) -> Plan:
    """The plan of a version, cached per process (keyed by the checksum too: ids can be reused)."""
    from workflows.models import WorkflowVersion
    from workflows.resolvers import graph_resolvers

    version = WorkflowVersion.objects.get(pk=version_id)
    # Model references were resolved when the run started; re-checking them here would make a
    # retired alias fail a run that already pinned its versions.
    resolvers = {k: v for k, v in graph_resolvers().items() if k != "resolve_alias"}
    return plan(version.as_graph(), **resolvers)


@dataclass
class Recorded:
    output: dict[str, Any]
    port: str


class ShardRunner:
    def __init__(self, shard: Any, run: Any, attempt: int):
        self.shard = shard
        self.run = run
        self.attempt = attempt
        self.plan = plan_for_version(run.version_id, run.version.checksum)
        self.context = RunContext(run_id=run.pk, workflow_id=run.workflow_id, models=run.resolved_models or {},
                                  shard_id=shard.pk, attempt=attempt)
        self.handlers: dict[str, Handler | str] = {}
        self.batch_no = 0

    # -- handlers ---------------------------------------------------------------------------------

    def handler(self, step: Step) -> Handler | str:
        """The prepared handler for a step, or the reason it cannot run (every item then fails there)."""
        if step.node.id not in self.handlers:
            try:
                handler = handler_for(step.node.type)()
                handler.prepare(step, self.context)
                self.handlers[step.node.id] = handler
            except Exception as exc:
                logger.exception("preparing node %s failed", step.node.id)
                self.handlers[step.node.id] = f"the node could not start: {type(exc).__name__}: {exc}"
        return self.handlers[step.node.id]

    def call(self, step: Step, batch: list[ItemState], delta: StatsDelta) -> tuple[list[Outcome], list[int]]:
        """Outcomes for a batch with the node's retry policy applied to transient errors."""
        handler = self.handler(step)
        if isinstance(handler, str):
            return [Outcome(error=handler, error_code="node_unavailable") for _ in batch], [1] * len(batch)
        retries = int(step.config.get("retries") or 0)
        results: list[Outcome | None] = [None] * len(batch)
        tries = [0] * len(batch)
        pending = list(range(len(batch)))
        attempt = 1
        while pending:
            sub = [batch[i] for i in pending]
            started, cpu = time.perf_counter(), time.process_time()
            try:
                outs = handler.process(sub, step)
                if len(outs) != len(sub):
                    raise RuntimeError(f"handler returned {len(outs)} outcomes for {len(sub)} items")
            except Exception as exc:
                logger.exception("node %s failed on a batch", step.node.id)
                outs = [Outcome(error=f"{type(exc).__name__}: {exc}", error_code="exception", transient=True) for _ in sub]
            share = (time.perf_counter() - started) * 1000 / len(sub)
            delta.cpu_seconds += time.process_time() - cpu
            again = []
            for index, out in zip(pending, outs, strict=True):
                tries[index] = attempt
                if out.latency_ms is None:
                    out.latency_ms = share
                if out.error and out.transient and state.should_retry(attempt, retries):
                    again.append(index)
                else:
                    results[index] = out
            if again:
                delta.retries += len(again)
                time.sleep(state.backoff_seconds(attempt, settings.ENGINE_RETRY_BACKOFF_SECONDS))
            pending = again
            attempt += 1
        return [r for r in results if r is not None], tries

    # -- one micro-batch --------------------------------------------------------------------------

    def process(self, rows: list[tuple[int, int, dict]], recorded: dict[int, dict[str, Recorded]],
                reviews: dict[tuple[int, str], dict]) -> None:
        self.batch_no += 1
        batch_id = f"{self.shard.pk}.{self.attempt}.{self.batch_no}"
        source = self.run.source_node
        items = [ItemState(item_id=i, seq=seq, data=dict(payload), inbox={source}) for i, seq, payload in rows]
        decisions: list[tuple] = []
        parks: list[dict] = []
        dead: list[dict] = []
        deltas: dict[str, StatsDelta] = {}
        now = timezone.now()
        for step in self.plan.steps:
            node = step.node.id
            arriving = [s for s in items if node in s.inbox]
            if not arriving:
                continue
            fresh = []
            for s in arriving:
                s.inbox.discard(node)
                done = recorded.get(s.item_id, {}).get(node)
                if done is None:
                    fresh.append(s)
                elif done.port == state.PARKED:
                    answer = reviews.get((s.item_id, node))
                    if answer is None:
                        s.parked = True
                    else:
                        state.merge_fields(s.data, answer)
                        s.route(step.routes.get("out", ()))
                elif done.port == state.DEAD:
                    s.dead = True
                else:
                    state.merge_fields(s.data, done.output)
                    s.route(step.routes.get(done.port, ()))
            if not fresh:
                continue
            delta = deltas.setdefault(node, StatsDelta())
            outcomes, tries = self.call(step, fresh, delta)
            for s, out, tried in zip(fresh, outcomes, tries, strict=True):
                added = dict(out.fields)
                if out.label is not None:
                    added.setdefault("label", out.label)
                if out.confidence is not None:
                    added.setdefault("confidence", out.confidence)
                label = added.get("label") if isinstance(added.get("label"), str) else None
                confidence = added.get("confidence") if isinstance(added.get("confidence"), int | float) else None
                if out.park is not None and not out.error:
                    port = state.PARKED
                    s.parked = True
                    parks.append({"item_id": s.item_id, "node": node, **out.park})
                else:
                    port = state.resolve_port(port=out.port, error=out.error, routes=step.routes)
                    if port == state.DEAD:
                        s.dead = True
                        dead.append({"item_id": s.item_id, "node": node, "reason": out.error,
                                     "error_code": out.error_code, "attempts": tried})
                    else:
                        state.merge_fields(s.data, added)
                        s.route(step.routes.get(port, ()))
                delta.observe(port=port or "done", latency_ms=out.latency_ms or 0.0, label=label,
                              confidence=confidence, error=bool(out.error), extra=out.stats)
                decisions.append((self.run.pk, s.item_id, node, out.model_ref[:200], added, label, confidence, port,
                                  out.latency_ms or 0.0, out.error, tried, batch_id, len(fresh), self.attempt, now))
        self.commit(items, decisions, parks, dead, deltas, now)

    def commit(self, items: list[ItemState], decisions: list[tuple], parks: list[dict], dead: list[dict],
               deltas: dict[str, StatsDelta], now: Any) -> None:
        from workflows.models import DeadLetter, Item, NodeStats, ReviewTask, Run, Shard

        by_status: dict[str, list[int]] = defaultdict(list)
        for s in items:
            by_status[s.final_status].append(s.item_id)
        with transaction.atomic():
            fenced = Shard.objects.filter(pk=self.shard.pk, attempt=self.attempt, status=Shard.RUNNING).update(heartbeat=now)
            if fenced != 1:
                raise Fenced(f"shard {self.shard.pk} attempt {self.attempt} is no longer current")
            insert_decisions(decisions)
            if parks:
                ReviewTask.objects.bulk_create([
                    ReviewTask(run_id=self.run.pk, item_id=p["item_id"], node=p["node"], queue=p["queue"][:80],
                               instructions=p["instructions"], proposal={"labels": p["labels"], **p["proposal"]})
                    for p in parks], ignore_conflicts=True)
            if dead:
                DeadLetter.objects.bulk_create([
                    DeadLetter(run_id=self.run.pk, item_id=d["item_id"], node=d["node"], reason=d["reason"] or "failed",
                               error_code=d["error_code"][:60], attempts=d["attempts"]) for d in dead])
            counters = {}
            for status, field in (("done", "items_done"), ("dead", "items_dead"), ("parked", "items_parked")):
                if by_status.get(status):
                    moved = Item.objects.filter(id__in=by_status[status], status=Item.PENDING).update(status=status, finished_at=now)
                    if moved:
                        counters[field] = F(field) + moved
            if counters:
                Run.objects.filter(pk=self.run.pk).update(**counters)
            if deltas:
                # Locked in node order by every worker: two workers on one run queue here, never deadlock.
                rows = list(NodeStats.objects.select_for_update().filter(run_id=self.run.pk, node__in=list(deltas)).order_by("node"))
                missing = set(deltas) - {r.node for r in rows}
                for node in sorted(missing):
                    rows.append(NodeStats.objects.create(run_id=self.run.pk, node=node))
                for row in rows:
                    merge_into(row, deltas[row.node])
                    row.updated_at = now
                write_stats(rows)
                nodes = sorted(deltas)
                transaction.on_commit(lambda: after_batch_commit(self.run.pk, nodes))


STATS_FIELDS = ["items_in", "ports", "errors", "retries", "latency_hist", "latency_sum_ms", "labels",
                "confidence_hist", "cpu_seconds", "extra", "batches", "updated_at"]
DECISION_COLUMNS = ("run_id", "item_id", "node", "model_ref", "output", "label", "confidence", "port", "latency_ms",
                    "error", "attempt", "batch_id", "batch_size", "shard_attempt", "created_at")


def write_stats(rows: list[Any]) -> None:
    """Save merged NodeStats rows: one prepared UPDATE, executemany (bulk_update's CASE WHEN per
    field per row cost 9 ms a batch for 20 nodes)."""
    json_fields = {"ports", "latency_hist", "labels", "confidence_hist", "extra"}
    cast = "::jsonb" if connection.vendor == "postgresql" else ""
    sets = ", ".join(f"{f} = %s{cast if f in json_fields else ''}" for f in STATS_FIELDS)
    encode = DjangoJSONEncoder().encode
    adapt = connection.ops.adapt_datetimefield_value
    params = []
    for row in rows:
        values = [getattr(row, f) for f in STATS_FIELDS]
        values = [encode(v) if f in json_fields else adapt(v) if f == "updated_at" else v for f, v in zip(STATS_FIELDS, values, strict=True)]
        params.append([*values, row.pk])
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE workflows_nodestats SET {sets} WHERE id = %s", params)


def insert_decisions(rows: list[tuple]) -> None:
    """One INSERT … ON CONFLICT (run, item, node) DO NOTHING for the whole micro-batch.

    The raw statement is what `bulk_create(ignore_conflicts=True)` sends, without building a model
    instance per row (that alone cost more than the insert for a 20-node chain).
    """
    if not rows:
        return
    ops = connection.ops
    encode = DjangoJSONEncoder(ensure_ascii=False).encode
    when = ops.adapt_datetimefield_value(rows[0][-1])
    values = [(r[0], r[1], r[2], r[3], encode(r[4]) if r[4] else "{}", r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], when)
              for r in rows]
    columns = ", ".join(DECISION_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Fifteen array parameters unnested server-side: one short statement however many rows
            # (a VALUES list of 10,000 placeholders cost more to build than to insert).
            types = ("bigint", "bigint", "text", "text", "text", "text", "float8", "text", "float8", "text", "int", "text",
                     "int", "int")
            arrays = [[row[i] for row in values] for i in range(len(types))]
            selects = ", ".join(f"c{i}::jsonb" if DECISION_COLUMNS[i] == "output" else f"c{i}" for i in range(len(types)))
            cursor.execute(
                f"INSERT INTO workflows_decision ({columns}) SELECT {selects}, %s FROM unnest("
                + ", ".join(f"%s::{t}[]" for t in types) + f") AS t({', '.join(f'c{i}' for i in range(len(types)))}) "
                "ON CONFLICT (run_id, item_id, node) DO NOTHING", [when, *arrays])
        else:
            # SQLite runs a prepared statement per row in C: faster than one long statement.
            cursor.executemany(f"INSERT INTO workflows_decision ({columns}) VALUES ({', '.join(['%s'] * len(DECISION_COLUMNS))}) "
                               "ON CONFLICT (run_id, item_id, node) DO NOTHING", values)


# --- a whole shard ---------------------------------------------------------------------------------


def run_shard(shard_id: int, attempt: int) -> dict[str, Any]:
    """Run one shard attempt. Returns a small summary (stored as the task's return value)."""
    from workflows.models import Decision, Item, Run, Shard
    from workflows.models.review import ReviewTask

    now = timezone.now()
    claimed = Shard.objects.filter(pk=shard_id, attempt=attempt, status__in=[Shard.QUEUED, Shard.RUNNING]).update(
        status=Shard.RUNNING, heartbeat=now, worker=WORKER_NAME[:80], started_at=now)
    if not claimed:
        return {"shard": shard_id, "attempt": attempt, "skipped": "stale or cancelled"}
    shard = Shard.objects.get(pk=shard_id)
    Run.objects.filter(pk=shard.run_id, status=state.QUEUED).update(status=state.RUNNING, started_at=now)
    run = Run.objects.select_related("version").get(pk=shard.run_id)
    if run.status not in state.ACTIVE_RUN_STATUSES:
        Shard.objects.filter(pk=shard_id, attempt=attempt).update(status=Shard.CANCELLED, finished_at=now)
        return {"shard": shard_id, "skipped": run.status}
    runner = ShardRunner(shard, run, attempt)

    items = Item.objects.filter(run_id=run.pk, status=Item.PENDING)
    if shard.item_ids is not None:
        items = items.filter(id__in=shard.item_ids)
    else:
        items = items.filter(seq__gte=shard.start_seq, seq__lt=shard.end_seq)
    rows = list(items.order_by("seq").values_list("id", "seq", "payload"))
    recorded: dict[int, dict[str, Recorded]] = defaultdict(dict)
    reviews: dict[tuple[int, str], dict] = {}
    if rows and (attempt > 1 or shard.item_ids is not None):
        ids = [r[0] for r in rows]
        parked = []
        for item_id, node, output, port in Decision.objects.filter(run_id=run.pk, item_id__in=ids).values_list(
                "item_id", "node", "output", "port"):
            recorded[item_id][node] = Recorded(output or {}, port)
            if port == state.PARKED:
                parked.append(item_id)
        if parked:
            for item_id, node, result in ReviewTask.objects.filter(
                    run_id=run.pk, item_id__in=parked, status=ReviewTask.DECIDED).values_list("item_id", "node", "result"):
                reviews[(item_id, node)] = result or {}
    size = run.batch_size
    try:
        for start in range(0, len(rows), size):
            runner.process(rows[start : start + size], recorded, reviews)
        with transaction.atomic():
            done = Shard.objects.filter(pk=shard_id, attempt=attempt, status=Shard.RUNNING).update(
                status=Shard.DONE, finished_at=timezone.now(), heartbeat=timezone.now())
    except Fenced as exc:
        logger.info("%s", exc)
        return {"shard": shard_id, "attempt": attempt, "fenced": True}
    if done:
        from .launch import maybe_finish_run

        maybe_finish_run(run.pk)
    return {"shard": shard_id, "attempt": attempt, "items": len(rows), "batches": runner.batch_no}
