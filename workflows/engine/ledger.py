"""The decision ledger's write path: what a micro-batch commits, as fast as each database allows.

PostgreSQL: one prepared statement for the head of the batch (fence, item statuses, run counters,
NodeStats sums) and COPY for the decisions. SQLite: the ORM for the head, one prepared INSERT per
decision and NodeStats merged in Python. The encoders keep values PostgreSQL would refuse (NaN,
NUL) from failing a batch on every retry. The executor (executor.py) decides what to write; this
module only writes it.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from workflows.models import NodeStats, ReviewTask

from .stats import StatsDelta, merge_into

SPOT_CHECK_QUEUE = "spot-check"
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
            f"{mine} || coalesce((SELECT jsonb_object_agg(e.key, "
            f"coalesce(({mine} ->> e.key)::numeric, 0) + e.value::numeric) "
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
# - sampled: the batch's spot checks (a sample of what a model decided alone; the items have gone on),
#   here rather than in an INSERT of their own: about half the micro-batches of a model node draw one
#   at 2 %, and a statement of their own cost ~0.6 ms each (0.37 ms a batch on average, more than the
#   engine's whole per-node overhead); in this statement an empty sample costs next to nothing. ON
#   CONFLICT keeps one task per (run, item, node) when a batch is committed again.
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
         latency_hist jsonb, latency_sum_ms float8, labels jsonb, confidence_hist jsonb, cpu_seconds float8,
         extra jsonb)
    WHERE EXISTS (SELECT 1 FROM fence)
    ORDER BY d.node
    ON CONFLICT (run_id, node) DO UPDATE SET """
    + ", ".join(f"{f} = workflows_nodestats.{f} + EXCLUDED.{f}" for f in STATS_COUNTERS) + ", "
    + ", ".join(f"{f} = {_map_sum(f)}" for f in STATS_MAPS)
    + """, batches = workflows_nodestats.batches + 1, updated_at = EXCLUDED.updated_at
    RETURNING 1),
sampled AS (
    INSERT INTO workflows_reviewtask (run_id, item_id, node, queue, kind, status, proposal, instructions, created_at)
    SELECT %(run)s, s.item_id, s.node, '""" + SPOT_CHECK_QUEUE + """', 'spot_check', 'open', s.proposal, '', %(now)s
    FROM json_to_recordset(%(spots)s::json) AS s(item_id bigint, node text, proposal jsonb)
    WHERE EXISTS (SELECT 1 FROM fence)
    ON CONFLICT (run_id, item_id, node) DO NOTHING
    RETURNING 1)
SELECT (SELECT count(*) FROM fence), (SELECT value FROM cfg), (SELECT count(*) FROM counted),
       (SELECT count(*) FROM summed), (SELECT count(*) FROM sampled)
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
        values = [encode(v) if f in json_fields else adapt(v) if f == "updated_at" else v
                  for f, v in zip(STATS_FIELDS, values, strict=True)]
        params.append([*values, row.pk])
    with connection.cursor() as cursor:
        cursor.executemany(f"UPDATE workflows_nodestats SET {sets} WHERE id = %s", params)


_encode_strict = DjangoJSONEncoder(ensure_ascii=False, allow_nan=False).encode
# COPY's text format: backslash escapes for the four characters that would end a field or a row;
# NUL (which PostgreSQL's text cannot hold) is dropped.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": ""})


def _clean(value: Any) -> Any:
    """The value with NaN and infinities as None and NUL characters dropped (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def ledger_json(value: Any) -> str:
    """JSON for the ledger's jsonb columns. PostgreSQL's jsonb holds neither NaN nor NUL, and a
    refused batch would fail the shard on every retry: a handler that yields one gets null for the
    number and loses the NUL character. (The checks cost one scan of the text; the fix-up is rare.)"""
    try:
        text = _encode_strict(value)
    except ValueError:
        return _encode_strict(_clean(value))
    return _encode_strict(_clean(value)) if "\\u0000" in text else text


def encode_output(output: dict[str, Any]) -> str:
    """A decision's output as JSON (see ledger_json)."""
    return ledger_json(output) if output else "{}"


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
                        f"VALUES ({', '.join(['%s'] * len(DECISION_COLUMNS))}) "
                        "ON CONFLICT (run_id, item_id, node) DO NOTHING")


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


def spots_json(spots: list[dict]) -> str:
    """A batch's spot checks as the JSON array BATCH_HEAD_SQL reads. A proposal is a model's raw output
    (scores): encoded like the ledger's JSON, or one NaN would fail the batch on every retry."""
    return ledger_json(spots) if spots else "[]"


def insert_review_tasks(run_id: int, parks: list[dict], spots: list[dict], now: Any) -> None:
    """A micro-batch's review tasks in one INSERT: escalations (the item waits for a person) and, on
    SQLite, spot checks (a sample of what a model decided alone; the item has gone on: PostgreSQL
    writes them in BATCH_HEAD_SQL). ON CONFLICT DO NOTHING on (run, item, node): a batch committed
    again after an IntegrityError, or a retry that drew the same sample, writes each task once."""
    rows = [ReviewTask(run_id=run_id, item_id=p["item_id"], node=p["node"], queue=p["queue"][:80],
                       instructions=p["instructions"], proposal={"labels": p["labels"], **p["proposal"]},
                       created_at=now)
            for p in parks]
    rows += [ReviewTask(run_id=run_id, item_id=s["item_id"], node=s["node"], queue=SPOT_CHECK_QUEUE,
                        kind=ReviewTask.SPOT_CHECK, proposal=_clean(s["proposal"]), created_at=now)
             for s in spots]
    ReviewTask.objects.bulk_create(rows, ignore_conflicts=True)
