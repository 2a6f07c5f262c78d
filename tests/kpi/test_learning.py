"""KPIs that do not overstate: accuracy from spot checks (escalations apart), automation that counts
items waiting for a person, documents decided with a label set that no longer matches flagged and
kept out of the claims, and a weekly pack that shows what the line learnt."""

from __future__ import annotations

import html
from datetime import datetime, timedelta

import pytest
from django.test import Client

from tests.builders import (
    edge,
    ledger_decision,
    ledger_item,
    ledger_run,
    make_baseline,
    make_user,
    make_workflow,
    node,
    register_model,
)
from tests.kpi.ledger import ROME, TUESDAY, W12, W13, W14
from workflows.kpi import pack as kpi_pack
from workflows.kpi import readers as kpis
from workflows.kpi import rollup
from workflows.models import Item, ReviewTask
from workflows.models.registry import Alias, Label, PromotionRequest

pytestmark = pytest.mark.django_db


def line(labels: dict | None = None) -> dict:
    config = {"model": "news@production", **({"labels": labels} if labels else {})}
    return {"nodes": [node("src", "source.upload", fields=["text"]), node("cls", "classify", **config),
                      node("route", "route", branches=[{"name": "confident", "min_confidence": 0.8}]),
                      node("rev", "review"), node("out", "sink.table")],
            "edges": [edge("src", "cls"), edge("cls", "route"), edge("route", "out", source_port="confident"),
                      edge("route", "rev", source_port="else"), edge("rev", "out")]}


def decided(run, seq, *, label="World", model_ref="news:v1", at=TUESDAY, truth=None, source=Label.SPOT_CHECK):
    """A document the model decided alone, finished at `at`; with `truth`, a label judging it."""
    item = ledger_item(run, seq, received=at - timedelta(hours=1), finished=at)
    ledger_decision(run, item, "cls", label=label, confidence=0.95, model_ref=model_ref, port="out",
                    created_at=at - timedelta(minutes=30))
    if truth is not None:
        Label.objects.create(run=run, item=item, node="cls", model_ref=model_ref, text="t", label=truth,
                             predicted=label, source=source)
    return item


def waiting(run, seq, *, at=TUESDAY):
    """A document parked for a person at `at`, not decided yet."""
    item = ledger_item(run, seq, received=at - timedelta(hours=1), finished=at, status=Item.PARKED)
    ledger_decision(run, item, "cls", label="World", confidence=0.4, model_ref="news:v1", port="out", created_at=at)
    ledger_decision(run, item, "rev", port="parked", created_at=at)
    task = ReviewTask.objects.create(run=run, item=item, node="rev", proposal={"label": "World"})
    ReviewTask.objects.filter(pk=task.pk).update(created_at=at)
    return item


@pytest.fixture
def owner(db):
    return make_user("des", "designer")


@pytest.fixture
def news(db):
    v1 = register_model("news", labels=["World", "Sports"])
    return v1


def test_automation_counts_documents_waiting_for_a_person_as_not_automated(owner, news):
    workflow = make_workflow(owner, line(), name="News")
    run = ledger_run(workflow, owner, status="waiting")
    for seq in range(2):
        decided(run, seq)
    for seq in range(2, 5):
        waiting(run, seq)
    facts = rollup.compute_week(workflow.pk, W13)
    assert facts.docs == 2 and facts.waiting == 3
    assert kpis.automation_rate(facts) == {"automated": 2, "completed": 2, "waiting": 3, "excluded": 0,
                                           "rate": pytest.approx(2 / 5)}
    # Once a person decides one, it leaves the week it waited in (and counts where it is completed).
    data = kpis.dashboard([workflow], W13)
    assert data["summary"]["automation"]["rate"] == pytest.approx(2 / 5)
    task = ReviewTask.objects.filter(run=run).first()
    ReviewTask.objects.filter(pk=task.pk).update(status=ReviewTask.DECIDED, decided_at=TUESDAY + timedelta(days=14))
    Item.objects.filter(pk=task.item_id).update(status=Item.PENDING, finished_at=None)
    data = kpis.dashboard([workflow], W13)
    assert data["summary"]["automation"]["waiting"] == 2


def test_accuracy_comes_from_spot_checks_and_escalations_are_shown_apart(owner, news):
    workflow = make_workflow(owner, line(), name="News")
    run = ledger_run(workflow, owner)
    for seq, truth in enumerate(["World"] * 9 + ["Sports"]):
        decided(run, seq, truth=truth)
    for seq, truth in enumerate(["Sports", "Sports", "World", "Sports"], start=20):
        decided(run, seq, truth=truth, source=Label.REVIEW)
    facts = rollup.compute_week(workflow.pk, W13)
    acc = kpis.accuracy(facts)
    (spot,) = acc["nodes"]
    assert (spot["node"], spot["n"], spot["correct"], spot["rate"]) == ("cls", 10, 9, pytest.approx(0.9))
    assert spot["low"] == pytest.approx(0.5958, abs=1e-4) and spot["high"] == pytest.approx(0.9821, abs=1e-4)
    (escalated,) = acc["escalations"]
    assert (escalated["n"], escalated["correct"]) == (4, 1)
    assert acc["end_to_end"]["n"] == 10 and acc["end_to_end"]["rate"] == pytest.approx(0.9)
    cards = {c["key"]: c for c in kpis.dashboard([workflow], W13)["cards"]}
    assert cards["accuracy"]["value"] == pytest.approx(0.9)


def test_documents_decided_with_a_label_set_that_no_longer_matches_are_flagged_and_not_claimed(owner, news, client):
    workflow = make_workflow(owner, line(), name="News")
    make_baseline(workflow)
    run = ledger_run(workflow, owner)
    for seq in range(4):
        decided(run, seq, label="positive", model_ref="news:v2")
    for seq in range(4, 6):
        decided(run, seq, label="World", model_ref="news:v1")
    # v2 (sentiment) had been promoted by mistake; news@production is back on topics (v3).
    v2 = register_model("news", labels=["positive", "negative", "neutral"], sha="b" * 64, alias="")
    v3 = register_model("news", labels=["World", "Sports"], sha="c" * 64, alias="")
    assert (v2.number, v3.number) == (2, 3)
    rollup.rebuild(workflow.pk)
    Alias.objects.filter(model__name="news", name="production").update(version=v3, updated_at=datetime.now(tz=ROME))
    data = kpis.dashboard([workflow], W13)
    s = data["summary"]
    assert s["label_sets"]["documents"] == 4 and s["label_sets"]["nodes"] == [
        {"node": "cls", "model_ref": "news:v2", "documents": 4, "why": "production"}]
    assert s["automation"] == {"automated": 2, "completed": 6, "waiting": 0, "excluded": 4,
                               "rate": pytest.approx(2 / 6)}
    assert s["savings"]["documents"] == 2
    client.force_login(owner)
    page = html.unescape(client.get(f"/workflows/{workflow.pk}/kpis/?week=2025-W13").content.decode())
    assert 'id="kpi-label-sets"' in page and "news:v2" in page


def test_labels_outside_the_node_label_set_are_flagged(owner, news):
    workflow = make_workflow(owner, line(labels={"World": "world news", "Sports": "sport"}), name="Zero")
    run = ledger_run(workflow, owner)
    decided(run, 0, label="World")
    decided(run, 1, label="Weather")
    s = kpis.summary(rollup.compute_week(workflow.pk, W13), None)
    assert s["label_sets"]["documents"] == 1
    assert s["label_sets"]["nodes"] == [{"node": "cls", "model_ref": "news:v1", "documents": 1, "why": "node"}]
    assert s["automation"]["rate"] == pytest.approx(1 / 2)


def test_the_weekly_pack_shows_what_the_line_learnt(owner, news, personas):
    workflow = make_workflow(owner, line(), name="News")
    make_baseline(workflow)
    run = ledger_run(workflow, owner)
    week12 = TUESDAY - timedelta(weeks=1)
    for seq, truth in enumerate(["World"] * 6 + ["Sports"] * 4):
        decided(run, seq, truth=truth, at=week12)
    for seq, truth in enumerate(["World"] * 9 + ["Sports"], start=100):
        decided(run, seq, truth=truth, model_ref="news:v2")
    decided(run, 200, truth="Sports", source=Label.REVIEW)
    Label.objects.create(model=news.model, text="uploaded", label="World", source=Label.UPLOAD)
    Label.objects.filter(item__seq__lt=10).update(created_at=week12)
    Label.objects.filter(item__isnull=True).update(created_at=TUESDAY)
    Label.objects.filter(item__seq__gte=100).update(created_at=TUESDAY)
    v2 = register_model("news", labels=["World", "Sports"], sha="d" * 64, alias="")
    PromotionRequest.objects.create(version=v2, alias="production", reason="better", status=PromotionRequest.APPROVED,
                                    requested_by=personas["trainer"], decided_by=personas["validator"],
                                    decided_at=TUESDAY, previous_version=news)
    content = kpi_pack.build(workflow, W13)
    (learning,) = content["learning"]["nodes"]
    assert learning["node"] == "cls"
    assert [(w["week"], w["n"], w["correct"]) for w in learning["weeks"]] == [("2025-W12", 10, 6), ("2025-W13", 10, 9)]
    assert learning["change"] == pytest.approx(0.3)
    assert content["learning"]["labels"] == {"spot_check": 10, "review": 1, "upload": 1, "total": 12}
    assert [(p["version"], p["previous"], p["by"]) for p in content["promotions"]] == [("news:v2", "news:v1",
                                                                                        "validator")]
    changes = {c["key"]: c for c in content["cards"]}
    assert changes["accuracy"]["previous"] == pytest.approx(0.6) and changes["accuracy"]["change"] == pytest.approx(0.3)
    client = Client()
    client.force_login(owner)
    page = html.unescape(client.get(f"/workflows/{workflow.pk}/kpis/packs/2025-W13/").content.decode())
    assert 'id="pack-learning"' in page and "2025-W12" in page and "news:v2" in page
    rows = kpi_pack.csv_rows(content)
    assert any(r[0] == "learning" and r[1] == "cls 2025-W13" and r[2] == pytest.approx(0.9) and "10" in r[3]
               for r in rows)
    assert W12 < W13 < W14


def test_the_api_says_the_same(owner, news, api):
    workflow = make_workflow(owner, line(), name="News")
    run = ledger_run(workflow, owner, status="waiting")
    decided(run, 0, truth="World")
    waiting(run, 1)
    data = api(owner).get(f"/api/workflows/{workflow.pk}/kpis/?week=2025-W13").json()
    assert data["summary"]["automation"] == {"automated": 1, "completed": 1, "waiting": 1, "excluded": 0,
                                             "rate": 0.5}
    assert data["summary"]["accuracy"]["nodes"][0]["n"] == 1 and data["summary"]["accuracy"]["escalations"] == []
    assert data["summary"]["label_sets"] == {"documents": 0, "automated": 0, "nodes": []}
    assert [(n["node"], [w["week"] for w in n["weeks"]]) for n in data["learning"]] == [("cls", ["2025-W13"])]
