"""Review corrections become labels and resume the item; drift fires on a shifted window only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.builders import edge, make_workflow, node
from tests.engine.helpers import drain
from workflows.engine import launch
from workflows.governance import drift
from workflows.models import Decision, Item, Label, ReviewTask, Run

pytestmark = pytest.mark.django_db


def review_graph():
    return {
        "nodes": [node("src", "source.upload", fields=["text"]), node("cls", "classify", model="tickets@production"),
                  node("route", "route", branches=[{"name": "billing", "labels": ["billing"]}]),
                  node("rev", "review", labels=["account", "billing", "technical"]), node("out", "sink.table")],
        "edges": [edge("src", "cls"), edge("cls", "route"), edge("route", "out", source_port="billing"),
                  edge("route", "rev", source_port="else"), edge("rev", "out")],
    }


def test_a_correction_becomes_a_label_and_resumes_the_item(personas, keyword_models, client):
    workflow = make_workflow(personas["designer"], review_graph(), name="Reviewed")
    run = launch.create_run(workflow, user=personas["operator"],
                            items=[{"text": "fattura"}, {"text": "invoice"}, {"text": "crash"}])
    drain()
    escalations = ReviewTask.objects.filter(run=run, kind=ReviewTask.ESCALATION).select_related("item")
    tasks = {t.item.payload["text"]: t for t in escalations}
    assert set(tasks) == {"fattura", "crash"}
    client.force_login(personas["operator"])
    page = client.get("/review/").content.decode()
    assert "fattura" in page and "technical" in page and 'data-key="2"' in page
    # Correct 'fattura' (the model said technical) through the page; accept 'crash' through the API.
    assert client.post(f"/review/{tasks['fattura'].pk}/decide/", {"label": "billing"}).status_code == 302
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(personas["operator"])
    response = api.post(f"/api/review/{tasks['crash'].pk}/label/", {"label": "technical"}, format="json")
    assert response.status_code == 200 and response.data["corrected"] is False
    assert api.post(f"/api/review/{tasks['crash'].pk}/label/", {"label": "technical"}, format="json").status_code == 409
    label = Label.objects.get(review_task=tasks["fattura"])
    assert (label.text, label.label, label.predicted, label.node, label.model_ref) == (
        "fattura", "billing", "technical", "cls", "tickets:v1")
    assert label.corrected and label.model.name == "tickets" and label.created_by == personas["operator"]
    drain()  # the decisions resumed both items downstream of the review node
    item = Item.objects.get(run=run, payload__text="fattura")
    assert item.status == "done" and Decision.objects.filter(item=item, node="out").exists()
    assert Run.objects.get(pk=run.pk).items_parked == 0
    from workflows.governance.accuracy import node_accuracy

    assert [(a.node, a.escalated.n, a.escalated.correct, a.escalated.rate, a.spot.n) for a in node_accuracy()] == [
        ("cls", 2, 1, 0.5, 0)]
    assert "50.0 %" in client.get("/review/").content.decode()


def test_a_wrong_label_is_refused(personas, keyword_models, client):
    workflow = make_workflow(personas["designer"], review_graph(), name="Reviewed")
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": "crash"}])
    drain()
    task = ReviewTask.objects.get(run=run, kind=ReviewTask.ESCALATION)
    client.force_login(personas["operator"])
    client.post(f"/review/{task.pk}/decide/", {"label": "sport"})
    task.refresh_from_db()
    assert task.status == "open" and not Label.objects.exists()


def _decisions(workflow, personas, mix: list[tuple[str, float, str | None]], when) -> None:
    """One run of ledger rows as the executor writes them: (label, confidence, reviewed truth)."""
    run = Run.objects.create(workflow=workflow, version=workflow.latest, source_node="src", shard_size=256,
                             batch_size=32, resolved_models={})
    for seq, (label, confidence, truth) in enumerate(mix):
        item = Item.objects.create(run=run, seq=seq, payload={"text": f"ticket {seq}"})
        Decision.objects.create(run=run, item=item, node="cls", model_ref="tickets:v1", label=label,
                                confidence=confidence, port="out", created_at=when)
        if truth:
            Label.objects.create(run=run, item=item, node="cls", model_ref="tickets:v1", text="t", label=truth,
                                 predicted=label)


def test_drift_fires_on_a_shifted_window_and_not_on_an_unshifted_one(personas, keyword_models):
    workflow = make_workflow(personas["designer"], review_graph(), name="Drifting")
    start = timezone.now() - timedelta(days=3)
    # Reference: 30% billing, confident, 91%-ish right on reviewed items.
    reference = [("billing" if i % 10 < 3 else "technical", 0.92, None) for i in range(100)]
    for i in range(0, 100, 5):  # 20 reviewed, 18 right
        label = reference[i][0]
        reference[i] = (label, 0.92, label if i not in (0, 5) else "account")
    _decisions(workflow, personas, reference, start)
    same = list(reference)
    _decisions(workflow, personas, same, start + timedelta(days=1))
    steady = drift.node_drift(workflow, "cls", window=100)
    assert steady.status == "ok" and not steady.alert and steady.psi_labels == 0.0
    assert "Stable" in steady.message

    # Recent: 60% billing and less sure; accuracy on reviewed items drops to 80%.
    shifted = [("billing" if i % 10 < 6 else "technical", 0.6, None) for i in range(100)]
    for i in range(0, 100, 5):
        label = shifted[i][0]
        shifted[i] = (label, 0.6, label if i % 25 else "account")
    _decisions(workflow, personas, shifted, start + timedelta(days=2))
    alert = drift.node_drift(workflow, "cls", window=100)
    assert alert.alert and alert.psi_labels > drift.PSI_ALERT and alert.psi_confidence > drift.PSI_ALERT
    assert alert.reference.accuracy == 0.9 and alert.recent.accuracy == 0.8
    assert alert.message.startswith("Since ")
    assert "30 % more documents are classified billing (60 % against 30 % after promotion)" in alert.message
    assert "accuracy on reviewed items fell from 90 % to 80 %" in alert.message
    assert "mean confidence fell from 0.92 to 0.60" in alert.message


def test_drift_actions_route_everything_to_review_and_request_a_rollback(personas, keyword_models, client):
    from workflows.governance.tasks import compute_evidence  # noqa: F401  (the rollback enqueues evidence)

    workflow = make_workflow(personas["designer"], review_graph(), name="Drifting")
    client.force_login(personas["designer"])
    response = client.post("/drift/action/", {"action": "route_review", "workflow": workflow.pk, "node": "cls"})
    assert response.status_code == 302
    workflow.refresh_from_db()
    latest = workflow.latest
    assert latest.number == 2 and latest.is_runnable and "Drift" in latest.message
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": "invoice"}])
    drain()
    assert Decision.objects.get(run=run, node="route").port == "else"  # even a sure 'billing' goes to review
    assert ReviewTask.objects.filter(run=run, kind=ReviewTask.ESCALATION).count() == 1
    # Roll back: there is no earlier production yet, so it says so; operators may not ask.
    client.force_login(personas["operator"])
    assert client.post("/drift/action/", {"action": "rollback", "model": "tickets", "node": "cls"}).status_code == 403


def test_drift_looks_at_steps_active_in_the_window_and_reads_only_its_two_windows(personas, keyword_models, settings):
    """The periodic drift check must not aggregate the whole ledger: steps whose runs are older than
    DRIFT_ACTIVE_DAYS are not looked at, and a step's drift reads its first and last windows only."""
    settings.DRIFT_ACTIVE_DAYS = 30
    old = make_workflow(personas["designer"], review_graph(), name="Dormant")
    _decisions(old, personas, [("billing", 0.9, None)] * 70, timezone.now() - timedelta(days=90))
    Run.objects.filter(workflow=old).update(created_at=timezone.now() - timedelta(days=90))
    active = make_workflow(personas["designer"], review_graph(), name="Active")
    reference = [("billing", 0.9, None)] * 100
    _decisions(active, personas, reference, timezone.now() - timedelta(days=2))
    _decisions(active, personas, [("technical", 0.5, None)] * 300, timezone.now() - timedelta(days=1))
    assert [(w.name, node) for w, node in drift.model_nodes()] == [("Active", "cls")]
    result = drift.node_drift(active, "cls", window=100)
    assert result.reference.n == 100 and result.recent.n == 100 and result.alert


def test_a_drift_action_that_cannot_be_published_leaves_no_version_behind(personas, keyword_models, client):
    from workflows.models import Workflow

    workflow = make_workflow(personas["designer"], review_graph(), name="Guarded")
    Workflow.objects.filter(pk=workflow.pk).update(publish_needs_approval=True)
    head = Workflow.objects.get(pk=workflow.pk).head
    client.force_login(personas["designer"])
    client.post("/drift/action/", {"action": "route_review", "workflow": workflow.pk, "node": "cls"})  # a request
    client.post("/drift/action/", {"action": "route_review", "workflow": workflow.pk, "node": "cls"})  # refused
    # The second action's publication is refused (a request is open): its version is not kept as a draft.
    workflow.refresh_from_db()
    assert workflow.publish_requests.filter(decision="open").count() == 1
    assert workflow.head == head + 1


def test_a_drift_action_keeps_the_designer_s_unpublished_draft_on_top(personas, keyword_models, client):
    """The action changes what runs now, so it starts from the live version; a draft in progress must
    not vanish from the canvas: it comes back as the newest version, with the same change, still a
    draft, and the message says so."""
    from workflows.design.versions import save_version
    from workflows.graph import parse_graph
    from workflows.models import Workflow

    workflow = make_workflow(personas["designer"], review_graph(), name="Drafting")
    draft = workflow.latest.graph
    draft["nodes"].append({"id": "extra", "type": "sink.table", "config": {}, "position": {"x": 0, "y": 0}})
    save_version(workflow, parse_graph(draft), user=personas["designer"], parent=workflow.latest.number)
    workflow = Workflow.objects.get(pk=workflow.pk)
    assert workflow.head == 2 and workflow.published == 1
    client.force_login(personas["designer"])
    response = client.post("/drift/action/", {"action": "route_review", "workflow": workflow.pk, "node": "cls"},
                           follow=True)
    workflow = Workflow.objects.get(pk=workflow.pk)
    live, head = workflow.live, workflow.latest
    assert live.number == 3 and "extra" not in {n["id"] for n in live.graph["nodes"]}  # from the live version
    assert head.number == 4 and workflow.published == 3  # the draft, on top, still a draft
    heads = {n["id"]: n for n in head.graph["nodes"]}
    assert "extra" in heads
    assert all(b["min_confidence"] == 1 and b["max_confidence"] == 0 for b in heads["route"]["config"]["branches"])
    assert "draft" in response.content.decode().lower() and "v2" in response.content.decode()
