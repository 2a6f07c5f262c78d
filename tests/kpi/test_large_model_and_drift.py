"""What the KPI pages say about the large model and about drift, on ledgers shaped as the real
handlers write them: a cascade's large-model decision records its own cost in its output (and the
node's stats record the same calls), and the ticket-triage template asks a plain large-model node
before a person checks every answer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.builders import (
    edge,
    ledger_decision,
    ledger_item,
    ledger_review,
    ledger_run,
    ledger_stats,
    make_baseline,
    make_user,
    make_workflow,
    node,
    register_model,
)
from tests.kpi import ledger
from workflows.kpi import readers, rollup

pytestmark = pytest.mark.django_db


@pytest.fixture
def designer(db):
    return make_user("designer", "designer")


def test_a_cascade_call_whose_decision_records_its_cost_is_counted_once(designer):
    workflow = make_workflow(designer)
    run = ledger_run(workflow, designer)
    item = ledger_item(run, 1, received=ledger.TUESDAY, finished=ledger.TUESDAY + timedelta(minutes=1))
    usage = {"cost_eur": 0.01, "tokens_in": 80, "tokens_out": 20}
    ledger_decision(run, item, "cas", label="billing", confidence=0.9, port="decided", model_ref="local/smollm2",
                    output={"decided_by": "large", "small": {"label": "account", "confidence": 0.5}, "llm": usage},
                    created_at=ledger.TUESDAY)
    ledger_stats(run, "cas", items_in=1, cpu_seconds=0.5, extra={"cost_eur": 0.01, "tokens": 100, "llm_calls": 1})

    week = rollup.compute_week(workflow.pk, ledger.W13)

    assert week.paths.large == 1
    assert week.llm_eur.large == pytest.approx(0.01)
    assert week.llm_tokens.large == pytest.approx(100)
    assert week.cascade["cas"].llm_calls == 1
    assert week.cascade["cas"].llm_eur == pytest.approx(0.01)


def test_documents_the_large_model_answered_before_a_person_checked_them_are_counted(designer):
    # The ticket-triage shape: an unsure classification asks the large model, then a person checks it.
    workflow = make_workflow(designer)
    make_baseline(workflow, designer)
    run = ledger_run(workflow, designer)
    for seq in range(1, 4):
        done = ledger.TUESDAY + timedelta(seconds=40)
        item = ledger_item(run, seq, received=ledger.TUESDAY, finished=done)
        ledger_decision(run, item, "classify", label="billing", confidence=0.4, model_ref="minilm:v1",
                        created_at=ledger.TUESDAY)
        ledger_decision(run, item, "llm", model_ref="local-smollm2/smollm2", created_at=ledger.TUESDAY,
                        output={"suggested_label": "billing", "llm": {"cost_eur": 0.0, "tokens_in": 90,
                                                                      "tokens_out": 2}})
        ledger_review(run, item, node="classify", review_node="review", truth="billing", predicted="billing",
                      user=designer, decided_at=done)
    small_only = ledger_item(run, 4, received=ledger.TUESDAY, finished=ledger.TUESDAY + timedelta(seconds=20))
    ledger_decision(run, small_only, "classify", label="technical", confidence=0.9, model_ref="minilm:v1",
                    created_at=ledger.TUESDAY)

    week = rollup.compute_week(workflow.pk, ledger.W13)
    cost = readers.cost_per_document(week, readers.baseline_of(workflow))

    assert week.paths.to_json() == {"small": 1, "large": 0, "human": 3}  # a person settled them
    assert week.large_used == 3
    assert cost["large"]["answered"] == 3
    assert cost["human"]["large_model_eur"] == 0.0


def test_the_large_model_count_survives_storing_and_merging(designer):
    workflow = make_workflow(designer)
    ledger.build(workflow, designer)
    week = rollup.compute_week(workflow.pk, ledger.W13)
    # Documents 3 and 4 were decided by the large model; 5, 6 and 7 asked it before a person decided.
    assert week.large_used == 5
    stored = type(week).from_json(week.to_json())
    assert stored.large_used == 5
    assert (stored + stored).large_used == 10
    assert type(week).from_json({}).large_used == 0


def test_every_drift_sentence_names_its_model(designer):
    register_model("rampart", kind="extractor")
    graph = {"nodes": [node("src", "source.upload"), node("extract", "extract", model="rampart@production"),
                       node("out", "sink.table")],
             "edges": [edge("src", "extract"), edge("extract", "out")]}
    workflow = make_workflow(designer, graph, name="Contracts")
    run = ledger_run(workflow, designer)
    item = ledger_item(run, 1, received=ledger.TUESDAY, finished=ledger.TUESDAY + timedelta(seconds=3))
    ledger_decision(run, item, "extract", model_ref="rampart:v1", output={"fields": {"iban": "IT60X…"}},
                    created_at=ledger.TUESDAY)

    alerts = readers.drift_alerts(workflow)

    assert [a["node"] for a in alerts] == ["extract"]
    message = alerts[0]["message"]
    assert "rampart:v1" in message, message
    assert "of  at" not in message


def test_the_dashboard_and_pack_say_how_many_documents_the_large_model_answered(designer):
    from django.test import Client

    workflow = make_workflow(designer)
    make_baseline(workflow, designer)
    ledger.build(workflow, designer)
    client = Client()
    client.force_login(designer)
    page = client.get(f"/workflows/{workflow.pk}/kpis/?week=2025-W13").content.decode()
    assert "The large model answered 5 documents" in page
    pack = client.get(f"/workflows/{workflow.pk}/kpis/packs/2025-W13/").content.decode()
    assert "Answered by the large model (any path)</th><td>5</td>" in pack
    assert "0.000000" not in page + pack
