"""The ledger's write path as a worker runs it: micro-batches committed on the writer thread while
the next one is computed, COPY on PostgreSQL, NodeStats summed in the database, and a duplicate
delivery of one attempt that keeps exactly one decision per (run, item, node)."""

from __future__ import annotations

import math

import pytest
from django.db import connection
from django.db.models import Count

from tests.builders import edge, node
from tests.engine.helpers import drain, make_runnable_workflow, tickets
from workflows.engine import launch, state
from workflows.engine.executor import BatchWriter, copy_text, insert_decisions, pipelined_writes, run_shard
from workflows.engine.handlers import HANDLERS, Handler, Outcome, register
from workflows.models import Decision, Item, NodeStats, Run, Shard


@pytest.fixture
def worker_like(transactional_db, settings):
    """Shards run outside any transaction of ours, as in `run_worker`: writes are pipelined."""
    settings.ENGINE_SHARD_SIZE = 40
    settings.ENGINE_BATCH_SIZE = 4
    settings.ENGINE_PIPELINE_WRITES = True
    yield
    BatchWriter.release()  # the writer thread's connection, before the test database is flushed


AWKWARD = ["tab\there", "line\nbreak", "back\\slash", "cr\rhere", "quote \" and 'single'", "€ è ß 中文 🙂", "\\N", ""]


@pytest.fixture
def awkward_handler():
    from workflows.graph.catalog import CATALOG, NodeType
    from workflows.graph.catalog import register as register_type

    register_type(NodeType("test.awkward", "routing", "Awkward", "Echoes values COPY must escape (tests only)."))

    @register("test.awkward")
    class Awkward(Handler):
        def process(self, batch, step):
            outs = []
            for s in batch:
                text = AWKWARD[s.seq % len(AWKWARD)]
                confidence = [0.5, math.inf, -math.inf, float("nan")][s.seq % 4]
                outs.append(Outcome(fields={"echo": text, "nested": {"k": [text, 1, None, math.nan]}}, label=text or None,
                                    confidence=confidence, model_ref=f"ref{text}", stats={"tokens": 3}))
            return outs

    yield
    HANDLERS.pop("test.awkward", None)
    CATALOG.pop("test.awkward", None)


def awkward_graph() -> dict:
    return {"nodes": [node("src", "source.upload"), node("odd", "test.awkward"), node("out", "sink.table")],
            "edges": [edge("src", "odd"), edge("odd", "out")]}


def test_the_worker_pipelines_writes_and_every_value_round_trips(personas, worker_like, awkward_handler):
    assert pipelined_writes()
    workflow = make_runnable_workflow(personas["designer"], awkward_graph(), name="Awkward")
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": f"doc {i}"} for i in range(40)])
    drain()
    run.refresh_from_db()
    assert run.status == state.SUCCEEDED and run.items_done == 40
    assert Decision.objects.filter(run=run).count() == 40 * 3
    for decision in Decision.objects.filter(run=run, node="odd").select_related("item"):
        text = AWKWARD[decision.item.seq % len(AWKWARD)]
        assert decision.output["echo"] == text and decision.output["nested"] == {"k": [text, 1, None, None]}
        assert decision.model_ref == f"ref{text}"
        assert decision.label == (text or None)
        assert decision.confidence == (0.5 if decision.item.seq % 4 == 0 else None)  # infinities are no confidence
        assert decision.batch_size == 4 and decision.error == ""
    stats = NodeStats.objects.get(run=run, node="odd")
    assert stats.items_in == 40 and stats.batches == 10 and stats.ports == {"out": 40}
    assert stats.extra == {"tokens": 120}
    assert sum(stats.labels.values()) == 35  # the empty text gives no label
    assert sum(stats.latency_hist.values()) == 40 and sum(stats.confidence_hist.values()) == 10


def test_stats_from_two_shards_add_up_in_the_database(personas, worker_like):
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(80))
    assert run.shards.count() == 2
    drain()
    route = NodeStats.objects.get(run=run, node="route")
    assert route.items_in == 80 and route.ports == {"italian": 40, "else": 40} and route.batches == 20
    assert all(isinstance(v, int) for v in route.ports.values())  # counts stay integers
    assert NodeStats.objects.filter(run=run).count() == 4


def test_a_writer_error_reaches_the_shard_and_commits_nothing_after_it(personas, worker_like):
    """A zombie (its attempt bumped while it runs) is fenced on the writer thread: the shard stops."""
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(40))
    shard = run.shards.get()
    Shard.objects.filter(pk=shard.pk).update(status=Shard.RUNNING)
    from workflows.engine import executor

    original = executor.ShardRunner.commit
    calls = []

    def bump_after_first(self, *batch):
        calls.append(1)
        if len(calls) == 2:
            Shard.objects.filter(pk=shard.pk).update(attempt=2)
        return original(self, *batch)

    executor.ShardRunner.commit = bump_after_first
    try:
        result = run_shard(shard.pk, 1)
    finally:
        executor.ShardRunner.commit = original
    assert result.get("fenced") is True
    assert Item.objects.filter(run=run, status="done").count() == 4  # the first batch only
    assert Decision.objects.filter(run=run).count() == 4 * 4
    assert Run.objects.get(pk=run.pk).items_done == 4


@pytest.mark.django_db
def test_a_duplicate_delivery_keeps_the_recorded_decisions(personas):
    """COPY cannot skip conflicts; the savepoint falls back to INSERT … ON CONFLICT DO NOTHING."""
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(2))
    first, second = Item.objects.filter(run=run).order_by("seq")
    from django.utils import timezone

    now = timezone.now()

    def row(item, port):
        return (run.pk, item.pk, "ext", "", {"port": port}, None, None, port, 1.0, "", 1, "b", 2, 1, now)

    insert_decisions([row(first, "first")])
    insert_decisions([row(first, "again"), row(second, "new")])
    assert Decision.objects.get(item=first, node="ext").port == "first"
    assert Decision.objects.get(item=second, node="ext").port == "new"
    assert not Decision.objects.values("item", "node").annotate(n=Count("id")).filter(n__gt=1).exists()


def test_copy_text_escapes_what_would_end_a_field_or_a_row():
    from datetime import UTC, datetime

    when = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    row = (1, 2, "n\t1", "ref\\x", {"t": "a\tb\nc"}, None, float("nan"), "out\r", math.inf, "boom\n", 1, "b", 32, 1, when)
    assert copy_text([row], when) == (
        '1\t2\tn\\t1\tref\\\\x\t{"t": "a\\\\tb\\\\nc"}\t\\N\tNaN\tout\\r\tInfinity\tboom\\n\t1\tb\t32\t1\t'
        "2026-11-27T12:00:00+00:00\n")
    assert connection.vendor in {"postgresql", "sqlite"}
