"""Live accuracy per workflow, node and model version: spot checks (a random sample of what the model
decided alone) measure it, with a Wilson 95 % interval; reviews of escalations are shown apart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tests.builders import ledger_item, ledger_run, make_user, make_workflow
from workflows.governance import accuracy
from workflows.models.registry import Label

pytestmark = pytest.mark.django_db


def _labels(run, node, model_ref, source, pairs, start=0, field=""):
    now = timezone.now()
    for i, (truth, predicted) in enumerate(pairs):
        item = ledger_item(run, start + i, received=now - timedelta(hours=1), finished=now)
        Label.objects.create(run=run, item=item, node=node, model_ref=model_ref, text="t", label=truth,
                             predicted=predicted, source=source, field=field)


@pytest.fixture
def ledger(db):
    owner = make_user("des", "designer")
    workflow = make_workflow(owner, name="Tickets")
    run = ledger_run(workflow, owner)
    # Escalations are the unsure items: 1 right of 4. Spot checks: 9 right of 10.
    _labels(run, "cls", "tickets:v1", Label.REVIEW, [("a", "a"), ("a", "b"), ("b", "a"), ("c", "a")])
    _labels(run, "cls", "tickets:v1", Label.SPOT_CHECK, [("a", "a")] * 9 + [("b", "a")], start=10)
    # A newer version, spot-checked only; a corrected field is not a class and counts nowhere.
    _labels(run, "cls", "tickets:v2", Label.SPOT_CHECK, [("a", "a")] * 3, start=30)
    _labels(run, "ext", "rampart:v1", Label.SPOT_CHECK, [("IT60", "IT61")], start=40, field="fields.iban")
    # A label whose prediction is unknown measures nothing.
    _labels(run, "cls", "tickets:v1", Label.SPOT_CHECK, [("a", "")], start=50)
    return workflow


def test_spot_checks_and_escalations_are_measured_apart(ledger):
    rows = accuracy.node_accuracy(ledger.pk)
    assert [(r.node, r.model_ref) for r in rows] == [("cls", "tickets:v1"), ("cls", "tickets:v2")]
    v1 = rows[0]
    assert (v1.workflow_id, v1.workflow) == (ledger.pk, "Tickets")
    assert (v1.spot.n, v1.spot.correct, v1.spot.rate) == (10, 9, 0.9)
    low, high = accuracy.wilson(9, 10)
    assert (v1.spot.low, v1.spot.high) == (low, high) and 0.59 < low < 0.6 and 0.98 < high < 0.99
    assert (v1.escalated.n, v1.escalated.correct, v1.escalated.rate) == (4, 1, 0.25)
    assert rows[1].escalated.n == 0 and rows[1].escalated.rate is None and rows[1].spot.rate == 1.0
    data = v1.as_json()
    assert data["spot_checked"] == 10 and data["accuracy"] == 0.9 and data["interval"] == [low, high]
    assert data["escalations"] == 4 and data["escalation_accuracy"] == 0.25


def test_filters_by_model_and_time(ledger):
    assert [r.model_ref for r in accuracy.node_accuracy(model_name="tickets")] == ["tickets:v1", "tickets:v2"]
    assert accuracy.node_accuracy(model_name="ticket") == []
    assert accuracy.node_accuracy(ledger.pk + 1) == []
    later = timezone.now() + timedelta(minutes=5)
    assert accuracy.node_accuracy(ledger.pk, since=later) == []
    assert len(accuracy.node_accuracy(ledger.pk, until=later)) == 2


def test_wilson_interval():
    assert accuracy.wilson(0, 0) is None
    low, high = accuracy.wilson(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)
    assert accuracy.Rate(0, 0).as_json() == {"n": 0, "correct": 0, "rate": None, "low": None, "high": None}


def test_the_live_tables_count_the_recent_window_only(ledger, settings):
    """The review page and API read live accuracy over ACCURACY_WINDOW_DAYS, not every label ever made:
    a query that grows with the firm's whole history would slow every page view."""
    settings.ACCURACY_WINDOW_DAYS = 28
    Label.objects.filter(model_ref="tickets:v2").update(created_at=timezone.now() - timedelta(days=60))
    refs = [r.model_ref for r in accuracy.live_accuracy()]
    assert refs == ["tickets:v1"]
    assert [r.model_ref for r in accuracy.node_accuracy(ledger.pk)] == ["tickets:v1", "tickets:v2"]
