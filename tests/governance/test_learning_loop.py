"""The whole learning loop through the API, on documents this test makes: a zero-shot step decides →
spot checks and reviews → a new classifier trained from them → evidence on a separate labelled set →
the requester may not approve, a validator does → the next run is decided by the new version, and its
spot-checked accuracy is up."""

from __future__ import annotations

import random

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from tests.builders import edge, make_workflow, node
from tests.engine.helpers import drain
from tests.governance.conftest import run_governance_queue
from workflows.engine import launch
from workflows.governance.accuracy import node_accuracy
from workflows.models import Decision, ReviewTask
from workflows.models.registry import ModelJob, PromotionRequest, RegisteredModel

pytestmark = pytest.mark.django_db

PRODUCTS = ["the mobile app", "the web portal", "the fibre line", "the router", "the TV box", "the e-shop",
            "the cloud backup", "the VoIP line", "the SIM card", "the smart meter"]
TEMPLATES = {
    "billing": ["I was charged twice for {p} this month, invoice {n}.",
                "Where is the refund for {p}? Order {n} was cancelled weeks ago.",
                "Invoice {n} for {p} shows the wrong amount, please correct the bill.",
                "Why did my monthly payment for {p} go up? See bill {n}."],
    "technical": ["{P} crashes every time I open it, error code {n}.",
                  "{P} stopped working this morning; the light is red and nothing loads ({n}).",
                  "Since the update {p} freezes and shows error {n}.",
                  "{P} is very slow and keeps disconnecting, ticket {n}."],
    "account": ["I cannot log in to my account for {p}; the password reset mail never arrives ({n}).",
                "Please change the e-mail address on my profile for {p}, customer {n}.",
                "My account for {p} was locked after three wrong passwords, user {n}.",
                "How do I add a second user to my account for {p}? Customer number {n}."],
}
# What a designer might type in a hurry: descriptions that say nothing, so zero-shot does poorly
# and the labels people give are what teaches the step.
VAGUE = {"billing": "category one", "technical": "category two", "account": "category three"}


def documents(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    made = []
    for i in range(count):
        label = list(TEMPLATES)[i % 3]
        product = rng.choice(PRODUCTS)
        text = rng.choice(TEMPLATES[label]).format(p=product, P=product[0].upper() + product[1:],
                                                    n=rng.randint(10_000, 99_999))
        made.append((text, label))
    return made


def loop_graph():
    return {
        "nodes": [node("src", "source.upload", fields=["text", "truth"]),
                  node("cls", "classify", model="minilm@production", method="zero_shot", labels=VAGUE,
                       spot_check=100.0),
                  node("route", "route", branches=[{"name": "sure", "min_confidence": 0.45}]),
                  node("rev", "review", labels=list(VAGUE)), node("out", "sink.table")],
        "edges": [edge("src", "cls"), edge("cls", "route"), edge("route", "out", source_port="sure"),
                  edge("route", "rev", source_port="else"), edge("rev", "out")],
    }


def answer_every_task(api: APIClient, run) -> tuple[int, int]:
    """The operator answers every escalation and spot check of the run with the truth."""
    escalations = spots = 0
    for task in ReviewTask.objects.filter(run=run, status=ReviewTask.OPEN).select_related("item"):
        response = api.post(f"/api/review/{task.pk}/label/", {"label": task.item.payload["truth"]}, format="json")
        assert response.status_code == 200, response.data
        spots += task.kind == ReviewTask.SPOT_CHECK
        escalations += task.kind == ReviewTask.ESCALATION
    return escalations, spots


def test_the_factory_learns_through_the_api(personas, packaged_models, django_capture_on_commit_callbacks):
    operator, trainer, validator = (APIClient() for _ in range(3))
    operator.force_authenticate(personas["operator"])
    trainer.force_authenticate(personas["trainer"])
    validator.force_authenticate(personas["validator"])
    workflow = make_workflow(personas["designer"], loop_graph(), name="Support triage")

    # 1. Zero-shot decides; every item is spot-checked or escalated, and people answer.
    first = launch.create_run(workflow, user=personas["operator"],
                              items=[{"text": t, "truth": label} for t, label in documents(90, seed=1)])
    drain()
    escalations, spots = answer_every_task(operator, first)
    assert spots > 0 and escalations + spots == 90
    drain()  # escalated items resume
    before = {a.node: a for a in node_accuracy(workflow.pk)}["cls"]

    # 2. The step's own classifier has the labels; the trainer trains its first version from them.
    classifier = trainer.get(f"/api/workflows/{workflow.pk}/nodes/cls/classifier/")
    assert classifier.status_code == 200 and classifier.data["training_labels"] == 90
    name = classifier.data["name"]
    with django_capture_on_commit_callbacks(execute=True):
        job = trainer.post(f"/api/models/{name}/train/", {"use_reviews": True}, format="json")
    assert job.status_code == 202, job.data
    run_governance_queue()
    job = ModelJob.objects.get(pk=job.data["id"])
    assert job.status == ModelJob.SUCCEEDED, job.error
    version = job.result_version
    assert version.ref == f"{name}:v1" and version.parent is None and sorted(version.labels) == sorted(VAGUE)

    # 3. Evidence on a separate labelled set (none of the training documents), mapped on upload.
    evaluation = "\n".join(["body,category,channel"] + [f'"{t}",{label},email' for t, label in documents(45, seed=2)])
    upload = trainer.post("/api/labelled-sets/", {"file": SimpleUploadedFile("eval.csv", evaluation.encode()),
                                                  "name": "support-eval", "model": name,
                                                  "mapping": '{"text": "body", "label": "category", '
                                                             '"segments": ["channel"]}'}, format="multipart")
    assert upload.status_code == 201, upload.data
    with django_capture_on_commit_callbacks(execute=True):
        request = trainer.post("/api/promotions/", {"model": name, "version": 1, "alias": "production",
                                                    "reason": "First trained version", "labelled_set": "support-eval"},
                               format="json")
    assert request.status_code == 201, request.data
    run_governance_queue()
    promotion = PromotionRequest.objects.get(pk=request.data["id"])
    assert promotion.status == PromotionRequest.READY, promotion.evidence_error
    shown = validator.get(f"/api/promotions/{promotion.pk}/").data
    evaluation = shown["evidence"]["evaluation"]
    candidate, production = evaluation["candidate"], evaluation["production"]  # production: the step's zero-shot
    assert shown["evidence"]["baseline"]["kind"] == "zero_shot" and evaluation["labels_match"]
    assert candidate["n"] == 45 and candidate["accuracy"] > production["accuracy"] + 0.2, (candidate, production)

    # 4. Four eyes: the trainer asked for it and trained it; a validator decides.
    refused = trainer.post(f"/api/promotions/{promotion.pk}/decide/", {"action": "approve", "reason": "mine"},
                           format="json")
    assert refused.status_code == 403
    approved = validator.post(f"/api/promotions/{promotion.pk}/decide/",
                              {"action": "approve", "reason": "Clear gain on a separate set",
                               "acknowledge_label_change": True}, format="json")
    assert approved.status_code == 200, approved.data
    assert RegisteredModel.objects.get(name=name).alias("production") == version

    # 5. The next run is decided by the new version, and spot checks say it is better.
    second = launch.create_run(workflow, user=personas["operator"],
                               items=[{"text": t, "truth": label} for t, label in documents(60, seed=3)])
    drain()
    assert set(Decision.objects.filter(run=second, node="cls").values_list("model_ref", flat=True)) == {version.ref}
    answer_every_task(operator, second)
    by_version = {a.model_ref: a for a in node_accuracy(workflow.pk) if a.node == "cls"}
    after = by_version[version.ref]
    assert after.spot.n > 0 and after.spot.rate > before.spot.rate + 0.2, (before, after)
