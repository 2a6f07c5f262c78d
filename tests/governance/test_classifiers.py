"""New classifiers: a zero-shot step's labels train a classifier of its own, which then decides the step;
classifiers registered with their own labels; runs may pin only approved versions."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.builders import edge, make_workflow, node
from tests.engine.helpers import drain
from tests.governance.conftest import PRODUCTION_WORDS, keyword_classifier
from workflows.engine import launch
from workflows.governance import classifiers, review
from workflows.models import Decision, Label, ReviewTask
from workflows.models.registry import RegisteredModel, register_version, set_initial_alias

pytestmark = pytest.mark.django_db

LABELS = {"billing": "a question about an invoice, a payment or a refund",
          "technical": "something does not work: an error, a crash, an outage",
          "account": "logging in, a password, the user's account"}


def zero_shot_graph():
    return {
        "nodes": [node("src", "source.upload", fields=["text"]),
                  node("cls", "classify", model="minilm@production", method="zero_shot", labels=LABELS),
                  node("rev", "review", labels=list(LABELS)), node("out", "sink.table")],
        "edges": [edge("src", "cls"), edge("cls", "rev"), edge("rev", "out")],
    }


def test_review_labels_of_a_zero_shot_step_train_its_own_classifier(personas, packaged_models):
    workflow = make_workflow(personas["designer"], zero_shot_graph(), name="Triage zero-shot")
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": "my invoice is wrong"}])
    drain()
    task = ReviewTask.objects.get(run=run, kind=ReviewTask.ESCALATION)
    label = review.decide(task, user=personas["operator"], label="billing")
    # Was: the label attached to minilm, an embedder that training refuses.
    assert label.model is not None and label.model.kind == "classifier"
    assert (label.model.origin_workflow, label.model.origin_node) == (workflow, "cls")
    assert classifiers.label_set(label.model) == sorted(LABELS)
    assert classifiers.classifier_for_node(workflow, "cls", create=False) == label.model


def test_once_the_steps_classifier_is_in_production_it_decides_the_step(personas, packaged_models, settings,
                                                                        tmp_path):
    workflow = make_workflow(personas["designer"], zero_shot_graph(), name="Learns")
    model = classifiers.classifier_for_node(workflow, "cls", user=personas["trainer"])
    first = launch.create_run(workflow, user=personas["operator"], items=[{"text": "invoice"}])
    drain()
    assert Decision.objects.get(run=first, node="cls").model_ref.startswith("minilm:")
    version, _ = register_version(model_name=model.name, kind="classifier", source="trained", runtime="tfidf",
                                  meta=keyword_classifier({**PRODUCTION_WORDS, "invoice": "billing"}, "learned"))
    set_initial_alias(version, "production")
    second = launch.create_run(workflow, user=personas["operator"], items=[{"text": "invoice"}])
    drain()
    decision = Decision.objects.get(run=second, node="cls")
    assert decision.model_ref == version.ref and decision.label == "billing"
    assert second.resolved_models["learned:cls"]["ref"] == version.ref


@pytest.mark.usefixtures("keyword_models")
def test_a_run_may_not_pin_a_version_no_validator_approved(personas):
    # tickets:v1 is production (set at installation); tickets:v2 was trained and never promoted.
    graph = {"nodes": [node("src", "source.upload", fields=["text"]), node("cls", "classify", model="tickets:v2"),
                       node("out", "sink.table")],
             "edges": [edge("src", "cls"), edge("cls", "out")]}
    workflow = make_workflow(personas["designer"], graph, name="Pinned")
    version = workflow.versions.order_by("-number").first()
    assert any(p["code"] == "unapproved_pin" for p in version.problems)
    with pytest.raises(launch.StartError) as refused:
        launch.check_runnable(version, "upload")
    assert "tickets:v2" in str(refused.value.problems) and "tickets@production" in str(refused.value.problems)
    # The production version may be pinned: an alias points at it.
    graph["nodes"][1]["config"]["model"] = "tickets:v1"
    pinned_ok = make_workflow(personas["designer"], graph, name="Pinned v1")
    launch.check_runnable(pinned_ok.versions.order_by("-number").first(), "upload")


def test_a_new_classifier_is_registered_with_its_own_labels_in_the_ui_and_the_api(personas, client):
    client.force_login(personas["trainer"])
    response = client.post("/models/new/", {"name": "sentiment", "labels": "positive: happy\nnegative: angry\nneutral"})
    assert response.status_code == 302 and response.url == "/models/sentiment/"
    model = RegisteredModel.objects.get(name="sentiment")
    assert model.kind == "classifier" and model.seed_labels == {"positive": "happy", "negative": "angry",
                                                                 "neutral": ""}
    api = APIClient()
    api.force_authenticate(personas["trainer"])
    made = api.post("/api/classifiers/", {"name": "urgency", "labels": ["urgent", "normal"]}, format="json")
    assert made.status_code == 201 and made.data["labels"] == ["normal", "urgent"]
    for bad, said in [({"name": "urgency", "labels": ["a", "b"]}, "exists already"),
                      ({"name": "Bad Name", "labels": ["a", "b"]}, "not a model name"),
                      ({"name": "new", "labels": ["a", "b"]}, "not a model name"),
                      ({"name": "one", "labels": ["only"]}, "at least two labels")]:
        answer = api.post("/api/classifiers/", bad, format="json")
        assert answer.status_code == 400 and said in answer.data["detail"], answer.data
    api.force_authenticate(personas["operator"])
    assert api.post("/api/classifiers/", {"name": "x", "labels": ["a", "b"]}, format="json").status_code == 403


def test_train_a_classifier_for_this_step_from_the_panel_and_the_api(personas, packaged_models, client):
    workflow = make_workflow(personas["designer"], zero_shot_graph(), name="Panel")
    client.force_login(personas["trainer"])
    panel = client.get(f"/workflows/{workflow.pk}/panel/", {"node": "cls", "type": "classify",
                                                             "config": '{"model": "minilm@production", '
                                                                       '"method": "zero_shot"}'}).content.decode()
    assert "Train a classifier for this step" in panel
    response = client.post(f"/workflows/{workflow.pk}/nodes/cls/classifier/")
    model = RegisteredModel.objects.get(origin_workflow=workflow, origin_node="cls")
    assert response.status_code == 302 and response.url == f"/models/{model.name}/"
    assert set(model.seed_labels) == set(LABELS)
    api = APIClient()
    api.force_authenticate(personas["trainer"])
    again = api.post(f"/api/workflows/{workflow.pk}/nodes/cls/classifier/")
    assert again.status_code == 200 and again.data["name"] == model.name  # the same one, not a second
    assert api.post(f"/api/workflows/{workflow.pk}/nodes/out/classifier/").status_code == 400
    assert Label.objects.count() == 0
