"""The ledger's write path as a worker runs it (outside any transaction of ours): COPY on
PostgreSQL with every awkward value intact, NodeStats summed in the database, a fenced zombie that
commits nothing more, and a duplicate delivery that keeps one decision per (run, item, node)."""

from __future__ import annotations

import math

import pytest
from django.db import connection
from django.db.models import Count

from tests.builders import edge, node
from tests.engine.helpers import drain, make_runnable_workflow, tickets
from workflows import statuses
from workflows.engine import launch
from workflows.engine.executor import run_shard
from workflows.engine.ledger import copy_text, insert_decisions
from workflows.engine.nodes.base import HANDLERS, Handler, Outcome, handler_for, register
from workflows.models import Decision, Item, NodeStats, Run, Shard


@pytest.fixture
def worker_like(transactional_db, settings):
    """Shards run outside any transaction of ours, as in `run_worker` (commits really commit)."""
    settings.ENGINE_SHARD_SIZE = 40
    settings.ENGINE_BATCH_SIZE = 4


AWKWARD = ["tab\there", "line\nbreak", "back\\slash", "cr\rhere", "quote \" and 'single'", "€ è ß 中文 🙂", "\\N", "",
           "\\u0000 is text", "nul\x00inside"]
# PostgreSQL's text and jsonb cannot hold NUL: the character is dropped, the rest kept.
STORED = {"nul\x00inside": "nulinside"}


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
                outs.append(Outcome(fields={"echo": text, "nested": {"k": [text, 1, None, math.nan]}},
                                    label=text or None, confidence=confidence, model_ref=f"ref{text}",
                                    stats={"tokens": 3}))
            return outs

    yield
    HANDLERS.pop("test.awkward", None)
    CATALOG.pop("test.awkward", None)


def awkward_graph() -> dict:
    return {"nodes": [node("src", "source.upload"), node("odd", "test.awkward"), node("out", "sink.table")],
            "edges": [edge("src", "odd"), edge("odd", "out")]}


def test_every_value_round_trips_through_the_ledger(personas, worker_like, awkward_handler):
    assert not connection.in_atomic_block
    workflow = make_runnable_workflow(personas["designer"], awkward_graph(), name="Awkward")
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": f"doc {i}"} for i in range(40)])
    drain()
    run.refresh_from_db()
    assert run.status == statuses.SUCCEEDED and run.items_done == 40
    assert Decision.objects.filter(run=run).count() == 40 * 3
    for decision in Decision.objects.filter(run=run, node="odd").select_related("item"):
        text = AWKWARD[decision.item.seq % len(AWKWARD)]
        stored = STORED.get(text, text)  # outputs lose NUL on every database, text columns on PostgreSQL
        assert decision.output["echo"] == stored and decision.output["nested"] == {"k": [stored, 1, None, None]}
        if connection.vendor == "postgresql":
            text = stored
        assert decision.model_ref == f"ref{text}"
        assert decision.label == (text or None)
        assert decision.confidence == (0.5 if decision.item.seq % 4 == 0 else None)  # infinities are no confidence
        assert decision.batch_size == 4 and decision.error == ""
    stats = NodeStats.objects.get(run=run, node="odd")
    assert stats.items_in == 40 and stats.batches == 10 and stats.ports == {"out": 40}
    assert stats.extra == {"tokens": 120}
    assert sum(stats.labels.values()) == 36  # the empty text gives no label
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


def test_a_zombie_is_fenced_between_two_micro_batches(personas, worker_like):
    """A worker whose attempt was bumped while it ran keeps its first batch and commits nothing after."""
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


def test_a_duplicate_delivery_keeps_the_recorded_decisions(personas, worker_like):
    """One attempt run twice (its decisions in the ledger, its items pending again): COPY meets the
    recorded rows, the batch is committed again with INSERT … ON CONFLICT DO NOTHING, and every
    (item, node) keeps exactly its first decision, counted once."""
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(8))
    drain()
    first = {(d.item_id, d.node): d.pk for d in Decision.objects.filter(run=run)}
    assert len(first) == 8 * 4
    shard = run.shards.get()
    Item.objects.filter(run=run, seq__gte=4).update(status="pending")  # half of them, as if never finished
    Run.objects.filter(pk=run.pk).update(items_done=4, status=statuses.RUNNING)
    Shard.objects.filter(pk=shard.pk).update(status=Shard.RUNNING)
    run_shard(shard.pk, 1)
    assert {(d.item_id, d.node): d.pk for d in Decision.objects.filter(run=run)} == first
    assert not Decision.objects.values("item", "node").annotate(n=Count("id")).filter(n__gt=1).exists()
    run.refresh_from_db()
    assert run.items_done == 8 and run.status == statuses.SUCCEEDED


def test_a_fenced_batch_writes_nothing(personas, worker_like):
    """The statement that commits a batch checks the fence first and writes nothing when this
    attempt no longer owns the shard: no decision, no item status, no counter, no NodeStats."""
    from workflows.engine.executor import Fenced, ShardRunner
    from workflows.engine.state import ItemState
    from workflows.engine.stats import StatsDelta

    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(2))
    shard = run.shards.get()
    Shard.objects.filter(pk=shard.pk).update(status=Shard.RUNNING, attempt=2)
    runner = ShardRunner(shard, Run.objects.select_related("version").get(pk=run.pk), attempt=1)
    item = Item.objects.filter(run=run).first()
    from django.utils import timezone

    now = timezone.now()
    delta = StatsDelta()
    delta.observe_many(ports=["out"], latencies=[1.0], labels=[], confidences=[], errors=0)
    decision = (run.pk, item.pk, "route", "", {"x": 1}, None, None, "out", 1.0, "", 1, "b", 1, 1, now)
    with pytest.raises(Fenced):
        runner.commit([ItemState(item_id=item.pk, seq=0, data={})], [decision], [], [], {"route": delta}, now)
    assert not Decision.objects.filter(run=run).exists()
    assert Item.objects.get(pk=item.pk).status == "pending"
    assert Run.objects.get(pk=run.pk).items_done == 0
    assert NodeStats.objects.get(run=run, node="route").items_in == 0


def test_insert_decisions_copy_refuses_a_recorded_row_and_insert_skips_it(personas, worker_like):
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(2))
    one, two = Item.objects.filter(run=run).order_by("seq")
    now = timezone.now()

    def row(item, port):
        return (run.pk, item.pk, "ext", "", {"port": port}, None, None, port, 1.0, "", 1, "b", 2, 1, now)

    insert_decisions([row(one, "first")])
    if connection.vendor == "postgresql":
        with pytest.raises(IntegrityError), transaction.atomic():
            insert_decisions([row(one, "again"), row(two, "new")])
    insert_decisions([row(one, "again"), row(two, "new")], copy=False)
    assert Decision.objects.get(item=one, node="ext").port == "first"
    assert Decision.objects.get(item=two, node="ext").port == "new"


def test_copy_text_escapes_what_would_end_a_field_or_a_row():
    row = (1, 2, "n\t1", "ref\\x", {"t": "a\tb\nc"}, None, float("nan"), "out\r", math.inf, "boom\n", 1, "b", 32, 1,
           None)
    assert copy_text([row]) == (
        '1\t2\tn\\t1\tref\\\\x\t{"t": "a\\\\tb\\\\nc"}\t\\N\tNaN\tout\\r\tInfinity\tboom\\n\t1\tb\t32\t1\n')
    assert connection.vendor in {"postgresql", "sqlite"}


def test_copy_text_drops_nul_and_keeps_an_escaped_one():
    row = (1, 2, "n", "", {"t": "a\x00b", "kept": "\\u0000"}, "l\x00", None, "out", 1.0, "boom\x00", 1, "b", 32, 1,
           None)
    assert copy_text([row]) == '1\t2\tn\t\t{"t": "ab", "kept": "\\\\\\\\u0000"}\tl\t\\N\tout\t1.0\tboom\t1\tb\t32\t1\n'


def test_an_items_decisions_keep_the_plans_order(personas, worker_like):
    """Rows are COPYed item by item (the unique index's order); readers merge an item's outputs in
    id order, so within an item the ids must still follow the plan."""
    from workflows.graph.plan import plan

    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(12))
    drain()
    order = plan(run.version.as_graph()).order
    for item in Item.objects.filter(run=run):
        nodes = list(Decision.objects.filter(run=run, item=item).order_by("id").values_list("node", flat=True))
        assert nodes == sorted(nodes, key=order.index), nodes
    ids = list(Decision.objects.filter(run=run).order_by("id").values_list("item__seq", flat=True))
    assert ids == sorted(ids)  # item by item within each batch, batches in order


@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_the_batch_statement_is_prepared_once_per_connection(personas, worker_like):
    """Django opens psycopg connections with prepare_threshold=None, which made psycopg ignore
    prepare=True without a word: PostgreSQL parsed and planned the statement for every batch."""

    from workflows.engine import committer

    def count() -> int | None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT sum(generic_plans + custom_plans) FROM pg_prepared_statements "
                           "WHERE statement LIKE %s",
                           ["%UPDATE workflows_shard SET heartbeat%"])
            return cursor.fetchone()[0]

    def executions() -> int | None:
        # Prepared statements belong to a session: the commit thread's, where the batches commit.
        return committer._thread().submit(count).result()

    before = executions() or 0  # an earlier test on this connection may have prepared it already
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(40))
    drain()
    assert Run.objects.get(pk=run.pk).items_done == 40
    after = executions()
    assert after is not None, "the batch statement was never prepared"
    assert after - before == 10  # the one prepared statement ran for each of the 10 micro-batches


def test_the_next_batch_is_computed_while_the_last_one_commits(personas, worker_like):
    """A batch's commit waits on PostgreSQL (round trips, the WAL's flush) with nothing to do: on
    short documents that was ~8 ms of every 200. The commit runs in a thread of its own while the
    next batch's models work. Here the first batch's commit is held (another session locks the run's
    row until the second batch is being computed, or 20 s): with commits in line it never is."""
    import threading

    from django.db import connections

    if connection.vendor != "postgresql":
        pytest.skip("commits overlap the next batch on PostgreSQL (SQLite has one writer)")
    first_computing, locked, second_computing = threading.Event(), threading.Event(), threading.Event()
    seen = {"batches": 0, "overlapped": None}
    original = handler_for("route")

    class Watching(original):
        def process(self, batch, step):
            seen["batches"] += 1
            if seen["batches"] == 1:
                first_computing.set()
                locked.wait(10)
            elif seen["batches"] == 2:
                second_computing.set()
            return super().process(batch, step)

    def hold_the_run_row(run_id: int) -> None:
        first_computing.wait(30)
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT id FROM workflows_run WHERE id = %s FOR UPDATE", [run_id])
                locked.set()
                seen["overlapped"] = second_computing.wait(20)
        finally:
            connections.close_all()

    from django.db import transaction

    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(8))
    locker = threading.Thread(target=hold_the_run_row, args=(run.pk,))
    locker.start()
    HANDLERS["route"] = Watching
    try:
        drain()
    finally:
        HANDLERS["route"] = original
        locker.join(60)
    assert seen["overlapped"] is True
    run.refresh_from_db()
    assert run.status == statuses.SUCCEEDED and run.items_done == 8
    assert Decision.objects.filter(run=run).count() == 8 * 4
