"""Runs one shard through the plan, micro-batch by micro-batch.

For each micro-batch every node runs once over the items routed to it (routing splits the batch by
port), then ONE transaction writes what the batch decided: the fence check (the shard still carries
our attempt and is still running: a zombie or a cancelled shard commits nothing), item statuses,
run counters and the NodeStats merge (on PostgreSQL one prepared statement), the decisions (COPY,
at most one per (run, item, node)), review tasks and dead letters; ledger.py writes them.
Inference happens outside the transaction, so row locks are held for milliseconds.

Model nodes draw spot checks as they record: a sample of the items they decided alone, by a hash of
(run, item, node) (state.spot_sampled), so any attempt draws the same items; they are written with the
batch, and the item goes on.

A retried shard skips items already finished and, for the others, replays recorded decisions (their
outputs and routes) instead of recomputing them: the ledger is the checkpoint.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from workflows import statuses
from workflows.design.references import graph_resolvers
from workflows.graph.catalog import CATALOG, SPOT_CHECK
from workflows.graph.plan import Plan, Step, plan
from workflows.models import DeadLetter, Decision, Item, ReviewTask, Run, Shard, WorkflowVersion

from . import committer, state
from .heartbeat import Heartbeat
from .launch import maybe_finish_run
from .ledger import (
    BATCH_HEAD_SQL,
    execute_prepared,
    insert_decisions,
    insert_review_tasks,
    spots_json,
    stats_json,
    upsert_stats,
)
from .nodes.base import Handler, Outcome, RunContext, handler_for
from .observers import after_batch_commit
from .state import ItemState, spot_key, spot_sampled, spot_threshold
from .stats import StatsDelta

logger = logging.getLogger(__name__)
_ITEM = itemgetter(1)  # a decision row's item
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"

class Fenced(Exception):
    """The shard moved on (newer attempt, cancelled): this worker must not commit."""


@lru_cache(maxsize=64)
def plan_for_version(version_id: int, checksum: str) -> Plan:
    """The plan of a version, cached per process (keyed by the checksum too: ids can be reused)."""
    version = WorkflowVersion.objects.get(pk=version_id)
    # Model references were resolved when the run started; re-checking them here would make a
    # retired alias fail a run that already pinned its versions.
    resolvers = {k: v for k, v in graph_resolvers().items() if k != "resolve_alias"}
    return plan(version.as_graph(), **resolvers)


@dataclass
class Batch:
    """What one micro-batch has decided so far, committed together at its end."""

    batch_id: str
    now: Any
    decisions: list[tuple] = field(default_factory=list)
    parks: list[dict] = field(default_factory=list)
    dead: list[dict] = field(default_factory=list)
    deltas: dict[str, StatsDelta] = field(default_factory=dict)
    # Spot checks drawn, with the item they sample: kept only for items not parked by the end of the
    # batch (see ShardRunner.spot_checks).
    spots: list[tuple[ItemState, dict]] = field(default_factory=list)


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
        self.sampling: dict[str, tuple[int, int] | None] = {}
        self.batch_no = 0
        self.committer = committer.Committer(overlap=committer.usable())

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
                outs = [Outcome(error=f"{type(exc).__name__}: {exc}", error_code="exception", transient=True)
                        for _ in sub]
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

    def spot_plan(self, step: Step) -> tuple[int, int] | None:
        """(key, threshold) of a node whose decisions are spot-checked, once per node and shard; None for
        nodes without a model (a route, a sink, patterns-only extraction) or with spot checks off."""
        node = step.node.id
        if node not in self.sampling:
            node_type = CATALOG.get(step.node.type)
            threshold = spot_threshold(step.config.get("spot_check"))
            usable = node_type is not None and SPOT_CHECK in node_type.config and node_type.uses_model(step.config)
            self.sampling[node] = (spot_key(self.run.pk, node), threshold) if usable and threshold else None
        return self.sampling[node]

    @staticmethod
    def spot_checks(batch: Batch) -> list[dict]:
        """The spot checks of a batch whose items were not parked. What a spot check estimates is the
        accuracy of what the model decided ALONE: an item parked for a person anywhere in the line is in
        the escalated part, which its reviewer measures (kept apart, as escalation accuracy). Sampling it
        too would mix the unsure items into the unattended ones' sample; leaving it out keeps the sample
        uniform over exactly the items nobody looks at, so its accuracy is an unbiased estimate of theirs.
        An item that dies further down still counts: the model did decide it alone."""
        return [proposal for s, proposal in batch.spots if not s.parked]

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
            elif done.port == statuses.PARKED:
                answer = reviews.get((s.item_id, node))
                if answer is None:
                    s.parked = True
                else:
                    state.merge_fields(s.data, answer)
                    s.route(step.routes.get("out", ()))
            elif done.port == statuses.DEAD:
                s.dead = True
            else:
                state.merge_fields(s.data, done.output)
                s.route(step.routes.get(done.port, ()))
        return fresh

    def process(self, rows: list[tuple[int, int, dict]], recorded: dict[int, dict[str, Recorded]],
                reviews: dict[tuple[int, str], dict]) -> None:
        """One micro-batch through the plan, node by node, then one commit."""
        self.batch_no += 1
        batch = Batch(f"{self.shard.pk}.{self.attempt}.{self.batch_no}", timezone.now())
        source = self.run.source_node
        items = [ItemState(item_id=i, seq=seq, data=dict(payload), inbox={source}) for i, seq, payload in rows]
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
            if fresh:
                delta = batch.deltas.setdefault(node, StatsDelta())
                outcomes, tries = self.call(step, fresh, delta)
                self.record(step, fresh, outcomes, tries, delta, batch)
        # Item by item, as the ledger's unique index (run, item, node) is ordered, so each row lands on
        # its rightmost page; the sort is stable, so an item's decisions keep the plan's order (and
        # their ids, which readers merge outputs by, still follow it).
        batch.decisions.sort(key=_ITEM)
        spots = self.spot_checks(batch) if batch.spots else []
        # In the commit thread while the next batch is computed (committer.py says why and when).
        self.committer.submit(lambda: self.commit(items, batch.decisions, batch.parks, batch.dead, batch.deltas,
                                                  batch.now, spots))

    def record(self, step: Step, fresh: list[ItemState], outcomes: list[Outcome], tries: list[int],
               delta: StatsDelta, batch: Batch) -> None:
        """What one node decided for each item: its ledger row, where the item goes next (or that it
        is parked or dead), and the node's stats. The per-item loop is the engine's hot path, kept
        inline in one function on purpose (a call per item costs a measurable share of a batch)."""
        node, routes, size, attempt = step.node.id, step.routes, len(fresh), self.attempt
        run_id, batch_id, now = self.run.pk, batch.batch_id, batch.now
        decisions, parks, dead = batch.decisions, batch.parks, batch.dead
        parked_port, dead_port = statuses.PARKED, statuses.DEAD
        spot = self.spot_plan(step)
        spot_key_, spot_bound = spot or (0, 0)
        ports, latencies, labels, confidences = [], [], [], []
        errors = 0
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
                    if spot is not None and not error and spot_sampled(spot_key_, s.item_id, spot_bound):
                        batch.spots.append((s, _spot_proposal(s.item_id, node, added, label, confidence,
                                                              out.model_ref)))
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

    def commit(self, items: list[ItemState], decisions: list[tuple], parks: list[dict], dead: list[dict],
               deltas: dict[str, StatsDelta], now: Any, spots: list[dict] | None = None) -> None:
        """One transaction for the micro-batch. COPY cannot skip decisions already in the ledger; the
        shard fence makes that impossible in normal operation (a retried shard replays what the ledger
        holds), and if it ever happens (one attempt delivered twice) the whole batch is committed again
        with the INSERT that skips them."""
        try:
            self._commit(items, decisions, parks, dead, deltas, now, spots or [], fast=True)
        except IntegrityError:
            logger.warning("shard %s: decisions already in the ledger, keeping the recorded ones", self.shard.pk)
            self._commit(items, decisions, parks, dead, deltas, now, spots or [], fast=False)

    def _commit(self, items: list[ItemState], decisions: list[tuple], parks: list[dict], dead: list[dict],
                deltas: dict[str, StatsDelta], now: Any, spots: list[dict], *, fast: bool) -> None:
        with transaction.atomic():
            if connection.vendor == "postgresql":
                self.write_batch_head(items, deltas, now, spots)
                spots = []  # written by the head statement
            else:
                self.fence_and_count(items, now)
                if deltas:
                    upsert_stats(self.run.pk, deltas, now)
            insert_decisions(decisions, copy=fast)
            if parks or spots:
                insert_review_tasks(self.run.pk, parks, spots, now)
            if dead:
                DeadLetter.objects.bulk_create([
                    DeadLetter(run_id=self.run.pk, item_id=d["item_id"], node=d["node"], reason=d["reason"] or "failed",
                               error_code=d["error_code"][:60], attempts=d["attempts"]) for d in dead])
            if deltas:
                nodes = sorted(deltas)
                transaction.on_commit(lambda: after_batch_commit(self.run.pk, nodes))

    def write_batch_head(self, items: list[ItemState], deltas: dict[str, StatsDelta], now: Any,
                         spots: list[dict] | None = None) -> None:
        """PostgreSQL, first in the batch's transaction: the fence, the items' statuses, the run's
        counters, the NodeStats sums and the spot checks in one prepared statement (BATCH_HEAD_SQL).
        Raises Fenced (having written nothing) when this attempt no longer owns the running shard."""
        params = {"sync": "on" if settings.ENGINE_SYNCHRONOUS_COMMIT else "off", "now": now, "shard": self.shard.pk,
                  "attempt": self.attempt, "run": self.run.pk, "ids": [s.item_id for s in items],
                  "statuses": [s.final_status for s in items], "stats": stats_json(deltas),
                  "spots": spots_json(spots or [])}
        fenced = execute_prepared(BATCH_HEAD_SQL, params)[0]
        if fenced != 1:
            raise Fenced(f"shard {self.shard.pk} attempt {self.attempt} is no longer current")

    def fence_and_count(self, items: list[ItemState], now: Any) -> None:
        """SQLite, inside the batch's transaction: check the fence (raise Fenced when this attempt is
        no longer current), move the items to their final status and add them to the run's counters."""
        fenced = (Shard.objects.filter(pk=self.shard.pk, attempt=self.attempt, status=Shard.RUNNING)
                  .update(heartbeat=now))
        if fenced != 1:
            raise Fenced(f"shard {self.shard.pk} attempt {self.attempt} is no longer current")
        by_status: dict[str, list[int]] = defaultdict(list)
        for s in items:
            by_status[s.final_status].append(s.item_id)
        counters = {}
        for status, counter in (("done", "items_done"), ("dead", "items_dead"), ("parked", "items_parked")):
            if by_status.get(status):
                moved = (Item.objects.filter(id__in=by_status[status], status=Item.PENDING)
                         .update(status=status, finished_at=now))
                if moved:
                    counters[counter] = F(counter) + moved
        if counters:
            Run.objects.filter(pk=self.run.pk).update(**counters)


def _spot_proposal(item_id: int, node: str, added: dict[str, Any], label: str | None, confidence: Any,
                   model_ref: str) -> dict[str, Any]:
    """What a spot check shows its reviewer: what the model said, as it said it (rare: ~2 % of items)."""
    proposal: dict[str, Any] = {"model_ref": model_ref}
    if label is not None:
        proposal["label"] = label
    if confidence is not None:
        proposal["confidence"] = confidence
    scores = added.get("scores")
    if isinstance(scores, dict) and scores:
        proposal["scores"] = scores
        proposal["labels"] = list(scores)
    if isinstance(added.get("fields"), dict):
        proposal["fields"] = added["fields"]
    return {"item_id": item_id, "node": node, "proposal": proposal}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


# --- a whole shard ---------------------------------------------------------------------------------


def run_shard(shard_id: int, attempt: int) -> dict[str, Any]:
    """Run one shard attempt. Returns a small summary (stored as the task's return value)."""
    now = timezone.now()
    claimed = Shard.objects.filter(pk=shard_id, attempt=attempt, status__in=[Shard.QUEUED, Shard.RUNNING]).update(
        status=Shard.RUNNING, heartbeat=now, worker=WORKER_NAME[:80], started_at=now)
    if not claimed:
        return {"shard": shard_id, "attempt": attempt, "skipped": "stale or cancelled"}
    shard = Shard.objects.get(pk=shard_id)
    Run.objects.filter(pk=shard.run_id, status=statuses.QUEUED).update(status=statuses.RUNNING, started_at=now)
    run = Run.objects.select_related("version").get(pk=shard.run_id)
    if run.status not in statuses.ACTIVE_RUN_STATUSES:
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
            if port == statuses.PARKED:
                parked.append(item_id)
        if parked:
            for item_id, node, result in ReviewTask.objects.filter(
                    run_id=run.pk, item_id__in=parked,
                    status=ReviewTask.DECIDED).values_list("item_id", "node", "result"):
                reviews[(item_id, node)] = result or {}
    size = run.batch_size
    try:
        with Heartbeat.for_shard(shard_id, attempt):
            try:
                for start in range(0, len(rows), size):
                    runner.process(rows[start : start + size], recorded, reviews)
                runner.committer.wait()
            except BaseException:
                runner.committer.abandon()
                raise
        with transaction.atomic():
            done = Shard.objects.filter(pk=shard_id, attempt=attempt, status=Shard.RUNNING).update(
                status=Shard.DONE, finished_at=timezone.now(), heartbeat=timezone.now())
    except Fenced as exc:
        logger.info("%s", exc)
        return {"shard": shard_id, "attempt": attempt, "fenced": True}
    if done:
        maybe_finish_run(run.pk)
    return {"shard": shard_id, "attempt": attempt, "items": len(rows), "batches": runner.batch_no}
