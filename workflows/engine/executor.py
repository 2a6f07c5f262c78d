"""Runs one shard through the plan, micro-batch by micro-batch.

For each micro-batch every node runs once over the items routed to it (routing splits the batch by
port), then ONE transaction writes what the batch decided: the fence check (the shard still carries
our attempt and is still running: a zombie or a cancelled shard commits nothing), item statuses,
run counters and the NodeStats merge (on PostgreSQL one prepared statement), the decisions (COPY,
at most one per (run, item, node)), review tasks and dead letters. Inference happens outside the
transaction, so row locks are held for milliseconds.

A retried shard skips items already finished and, for the others, replays recorded decisions (their
outputs and routes) instead of recomputing them: the ledger is the checkpoint.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from workflows.graph.plan import Plan, Step, plan

from . import state
from .handlers import Handler, Outcome, RunContext, handler_for
from .state import ItemState
from .stats import StatsDelta, merge_into

logger = logging.getLogger(__name__)
_ITEM = itemgetter(1)  # a decision row's item
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

    @staticmethod
    def replay(step: Step, arriving: list[ItemState], recorded: dict[int, dict[str, Recorded]],
               reviews: dict[tuple[int, str], dict]) -> list[ItemState]:
        """Items of a retried shard: follow what the ledger recorded for this node (its output and
        route, a reviewer's answer for a parked item) and return the items still to decide."""
        node = step.node.id
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
        return fresh

    def process(self, rows: list[tuple[int, int, dict]], recorded: dict[int, dict[str, Recorded]],
                reviews: dict[tuple[int, str], dict]) -> None:
        self.batch_no += 1
        batch_id = f"{self.shard.pk}.{self.attempt}.{self.batch_no}"
        source = self.run.source_node
        run_id = self.run.pk
        items = [ItemState(item_id=i, seq=seq, data=dict(payload), inbox={source}) for i, seq, payload in rows]
        decisions: list[tuple] = []
        parks: list[dict] = []
        dead: list[dict] = []
        deltas: dict[str, StatsDelta] = {}
        now = timezone.now()
        parked_port, dead_port = state.PARKED, state.DEAD
        for step in self.plan.steps:
            node = step.node.id
            arriving = [s for s in items if node in s.inbox]
            if not arriving:
                continue
            if recorded:
                fresh = self.replay(step, arriving, recorded, reviews)
            else:
                fresh = arriving
                for s in arriving:
                    s.inbox.discard(node)
            if not fresh:
                continue
            delta = deltas.setdefault(node, StatsDelta())
            outcomes, tries = self.call(step, fresh, delta)
            routes = step.routes
            size = len(fresh)
            ports, latencies, labels, confidences = [], [], [], []
            errors = 0
            attempt = self.attempt
            for s, out, tried in zip(fresh, outcomes, tries, strict=True):
                added = out.fields
                label, confidence = out.label, out.confidence
                if label is not None or confidence is not None:
                    added = dict(added)
                    if label is not None:
                        added.setdefault("label", label)
                    if confidence is not None:
                        added.setdefault("confidence", confidence)
                if added:
                    label = added.get("label")
                    if label is not None and not isinstance(label, str):
                        label = None
                    confidence = added.get("confidence")
                    if confidence is not None and not _finite(confidence):
                        # A number or nothing: NaN and infinities would poison every statistic (and JSON).
                        added = {k: v for k, v in added.items() if k != "confidence"}
                        confidence = None
                error = out.error
                if out.park is not None and not error:
                    port = parked_port
                    s.parked = True
                    parks.append({"item_id": s.item_id, "node": node, **out.park})
                else:
                    port = state.resolve_port(port=out.port, error=error, routes=routes) if error else out.port
                    if port == dead_port:
                        s.dead = True
                        dead.append({"item_id": s.item_id, "node": node, "reason": error,
                                     "error_code": out.error_code, "attempts": tried})
                    else:
                        if added:
                            state.merge_fields(s.data, added)
                        targets = routes.get(port)
                        if targets:
                            s.inbox.update(targets)
                if error:
                    errors += 1
                latency = out.latency_ms
                if not (latency.__class__ is float and 0.0 < latency < math.inf):  # the common case: a batch share
                    latency = float(latency) if _finite(latency) and latency > 0 else 0.0
                ports.append(port or "done")
                latencies.append(latency)
                if label is not None:
                    labels.append(label)
                if confidence is not None:
                    confidences.append(confidence)
                if out.stats:
                    delta.add_extra(out.stats)
                decisions.append((run_id, s.item_id, node, out.model_ref[:200], added, label, confidence, port,
                                  latency, error, tried, batch_id, size, attempt, now))
            delta.observe_many(ports=ports, latencies=latencies, labels=labels, confidences=confidences, errors=errors)
        # Item by item, as the ledger's unique index (run, item, node) is ordered, so each row lands on
        # its rightmost page; the sort is stable, so an item's decisions keep the plan's order (and
        # their ids, which readers merge outputs by, still follow it).
        decisions.sort(key=_ITEM)
        self.commit(items, decisions, parks, dead, deltas, now)

    def commit(self, items: list[ItemState], decisions: list[tuple], parks: list[dict], dead: list[dict],
               deltas: dict[str, StatsDelta], now: Any) -> None:
        """One transaction for the micro-batch. COPY cannot skip decisions already in the ledger; the
        shard fence makes that impossible in normal operation (a retried shard replays what the ledger
        holds), and if it ever happens (one attempt delivered twice) the whole batch is committed again
        with the INSERT that skips them."""
        try:
            self._commit(items, decisions, parks, dead, deltas, now, fast=True)
        except IntegrityError:
            logger.warning("shard %s: decisions already in the ledger, keeping the recorded ones", self.shard.pk)
            self._commit(items, decisions, parks, dead, deltas, now, fast=False)

    def _commit(self, items: list[ItemState], decisions: list[tuple], parks: list[dict], dead: list[dict],
                deltas: dict[str, StatsDelta], now: Any, *, fast: bool) -> None:
        from workflows.models import DeadLetter, ReviewTask

        with transaction.atomic():
            if connection.vendor == "postgresql":
                self.write_batch_head(items, deltas, now)
            else:
                self.fence_and_count(items, now)
                if deltas:
                    upsert_stats(self.run.pk, deltas, now)
            insert_decisions(decisions, copy=fast)
            if parks:
                ReviewTask.objects.bulk_create([
                    ReviewTask(run_id=self.run.pk, item_id=p["item_id"], node=p["node"], queue=p["queue"][:80],
                               instructions=p["instructions"], proposal={"labels": p["labels"], **p["proposal"]})
                    for p in parks], ignore_conflicts=True)
            if dead:
                DeadLetter.objects.bulk_create([
                    DeadLetter(run_id=self.run.pk, item_id=d["item_id"], node=d["node"], reason=d["reason"] or "failed",
                               error_code=d["error_code"][:60], attempts=d["attempts"]) for d in dead])
            if deltas:
                nodes = sorted(deltas)
                transaction.on_commit(lambda: after_batch_commit(self.run.pk, nodes))

    def write_batch_head(self, items: list[ItemState], deltas: dict[str, StatsDelta], now: Any) -> None:
        """PostgreSQL, first in the batch's transaction: the fence, the items' statuses, the run's
        counters and the NodeStats sums in one prepared statement (BATCH_HEAD_SQL). Raises Fenced
        (having written nothing) when this attempt no longer owns the running shard."""
        params = {"sync": "on" if settings.ENGINE_SYNCHRONOUS_COMMIT else "off", "now": now, "shard": self.shard.pk,
                  "attempt": self.attempt, "run": self.run.pk, "ids": [s.item_id for s in items],
                  "statuses": [s.final_status for s in items], "stats": stats_json(deltas)}
        fenced = execute_prepared(BATCH_HEAD_SQL, params)[0]
        if fenced != 1:
            raise Fenced(f"shard {self.shard.pk} attempt {self.attempt} is no longer current")

    def fence_and_count(self, items: list[ItemState], now: Any) -> None:
        """SQLite, inside the batch's transaction: check the fence (raise Fenced when this attempt is
        no longer current), move the items to their final status and add them to the run's counters."""
        from workflows.models import Item, Run, Shard

        fenced = Shard.objects.filter(pk=self.shard.pk, attempt=self.attempt, status=Shard.RUNNING).update(heartbeat=now)
        if fenced != 1:
            raise Fenced(f"shard {self.shard.pk} attempt {self.attempt} is no longer current")
        by_status: dict[str, list[int]] = defaultdict(list)
        for s in items:
            by_status[s.final_status].append(s.item_id)
        counters = {}
        for status, field in (("done", "items_done"), ("dead", "items_dead"), ("parked", "items_parked")):
            if by_status.get(status):
                moved = Item.objects.filter(id__in=by_status[status], status=Item.PENDING).update(status=status, finished_at=now)
                if moved:
                    counters[field] = F(field) + moved
        if counters:
            Run.objects.filter(pk=self.run.pk).update(**counters)


STATS_FIELDS = ["items_in", "ports", "errors", "retries", "latency_hist", "latency_sum_ms", "labels",
                "confidence_hist", "cpu_seconds", "extra", "batches", "updated_at"]
STATS_COUNTERS = ("items_in", "errors", "retries", "latency_sum_ms", "cpu_seconds")
STATS_MAPS = ("ports", "latency_hist", "labels", "confidence_hist", "extra")
DECISION_COLUMNS = ("run_id", "item_id", "node", "model_ref", "output", "label", "confidence", "port", "latency_ms",
                    "error", "attempt", "batch_id", "batch_size", "shard_attempt", "created_at")


def _map_sum(field: str) -> str:
    """SQL for `stored + delta` on a {key: number} jsonb map: keys of the delta are summed in, the
    others kept (numeric arithmetic, so counts stay integers). An empty delta (most nodes give no
    labels, confidences or statistics of their own) keeps the stored map as it is."""
    mine = f"workflows_nodestats.{field}"
    return (f"CASE WHEN EXCLUDED.{field} = '{{}}'::jsonb THEN {mine} ELSE "
            f"{mine} || coalesce((SELECT jsonb_object_agg(e.key, coalesce(({mine} ->> e.key)::numeric, 0) + e.value::numeric) "
            f"FROM jsonb_each_text(EXCLUDED.{field}) AS e), '{{}}'::jsonb) END")


# PostgreSQL: the head of a micro-batch's transaction in one prepared statement (one round trip;
# the decisions follow by COPY, in the same transaction).
# - fence: this attempt still owns the running shard (which also refreshes its heartbeat); every
#   write below is conditional on it, so a zombie or a cancelled shard writes nothing.
# - moved/counted: the items' final statuses (only from pending: a replayed item is not counted
#   twice) and the run's counters. The ids come as an array so the update goes by primary key,
#   however many items of the run are still pending.
# - summed: each node's NodeStats row plus this batch's delta, sums done server-side; rows are
#   locked in node order by every worker, so two workers on one run queue, never deadlock.
# The sub-statements run in the order the final SELECT reads them (fence first).
# synchronous_commit is off for the transaction unless ENGINE_SYNCHRONOUS_COMMIT: a batch is
# recomputable, so a database crash may lose its last ~0.6 s of commits (whole transactions, in
# order: the items go back to pending and their shard is re-run; external calls repeat with the same
# idempotency key), and the worker does not wait for the WAL flush. Inputs and people's decisions
# are written elsewhere, durably.
BATCH_HEAD_SQL = (
    """
WITH cfg AS (SELECT set_config('synchronous_commit', %(sync)s, true) AS value),
fence AS (
    UPDATE workflows_shard SET heartbeat = %(now)s
    WHERE id = %(shard)s AND attempt = %(attempt)s AND status = 'running' RETURNING id),
moved AS (
    UPDATE workflows_item AS item SET status = batch.status, finished_at = %(now)s
    FROM unnest(%(ids)s::bigint[], %(statuses)s::text[]) AS batch(id, status)
    WHERE item.id = batch.id AND item.status = 'pending' AND EXISTS (SELECT 1 FROM fence)
    RETURNING item.status),
tally AS (
    SELECT count(*) FILTER (WHERE status = 'done') AS done, count(*) FILTER (WHERE status = 'dead') AS dead,
           count(*) FILTER (WHERE status = 'parked') AS parked FROM moved),
counted AS (
    UPDATE workflows_run AS run SET items_done = run.items_done + tally.done, items_dead = run.items_dead + tally.dead,
           items_parked = run.items_parked + tally.parked
    FROM tally WHERE run.id = %(run)s AND tally.done + tally.dead + tally.parked > 0 RETURNING run.id),
summed AS (
    INSERT INTO workflows_nodestats (run_id, node, """ + ", ".join(STATS_FIELDS) + """)
    SELECT %(run)s, d.node, """ + ", ".join(f"d.{f}" for f in STATS_FIELDS[:-2]) + """, 1, %(now)s
    FROM json_to_recordset(%(stats)s::json) AS d(node text, items_in int, ports jsonb, errors int, retries int,
         latency_hist jsonb, latency_sum_ms float8, labels jsonb, confidence_hist jsonb, cpu_seconds float8, extra jsonb)
    WHERE EXISTS (SELECT 1 FROM fence)
    ORDER BY d.node
    ON CONFLICT (run_id, node) DO UPDATE SET """
    + ", ".join(f"{f} = workflows_nodestats.{f} + EXCLUDED.{f}" for f in STATS_COUNTERS) + ", "
    + ", ".join(f"{f} = {_map_sum(f)}" for f in STATS_MAPS)
    + """, batches = workflows_nodestats.batches + 1, updated_at = EXCLUDED.updated_at
    RETURNING 1)
SELECT (SELECT count(*) FROM fence), (SELECT value FROM cfg), (SELECT count(*) FROM counted), (SELECT count(*) FROM summed)
""")
COPY_SLICE = 128  # decision rows formatted per write
COPY_DECISIONS_SQL = f"COPY workflows_decision ({', '.join(DECISION_COLUMNS[:-1])}) FROM STDIN"  # created_at: now()


EXPLICIT_PREPARE_ONLY = 2**31


def execute_prepared(sql: str, params: Any) -> tuple | None:
    """PostgreSQL: run the executor's per-batch statement as a prepared statement, on the connection
    Django holds (same transaction). Django's client-side binding sends the text every time, and
    PostgreSQL parsed and planned the statement anew for every micro-batch (1 ms of its 5).

    Django opens connections with psycopg's prepare_threshold=None, which makes psycopg ignore
    prepare=True; a threshold no query reaches turns on explicit preparing only (Django's own
    ClientCursor never prepares, so its queries are unaffected)."""
    import psycopg

    connection.ensure_connection()
    raw = connection.connection
    if raw.prepare_threshold is None:
        raw.prepare_threshold = EXPLICIT_PREPARE_ONLY
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchone() if cursor.description else None


def upsert_stats(run_id: int, deltas: dict[str, StatsDelta], now: Any) -> None:
    """SQLite (one writer at a time): add each node's micro-batch delta to its NodeStats row: read,
    merge in Python, write back with one prepared UPDATE. (PostgreSQL sums them in BATCH_HEAD_SQL.)"""
    from workflows.models import NodeStats

    rows = list(NodeStats.objects.filter(run_id=run_id, node__in=list(deltas)).order_by("node"))
    missing = set(deltas) - {r.node for r in rows}
    for node in sorted(missing):
        rows.append(NodeStats.objects.create(run_id=run_id, node=node))
    for row in rows:
        merge_into(row, deltas[row.node])
        row.updated_at = now
    write_stats(rows)


def write_stats(rows: list[Any]) -> None:
    """Save merged NodeStats rows: one prepared UPDATE, executemany (bulk_update's CASE WHEN per
    field per row cost 9 ms a batch for 20 nodes)."""
    json_fields = set(STATS_MAPS)
    encode = DjangoJSONEncoder().encode
    adapt = connection.ops.adapt_datetimefield_value
    sets = ", ".join(f"{f} = %s" for f in STATS_FIELDS)
    params = []
    for row in rows:
        values = [getattr(row, f) for f in STATS_FIELDS]
        values = [encode(v) if f in json_fields else adapt(v) if f == "updated_at" else v for f, v in zip(STATS_FIELDS, values, strict=True)]
        params.append([*values, row.pk])
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE workflows_nodestats SET {sets} WHERE id = %s", params)


_encode = DjangoJSONEncoder(ensure_ascii=False).encode
_encode_strict = DjangoJSONEncoder(ensure_ascii=False, allow_nan=False).encode
# COPY's text format: backslash escapes for the four characters that would end a field or a row;
# NUL (which PostgreSQL's text cannot hold) is dropped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": ""})


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _no_nan(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _no_nan(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_no_nan(v) for v in value]
    return value


def ledger_json(value: Any) -> str:
    """JSON for the ledger's jsonb columns. PostgreSQL's jsonb holds neither NaN nor NUL, and a
    refused batch would fail the shard on every retry: a handler that yields one gets null for the
    number and loses the NUL character. (The checks cost one scan of the text; the fix-up is rare.)"""
    try:
        text = _encode_strict(value)
    except ValueError:
        text = _encode_strict(_no_nan(value))
    if "\\u0000" in text:
        text = _encode_strict(_no_nul(json.loads(text)))
    return text


def encode_output(output: dict[str, Any]) -> str:
    """A decision's output as JSON (see ledger_json)."""
    return ledger_json(output) if output else "{}"


def _no_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_no_nul(k): _no_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_nul(v) for v in value]
    return value


def stats_json(deltas: dict[str, StatsDelta]) -> str:
    """Each node's delta as the JSON array BATCH_HEAD_SQL reads (labels and a handler's own
    statistics come from handlers: see ledger_json)."""
    rows = [{"node": node, "items_in": d.items_in, "ports": d.ports, "errors": d.errors, "retries": d.retries,
                     "latency_hist": d.latency_hist, "latency_sum_ms": d.latency_sum_ms, "labels": d.labels,
                     "confidence_hist": d.confidence_hist, "cpu_seconds": d.cpu_seconds, "extra": d.extra}
            for node, d in deltas.items()]
    return ledger_json(rows)


NULL = "\\N"  # COPY's text format for NULL


def _copy_number(value: Any) -> str:
    if value is None:
        return NULL
    if math.isfinite(value):
        return repr(value)
    return "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"


def copy_text(rows: list[tuple]) -> str:
    """Decision rows (as process() builds them) in COPY's text format, formatted once per
    micro-batch by one expression per row: psycopg's write_row adapts each value through its dumper
    registry, and a generic per-value formatter cost half of the engine's Python time per node.
    The short strings of a batch (nodes, model refs, labels, ports, batch ids) repeat from row to
    row and are escaped once each. created_at is left to the database (the transaction's now())."""
    e = _COPY_ESCAPES
    escaped: dict[str | None, str] = {None: NULL}
    for r in rows:
        for text in (r[2], r[3], r[5], r[7], r[11]):
            if text not in escaped:
                escaped[text] = text.translate(e)
    num = _copy_number
    return "".join(
        f"{r[0]}\t{r[1]}\t{escaped[r[2]]}\t{escaped[r[3]]}\t{encode_output(r[4]).translate(e) if r[4] else '{}'}\t"
        f"{escaped[r[5]]}\t{num(r[6])}\t{escaped[r[7]]}\t{num(r[8])}\t{r[9].translate(e) if r[9] else ''}\t"
        f"{r[10]}\t{escaped[r[11]]}\t{r[12]}\t{r[13]}\n"
        for r in rows)


INSERT_DECISIONS_SQL = (f"INSERT INTO workflows_decision ({', '.join(DECISION_COLUMNS)}) "
                        f"VALUES ({', '.join(['%s'] * len(DECISION_COLUMNS))}) ON CONFLICT (run_id, item_id, node) DO NOTHING")


def insert_decisions(rows: list[tuple], *, copy: bool = True) -> None:
    """Write a micro-batch's decisions, at most one per (run, item, node).

    PostgreSQL with copy=True: COPY (an INSERT of the same rows from one JSON parameter costs the
    database twice as much, and psycopg's quoting of array parameters more than that); a row
    already in the ledger makes it raise IntegrityError (see ShardRunner.commit). Otherwise one
    prepared INSERT … ON CONFLICT DO NOTHING per row (SQLite runs them in C).
    """
    if not rows:
        return
    if copy and connection.vendor == "postgresql":
        with connection.cursor() as cursor, connection.wrap_database_errors:
            with cursor.cursor.copy(COPY_DECISIONS_SQL) as stream:
                # In slices: psycopg sends every 32 kB, so PostgreSQL inserts the first rows while
                # the next are formatted.
                for start in range(0, len(rows), COPY_SLICE):
                    stream.write(copy_text(rows[start : start + COPY_SLICE]))
        return
    when = connection.ops.adapt_datetimefield_value(rows[0][-1])
    values = [(*r[:4], encode_output(r[4]), *r[5:14], when) for r in rows]
    with connection.cursor() as cursor:
        cursor.executemany(INSERT_DECISIONS_SQL, values)


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
