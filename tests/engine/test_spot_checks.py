"""Spot checks: a deterministic random sample of what a model node decided alone goes to the
spot-check queue, without holding the item, so accuracy is measured on unattended decisions too."""

from __future__ import annotations

import pytest

from tests.builders import edge, make_workflow, node
from tests.engine.helpers import drain
from tests.governance.conftest import PRODUCTION_WORDS, keyword_classifier
from workflows import statuses
from workflows.engine import launch, state
from workflows.engine.executor import run_shard
from workflows.graph import parse_graph, validate
from workflows.graph.catalog import CATALOG
from workflows.models import Decision, Item, ReviewTask, Shard

pytestmark = pytest.mark.django_db

WORDS = ["invoice", "crash", "login", "password", "fattura", "errore"]


@pytest.fixture
def tickets_model(settings, tmp_path):
    from workflows.engine.nodes import loader
    from workflows.models.registry import register_version, set_initial_alias

    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.ENGINE_SHARD_SIZE = 16
    settings.ENGINE_BATCH_SIZE = 8
    loader.clear()
    version, _ = register_version(model_name="tickets", kind="classifier",
                                  meta=keyword_classifier(PRODUCTION_WORDS, "prod"), source="packaged", runtime="tfidf")
    set_initial_alias(version, "production")
    yield version
    loader.clear()


def alone_graph(percent: float | None) -> dict:
    config = {"model": "tickets@production", **({"spot_check": percent} if percent is not None else {})}
    return {"nodes": [node("src", "source.upload", fields=["text"]), node("cls", "classify", **config),
                      node("out", "sink.table")],
            "edges": [edge("src", "cls"), edge("cls", "out")]}


def escalating_graph(percent: float) -> dict:
    """Confident labels go on; unsure ones are parked for a person at 'rev'."""
    return {"nodes": [node("src", "source.upload", fields=["text"]),
                      node("cls", "classify", model="tickets@production", spot_check=percent),
                      node("route", "route", branches=[{"name": "confident", "min_confidence": 0.8}]),
                      node("rev", "review"), node("out", "sink.table")],
            "edges": [edge("src", "cls"), edge("cls", "route"), edge("route", "out", source_port="confident"),
                      edge("route", "rev", source_port="else"), edge("rev", "out")]}


def texts(count: int) -> list[dict]:
    return [{"text": f"{WORDS[i % len(WORDS)]} {i}"} for i in range(count)]


def test_the_spot_check_share_is_a_validated_setting_of_model_nodes():
    for kind in ("classify", "extract"):
        spec = next(f for f in CATALOG[kind].config if f.name == "spot_check")
        assert (spec.kind, spec.default, spec.minimum, spec.maximum) == ("float", 2.0, 0, 100)
    graph = alone_graph(150)
    problems = [p for p in validate(parse_graph(graph)) if p.field == "spot_check"]
    assert problems and "at most 100" in problems[0].message
    assert not [p for p in validate(parse_graph(alone_graph(0.5))) if p.field == "spot_check"]


def test_sampling_is_deterministic_per_run_item_and_node_and_near_its_rate():
    key, other = state.spot_key(41, "cls"), state.spot_key(41, "ext")
    threshold = state.spot_threshold(2.0)
    picked = [i for i in range(1, 50_001) if state.spot_sampled(key, i, threshold)]
    assert 0.018 < len(picked) / 50_000 < 0.022
    assert picked == [i for i in range(1, 50_001) if state.spot_sampled(state.spot_key(41, "cls"), i, threshold)]
    assert picked != [i for i in range(1, 50_001) if state.spot_sampled(other, i, threshold)]
    assert picked != [i for i in range(1, 50_001) if state.spot_sampled(state.spot_key(42, "cls"), i, threshold)]
    assert state.spot_threshold(0) == 0 and not state.spot_sampled(key, picked[0], 0)
    assert all(state.spot_sampled(key, i, state.spot_threshold(100)) for i in range(1, 1000))


def test_a_sample_of_what_the_model_decided_alone_goes_to_the_spot_check_queue(personas, tickets_model):
    workflow = make_workflow(personas["designer"], alone_graph(30), name="Alone")
    run = launch.create_run(workflow, user=personas["operator"], items=texts(40))
    drain()
    run.refresh_from_db()
    # Nothing waits: a spot check does not hold its item.
    assert run.status == statuses.SUCCEEDED and run.items_done == 40 and run.items_parked == 0
    key, threshold = state.spot_key(run.pk, "cls"), state.spot_threshold(30)
    expected = {i for i in run.items.values_list("id", flat=True) if state.spot_sampled(key, i, threshold)}
    tasks = list(ReviewTask.objects.filter(run=run))
    assert 4 <= len(expected) <= 24 and {t.item_id for t in tasks} == expected
    for task in tasks:
        decision = Decision.objects.get(run=run, item_id=task.item_id, node="cls")
        assert (task.kind, task.queue, task.node, task.status) == (ReviewTask.SPOT_CHECK, "spot-check", "cls", "open")
        assert task.proposal["label"] == decision.label and task.proposal["confidence"] == decision.confidence
        assert task.proposal["scores"] == decision.output["scores"] and task.proposal["model_ref"] == "tickets:v1"
        assert Item.objects.get(pk=task.item_id).status == Item.DONE


def test_without_a_setting_two_percent_is_sampled(personas, tickets_model):
    workflow = make_workflow(personas["designer"], alone_graph(None), name="Default")
    run = launch.create_run(workflow, user=personas["operator"], items=texts(120))
    drain()
    key, threshold = state.spot_key(run.pk, "cls"), state.spot_threshold(2.0)
    expected = {i for i in run.items.values_list("id", flat=True) if state.spot_sampled(key, i, threshold)}
    assert set(ReviewTask.objects.filter(run=run, kind=ReviewTask.SPOT_CHECK).values_list("item_id", flat=True)) == \
        expected


def test_items_a_person_will_see_anyway_are_not_spot_checked(personas, tickets_model):
    workflow = make_workflow(personas["designer"], escalating_graph(100), name="Escalating")
    # Known words are sure; the others are unsure and parked at 'rev'.
    items = texts(12) + [{"text": f"qualcosa di strano {i}"} for i in range(6)]
    run = launch.create_run(workflow, user=personas["operator"], items=items)
    drain()
    run.refresh_from_db()
    parked = set(Item.objects.filter(run=run, status=Item.PARKED).values_list("id", flat=True))
    done = set(Item.objects.filter(run=run, status=Item.DONE).values_list("id", flat=True))
    assert parked and done and run.status == statuses.WAITING
    spot = set(ReviewTask.objects.filter(run=run, kind=ReviewTask.SPOT_CHECK).values_list("item_id", flat=True))
    escalated = set(ReviewTask.objects.filter(run=run, kind=ReviewTask.ESCALATION).values_list("item_id", flat=True))
    assert spot == done and escalated == parked


def test_a_retried_batch_makes_the_same_choice_and_never_duplicates(personas, tickets_model):
    workflow = make_workflow(personas["designer"], alone_graph(50), name="Retried")
    run = launch.create_run(workflow, user=personas["operator"], items=texts(16))
    drain()
    before = sorted(ReviewTask.objects.filter(run=run).values_list("item_id", "node"))
    assert before
    # As if the first attempt's decisions were lost after its review tasks were written: the next
    # attempt decides every item again and draws the same sample.
    shard = run.shards.get()
    Decision.objects.filter(run=run).delete()
    Item.objects.filter(run=run).update(status=Item.PENDING, finished_at=None)
    Shard.objects.filter(pk=shard.pk).update(attempt=2, status=Shard.QUEUED)
    run_shard(shard.pk, 2)
    assert sorted(ReviewTask.objects.filter(run=run).values_list("item_id", "node")) == before
