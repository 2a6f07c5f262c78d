"""The executor in-process: ledger, routing, checkpoint replay, fencing, retries, dead letters, review."""

from __future__ import annotations

import pytest
from django.db.models import Count

from tests.builders import edge, node
from tests.engine.helpers import drain, make_runnable_workflow, tickets
from workflows import statuses
from workflows.engine import launch
from workflows.engine.executor import Fenced, run_shard
from workflows.engine.nodes.base import HANDLERS, Handler, Outcome, load_handler_modules, register
from workflows.models import DeadLetter, Decision, Item, NodeStats, Run, Shard
from workflows.models.review import ReviewTask

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_batches(settings):
    settings.ENGINE_SHARD_SIZE = 10
    settings.ENGINE_BATCH_SIZE = 4
    settings.ENGINE_RETRY_BACKOFF_SECONDS = 0


def test_a_run_writes_one_decision_per_item_and_node(personas, small_batches):
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(25))
    assert run.shards.count() == 3 and run.status == statuses.QUEUED
    drain()
    run.refresh_from_db()
    assert run.status == statuses.SUCCEEDED and run.items_done == 25
    assert Decision.objects.filter(run=run).count() == 25 * 4
    assert not Decision.objects.filter(run=run).values("item", "node").annotate(n=Count("id")).filter(n__gt=1).exists()
    first = Item.objects.get(run=run, seq=0)
    ext = Decision.objects.get(item=first, node="ext")
    assert ext.output["fields"]["iban"][0]["value"].startswith("IT60")
    assert ext.batch_size == 4 and ext.batch_id.startswith(f"{run.shards.first().pk}.1.")
    assert Decision.objects.get(item=first, node="route").port == "italian"
    assert Decision.objects.get(item=Item.objects.get(run=run, seq=1), node="route").port == "else"
    stats = NodeStats.objects.get(run=run, node="route")
    assert stats.items_in == 25 and stats.ports == {"italian": 13, "else": 12}
    assert stats.p50_ms is not None and stats.batches == 8  # 10+10+5 items in batches of 4


def test_a_retried_shard_replays_the_ledger_and_decides_nothing_twice(personas, small_batches):
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(10))
    shard = run.shards.get()
    # The first attempt decided src and ext for 4 items, then died before routing them.
    items = list(Item.objects.filter(run=run).order_by("seq")[:4])
    for item in items:
        Decision.objects.create(run=run, item=item, node="src", port="out")
        Decision.objects.create(run=run, item=item, node="ext", port="out", output={"fields": {"email": ["replayed"]}})
    Shard.objects.filter(pk=shard.pk).update(attempt=2, status=Shard.QUEUED)
    run_shard(shard.pk, 2)
    assert Decision.objects.filter(run=run).count() == 40
    assert Decision.objects.get(item=items[0], node="out").item_id == items[0].pk
    assert NodeStats.objects.get(run=run, node="ext").items_in == 6  # only the new ones count


def test_a_zombie_with_a_stale_attempt_commits_nothing(personas, small_batches):
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(8))
    shard = run.shards.get()
    Shard.objects.filter(pk=shard.pk).update(attempt=2)  # the monitor moved on
    assert run_shard(shard.pk, 1)["skipped"]
    # A worker that claimed attempt 1 and is fenced out between batches:
    Shard.objects.filter(pk=shard.pk).update(attempt=1, status=Shard.QUEUED)
    from workflows.engine.executor import ShardRunner

    Shard.objects.filter(pk=shard.pk).update(status=Shard.RUNNING)
    runner = ShardRunner(Shard.objects.get(pk=shard.pk), Run.objects.select_related("version").get(pk=run.pk),
                         attempt=1)
    Shard.objects.filter(pk=shard.pk).update(attempt=2)
    rows = list(Item.objects.filter(run=run).values_list("id", "seq", "payload"))
    with pytest.raises(Fenced):
        runner.process(rows[:4], {}, {})
    assert not Decision.objects.filter(run=run).exists()


def test_cancel_stops_the_run_between_micro_batches(personas, small_batches, api):
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(20))
    assert launch.cancel_run(run, user=personas["operator"])
    drain()
    run.refresh_from_db()
    assert run.status == statuses.CANCELLED and not Decision.objects.filter(run=run).exists()
    assert not launch.cancel_run(run, user=personas["operator"])


class Flaky(Handler):
    calls: dict[int, int] = {}

    def process(self, batch, step):
        outs = []
        for s in batch:
            Flaky.calls[s.seq] = Flaky.calls.get(s.seq, 0) + 1
            if s.data["text"].startswith("always"):
                outs.append(Outcome(error="endpoint down", error_code="down", transient=True))
            elif s.data["text"].startswith("flaky") and Flaky.calls[s.seq] < 2:
                outs.append(Outcome(error="timeout", transient=True))
            else:
                outs.append(Outcome(label="ok", confidence=0.9))
        return outs


@pytest.fixture
def flaky_classify():
    load_handler_modules()  # first, so the real handlers cannot replace the test's during the test
    previous = HANDLERS.get("classify")
    register("classify")(Flaky)
    Flaky.calls = {}
    yield
    if previous:
        HANDLERS["classify"] = previous
    else:
        HANDLERS.pop("classify")


def classify_graph(error_wired: bool) -> dict:
    nodes = [node("src", "source.upload"), node("cls", "classify", model="tickets@production", retries=1),
             node("out", "sink.table")]
    edges = [edge("src", "cls"), edge("cls", "out")]
    if error_wired:
        nodes.append(node("errs", "sink.table"))
        edges.append(edge("cls", "errs", source_port="error"))
    return {"nodes": nodes, "edges": edges}


def test_transient_errors_retry_then_dead_letter_then_retry_from_the_ui(personas, small_batches, flaky_classify):
    from tests.engine.helpers import register_model

    register_model("tickets", "classifier")
    workflow = make_runnable_workflow(personas["designer"], classify_graph(error_wired=False))
    run = launch.create_run(workflow, user=personas["operator"],
                            items=[{"text": "fine"}, {"text": "flaky one"}, {"text": "always failing"}])
    drain()
    run.refresh_from_db()
    assert run.status == statuses.COMPLETED_WITH_ERRORS and (run.items_done, run.items_dead) == (2, 1)
    assert Flaky.calls == {0: 1, 1: 2, 2: 2}  # retries=1: two tries in all
    letter = DeadLetter.objects.get(run=run)
    assert letter.reason == "endpoint down" and letter.attempts == 2 and letter.node == "cls"
    assert Decision.objects.get(run=run, item=letter.item, node="cls").port == statuses.DEAD
    assert NodeStats.objects.get(run=run, node="cls").retries == 2

    Item.objects.filter(pk=letter.item_id).update(payload={"text": "fixed now"})
    assert launch.retry_dead_letters(run, user=personas["operator"]) == 1
    drain()
    run.refresh_from_db()
    assert run.status == statuses.SUCCEEDED and (run.items_done, run.items_dead) == (3, 0)
    assert Decision.objects.get(run=run, item=letter.item, node="out")
    assert DeadLetter.objects.get(pk=letter.pk).retried_at is not None


def test_an_error_port_takes_failed_items_when_wired(personas, small_batches, flaky_classify):
    from tests.engine.helpers import register_model

    register_model("tickets", "classifier")
    workflow = make_runnable_workflow(personas["designer"], classify_graph(error_wired=True))
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": "always"}, {"text": "ok"}])
    drain()
    run.refresh_from_db()
    assert run.status == statuses.SUCCEEDED and not DeadLetter.objects.exists()
    assert Decision.objects.filter(run=run, node="errs").count() == 1


def test_review_parks_items_and_a_decision_resumes_them_downstream(personas, small_batches):
    graph = {
        "nodes": [node("src", "source.upload", fields=["text", "lang"]),
                  node("route", "route", label_field="lang", branches=[{"name": "it", "labels": ["it"]}]),
                  node("rev", "review", queue="italian"), node("out", "sink.table")],
        "edges": [edge("src", "route"), edge("route", "rev", source_port="it"),
                  edge("route", "out", source_port="else"), edge("rev", "out")],
    }
    workflow = make_runnable_workflow(personas["designer"], graph)
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(4))
    drain()
    run.refresh_from_db()
    # Every item left waits for a person: the run says so instead of "running" for ever.
    assert run.status == statuses.WAITING and (run.items_done, run.items_parked) == (2, 2)
    assert run.finished_at is None and run.is_active
    tasks = list(ReviewTask.objects.filter(run=run))
    assert len(tasks) == 2 and all(t.queue == "italian" for t in tasks)
    assert launch.decide_review(tasks[0], user=personas["operator"], result={"label": "billing"})
    run.refresh_from_db()
    assert run.status == statuses.RUNNING  # the decided item is on its way again
    drain()
    run.refresh_from_db()
    assert run.status == statuses.WAITING and (run.items_done, run.items_parked) == (3, 1)
    assert launch.decide_review(tasks[1], user=personas["operator"], result={"label": "billing"})
    assert not launch.decide_review(tasks[0], user=personas["operator"], result={})
    drain()
    run.refresh_from_db()
    assert run.status == statuses.SUCCEEDED and run.items_done == 4 and run.items_parked == 0
    out = Decision.objects.filter(run=run, node="out").count()
    assert out == 4 and Decision.objects.filter(run=run).count() == 4 * 3 + 2  # + two review decisions


def test_an_unregistered_node_type_fails_the_start_with_a_clear_message(personas, small_batches, monkeypatch):
    from tests.engine.helpers import register_model

    register_model("minilm", "embedder")
    graph = {"nodes": [node("src", "source.upload"), node("emb", "embed"), node("out", "sink.table")],
             "edges": [edge("src", "emb"), edge("emb", "out")]}
    workflow = make_runnable_workflow(personas["designer"], graph)
    load_handler_modules()
    monkeypatch.delitem(HANDLERS, "embed", raising=False)  # restored after the test: others need the real one
    with pytest.raises(launch.StartError, match="no handler is installed for 'embed'"):
        launch.create_run(workflow, user=personas["operator"], items=tickets(2))
    assert not Run.objects.exists()


def test_a_version_with_problems_cannot_run(personas):
    from tests.builders import make_workflow

    workflow = make_workflow(personas["designer"], {"nodes": [node("x", "route")], "edges": []})
    # Nothing was published (it cannot be): asked for by its number, as a test run, it says why.
    with pytest.raises(launch.StartError, match="problems to fix"):
        launch.create_run(workflow, user=personas["designer"], items=tickets(2), version=workflow.latest)
    with pytest.raises(launch.StartError, match="publish a version first"):
        launch.create_run(workflow, user=personas["operator"], items=tickets(2))

