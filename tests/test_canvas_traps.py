"""Server side of the canvas's traps: no sink means not runnable; a node's last items for the side panel."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from tests.builders import edge, ledger_decision, ledger_item, ledger_run, make_workflow, node
from workflows.engine.results import node_samples
from workflows.graph import parse_graph, validate
from workflows.models import DeadLetter

pytestmark = pytest.mark.django_db

NO_SINK = {"nodes": [node("src", "source.upload"), node("ext", "extract", patterns=["email"])],
           "edges": [edge("src", "ext")]}


def test_a_workflow_without_a_sink_is_not_runnable(personas):
    problems = validate(parse_graph(NO_SINK))
    assert [(p.code, p.severity) for p in problems] == [("no_sink", "error")]
    assert "add a Results table" in problems[0].message
    workflow = make_workflow(personas["designer"], NO_SINK, name="No sink")
    assert workflow.latest.is_runnable is False
    client = Client()
    client.force_login(personas["designer"])
    response = client.post(f"/api/workflows/{workflow.pk}/versions/", {"graph": NO_SINK, "parent": 1},
                           content_type="application/json")
    assert response.status_code == 201 and response.json()["is_runnable"] is False


def _run_with_items(workflow, user, count: int):
    run = ledger_run(workflow, user)
    now = timezone.now()
    for seq in range(count):
        item = ledger_item(run, seq, received=now, payload={"text": f"ticket {seq}"})
        ledger_decision(run, item, "cls", label="billing", confidence=0.9)
        ledger_decision(run, item, "route", port="confident")
        if seq == count - 1:
            ledger_decision(run, item, "ext", port="dead", error="boom")
            DeadLetter.objects.create(run=run, item=item, node="ext", reason="boom", attempts=3)
        else:
            ledger_decision(run, item, "ext", output={"fields": {"email": f"a{seq}@example.com"}})
        ledger_decision(run, item, "out", output={"row": {"n": seq}})  # downstream: never part of the input
    return run


def test_node_samples_are_the_last_items_with_what_reached_the_node(personas):
    workflow = make_workflow(personas["designer"])
    run = _run_with_items(workflow, personas["designer"], 30)
    samples = node_samples(run, "ext", limit=20)
    assert [s.seq for s in samples.rows] == list(range(29, 9, -1))
    newest, second = samples.rows[0], samples.rows[1]
    assert newest.port == "dead" and newest.error == "boom"
    assert second.received == {"text": "ticket 28", "label": "billing", "confidence": 0.9}
    assert second.output == {"fields": {"email": "a28@example.com"}}
    assert [d["reason"] for d in samples.dead_letters] == ["boom"]
    assert node_samples(run, "nobody").rows == []


def test_the_samples_partial_shows_the_latest_run_to_every_role(personas):
    workflow = make_workflow(personas["designer"])
    client = Client()
    client.force_login(personas["operator"])
    html = client.get(f"/workflows/{workflow.pk}/samples/", {"node": "ext"}).content.decode()
    assert "No run yet" in html
    _run_with_items(workflow, personas["designer"], 3)
    html = client.get(f"/workflows/{workflow.pk}/samples/", {"node": "ext"}).content.decode()
    assert "<html" not in html and "ticket 1" in html and "a1@example.com" in html and "boom" in html
    other = make_workflow(personas["designer"], name="Other")
    assert "ticket 1" not in client.get(f"/workflows/{other.pk}/samples/", {"node": "ext"}).content.decode()
