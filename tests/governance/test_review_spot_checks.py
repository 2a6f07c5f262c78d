"""Spot checks: a sample of items a model decided alone, checked by a person so that accuracy is
measured on what ran unattended too. Deciding one records a spot-check label and resumes nothing."""

from __future__ import annotations

import html

import pytest

from tests.builders import edge, make_workflow, node
from tests.engine.helpers import drain
from workflows.engine import launch
from workflows.models import Decision, Item, Label, ReviewTask, Run, Shard

pytestmark = pytest.mark.django_db


def alone_graph():
    """No review node: the classifier decides every item alone."""
    return {"nodes": [node("src", "source.upload", fields=["text"]),
                      node("cls", "classify", model="tickets@production", spot_check=0), node("out", "sink.table")],
            "edges": [edge("src", "cls"), edge("cls", "out")]}


def finished_run_with_spot_checks(personas):
    workflow = make_workflow(personas["designer"], alone_graph(), name="Alone")
    run = launch.create_run(workflow, user=personas["operator"],
                            items=[{"text": "fattura"}, {"text": "crash"}, {"text": "password"}])
    drain()
    run.refresh_from_db()
    assert run.status == "succeeded" and run.items_done == 3
    tasks = {}
    # As the executor samples them: the item has gone on, the task points at the node that decided it.
    for item in run.items.filter(payload__text__in=["fattura", "crash"]):
        decision = Decision.objects.get(run=run, item=item, node="cls")
        tasks[item.payload["text"]] = ReviewTask.objects.create(
            run=run, item=item, node="cls", queue="spot-check", kind=ReviewTask.SPOT_CHECK,
            proposal={"label": decision.label, "confidence": decision.confidence})
    return run, tasks


def test_spot_checks_have_their_own_tab_with_the_reason(personas, keyword_models, client):
    run, tasks = finished_run_with_spot_checks(personas)
    escalated = ReviewTask.objects.create(run=run, item=run.items.get(payload__text="password"), node="rev",
                                          queue="default", proposal={"label": "account", "confidence": 0.4})
    client.force_login(personas["operator"])
    escalations = html.unescape(client.get("/review/").content.decode())
    assert f'data-task="{escalated.pk}"' in escalations
    assert not any(f'data-task="{t.pk}"' in escalations for t in tasks.values())
    assert "?kind=spot_check" in escalations
    spot = html.unescape(client.get("/review/?kind=spot_check").content.decode())
    assert all(f'data-task="{t.pk}"' in spot for t in tasks.values()) and f'data-task="{escalated.pk}"' not in spot
    assert "The model decided these alone" in spot and "accuracy is measured honestly" in spot


def test_deciding_a_spot_check_records_a_spot_check_label_and_resumes_nothing(personas, keyword_models, client):
    run, tasks = finished_run_with_spot_checks(personas)
    decisions_before = Decision.objects.filter(run=run).count()
    shards_before = Shard.objects.filter(run=run).count()
    client.force_login(personas["operator"])
    # 'fattura' is billing; the production model said technical.
    response = client.post(f"/review/{tasks['fattura'].pk}/decide/", {"label": "billing", "kind": "spot_check"})
    assert response.status_code == 302 and "kind=spot_check" in response["Location"]
    label = Label.objects.get(review_task=tasks["fattura"])
    assert (label.source, label.label, label.predicted, label.node, label.model_ref, label.field) == (
        Label.SPOT_CHECK, "billing", "technical", "cls", "tickets:v1", "")
    assert label.model.name == "tickets" and label.text == "fattura"
    task = ReviewTask.objects.get(pk=tasks["fattura"].pk)
    assert task.status == ReviewTask.DECIDED and task.decided_by == personas["operator"]
    # Nothing resumed: no shard, no decision, the run and the item as they were.
    assert Shard.objects.filter(run=run).count() == shards_before
    assert Decision.objects.filter(run=run).count() == decisions_before
    assert Run.objects.get(pk=run.pk).status == "succeeded"
    assert Item.objects.get(pk=task.item_id).status == Item.DONE
    # The API decides the other one; deciding it again is a conflict.
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(personas["operator"])
    response = api.post(f"/api/review/{tasks['crash'].pk}/label/", {"label": "technical"}, format="json")
    assert response.status_code == 200 and response.data["corrected"] is False
    assert api.post(f"/api/review/{tasks['crash'].pk}/label/", {"label": "technical"}, format="json").status_code == 409
    assert Label.objects.get(review_task=tasks["crash"]).source == Label.SPOT_CHECK
    assert Shard.objects.filter(run=run).count() == shards_before
    # Spot-check accuracy is shown apart from the accuracy on escalations.
    from workflows.governance.accuracy import node_accuracy

    assert [(a.node, a.spot.n, a.spot.correct, a.escalated.n) for a in node_accuracy()] == [("cls", 2, 1, 0)]
    page = html.unescape(client.get("/review/?kind=spot_check").content.decode())
    assert 'id="spot-check-accuracy"' in page and "50.0 %" in page


def test_the_engine_never_resumes_a_spot_check(personas, keyword_models, api):
    run, tasks = finished_run_with_spot_checks(personas)
    assert launch.decide_review(tasks["crash"], user=personas["operator"], result={"label": "technical"}) is False
    assert ReviewTask.objects.get(pk=tasks["crash"].pk).status == ReviewTask.OPEN
    # The API's generic decide goes through the spot-check path too.
    response = api(personas["operator"]).post(f"/api/reviews/{tasks['crash'].pk}/decide/", {"label": "technical"},
                                              format="json")
    assert response.status_code == 200
    assert Label.objects.get(review_task=tasks["crash"]).source == Label.SPOT_CHECK
    assert not Shard.objects.filter(run=run, item_ids__isnull=False).exists()
    listed = api(personas["operator"]).get("/api/review/?kind=spot_check").data["tasks"]
    assert [t["id"] for t in listed] == [tasks["fattura"].pk] and listed[0]["kind"] == "spot_check"
