"""Every KPI formula on the fixed ledger (tests/kpi/ledger.py) against numbers computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.builders import make_baseline, make_user, make_workflow
from tests.kpi import ledger
from workflows.kpi import isoweeks, rollup
from workflows.kpi import readers as kpis
from workflows.kpi.facts import merge_all

pytestmark = pytest.mark.django_db
approx = pytest.approx


@pytest.fixture
def workflow(db):
    owner = make_user("des", "designer")
    wf = make_workflow(owner)
    ledger.build(wf, owner)
    return wf


@pytest.fixture
def baseline(workflow):
    return make_baseline(workflow).as_dict()


@pytest.fixture
def facts(workflow):
    rollup.rebuild(workflow.pk)
    return rollup.load_weeks([workflow.pk], [ledger.W13])[ledger.W13]


def test_documents_and_paths(facts):
    # 1, 2, 9 small only; 3, 4 large model; 5, 6, 7 a person; 8 dead; 10 belongs to the next week.
    assert kpis.documents(facts) == {"completed": 8, "dead": 1, "paths": {"small": 3, "large": 2, "human": 3},
                                     "large_answered": 5}


def test_cycle_time_median_p95_and_sla(facts, baseline):
    # Sorted hours: 0.5 1 1.5 2 3 5 10 30 → median (2+3)/2, p95 = the ⌈0.95·8⌉ = 8th value.
    ct = kpis.cycle_time(facts, baseline)
    assert ct["n"] == 8 and ct["median_h"] == approx(2.5) and ct["p95_h"] == approx(30.0)
    assert ct["within_sla"] == approx(7 / 8) and ct["p95_within_sla"] is False
    ct = kpis.cycle_time(facts, {**baseline, "manual_cycle_hours": 10.0})
    assert ct["vs_manual"] == approx(0.25)


def test_automation_rate(facts):
    assert kpis.automation_rate(facts) == {"automated": 5, "completed": 8, "waiting": 0, "excluded": 0,
                                           "rate": approx(5 / 8)}


def test_accuracy_per_node_and_end_to_end_with_wilson(facts, baseline):
    acc = kpis.accuracy(facts, baseline)
    # Escalations reviewed: 5 right (technical), 6 wrong (billing → account), 7 right. No spot check: the
    # accuracy of what ran alone is not measured, and the escalations do not stand in for it.
    assert acc["nodes"] == [] and acc["end_to_end"]["n"] == 0 and acc["end_to_end"]["rate"] is None
    (node,) = acc["escalations"]
    assert node["node"] == "cas" and node["n"] == 3 and node["correct"] == 2 and node["rate"] == approx(2 / 3)
    assert (node["low"], node["high"]) == (approx(0.2077, abs=1e-4), approx(0.9385, abs=1e-4))
    assert acc["escalation_end_to_end"]["n"] == 3 and acc["escalation_end_to_end"]["rate"] == approx(2 / 3)
    assert acc["manual"] == approx(0.95)


@pytest.mark.parametrize(("k", "n", "low", "high"), [
    (2, 3, 0.2077, 0.9385),
    (50, 100, 0.4038, 0.5962),
    (12, 12, 0.7575, 1.0),
    (0, 10, 0.0, 0.2775),
])
def test_wilson_interval_and_its_width(k, n, low, high):
    lo, hi = kpis.wilson(k, n)
    assert lo == approx(low, abs=1e-4) and hi == approx(high, abs=1e-4)
    assert hi - lo == approx(high - low, abs=2e-4)


def test_wilson_narrows_with_sample_size():
    widths = [hi - lo for lo, hi in (kpis.wilson(n * 8 // 10, n) for n in (10, 100, 1000))]
    assert widths[0] > widths[1] > widths[2]
    assert widths[1] == approx(0.1550, abs=1e-3)
    assert kpis.wilson(0, 0) is None


def test_savings(facts, baseline):
    # manual 8 × 6/60 × 30 = 24; reviews 3 × 2/60 × 30 = 3; CPU 4.7 s (nine items × 0.5 + two answers × 0.1)
    # at 0.10 €/h; large model 0.004 + 0.006 answers + five cascade calls × 0.01 = 0.06.
    s = kpis.savings(facts, baseline)
    compute = 4.7 / 3600 * 0.10
    assert s["manual_eur"] == approx(24.0) and s["review_eur"] == approx(3.0)
    assert s["compute_eur"] == approx(compute) and s["large_model_eur"] == approx(0.06)
    assert s["savings_eur"] == approx(24.0 - 3.0 - compute - 0.06)
    assert kpis.savings(facts, None) is None


def test_large_model_priced_by_tokens_when_the_baseline_says_so(facts, baseline):
    # Tokens: answers 300 + 400, cascade calls 5 × 100 → 1,200 tokens at 0.02 €/1k.
    s = kpis.savings(facts, {**baseline, "large_model_eur_per_1k_tokens": 0.02})
    assert s["large_model_eur"] == approx(0.024)


def test_cost_per_document_by_path(facts, baseline):
    cost = kpis.cost_per_document(facts, baseline)
    rate = 0.10 / 3600
    assert cost["small"]["eur_per_document"] == approx(1.5 * rate / 3)
    assert cost["large"]["eur_per_document"] == approx((1.2 * rate + 0.03) / 2)
    assert cost["human"]["eur_per_document"] == approx((1.5 * rate + 0.03 + 3.0) / 3)
    assert cost["manual"]["eur_per_document"] == approx(3.0)


def test_cpu_energy_and_co2_per_thousand_documents(facts, baseline):
    f = kpis.footprint(facts, baseline)
    wh = 4.7 * 20 / 3600
    assert f["documents"] == 9 and f["cpu_seconds"] == approx(4.7)
    assert f["cpu_seconds_per_1k"] == approx(4.7 * 1000 / 9)
    assert f["wh_per_1k"] == approx(wh * 1000 / 9)
    assert f["co2_g_per_1k"] == approx(wh / 1000 * 300 * 1000 / 9)


def test_time_to_first_answer(facts):
    fa = kpis.first_answer(facts)
    assert fa["n"] == 2 and fa["median_s"] == approx(30 * 60) and fa["p95_s"] == approx(40 * 60)


def test_cascade_funnel(facts):
    (funnel,) = kpis.cascade_funnel(facts)
    assert (funnel["node"], funnel["small"], funnel["large"], funnel["human"]) == ("cas", 3, 2, 3)


def test_week_boundaries_are_rome_weeks(workflow):
    # Document 9 finished on Sunday 30 March 23:30 in Rome (21:30 UTC): week 13.
    # Document 10 finished on Monday 31 March 00:30 in Rome (Sunday 22:30 UTC): week 14, not 13.
    rollup.rebuild(workflow.pk)
    weeks = rollup.load_weeks([workflow.pk], [ledger.W12, ledger.W13, ledger.W14])
    assert weeks[ledger.W12] is None
    assert weeks[ledger.W13]["docs"] == 8
    assert weeks[ledger.W14]["docs"] == 1
    start, end = isoweeks.week_bounds(ledger.W13)
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=167)  # summer time began that Sunday
    late_sunday = datetime(2025, 3, 30, 21, 30, tzinfo=ledger.ROME).astimezone(ledger.ROME)
    assert isoweeks.week_start_of(late_sunday) == ledger.W13
    assert isoweeks.week_label(ledger.W13) == "2025-W13" and isoweeks.parse_week("2025-W13") == ledger.W13
    assert isoweeks.parse_week("nonsense") is None


def test_change_vs_last_week(workflow, baseline):
    data = kpis.dashboard([workflow], ledger.W14)
    cards = {c["key"]: c for c in data["cards"]}
    assert cards["documents"]["value"] == 1 and cards["documents"]["previous"] == 8
    assert cards["documents"]["change"] == -7
    assert cards["automation"]["value"] == approx(1.0) and cards["automation"]["change"] == approx(1.0 - 5 / 8)
    assert data["trend"]["documents"][-2:] == [8, 1]


def test_merged_weeks_use_histogram_quantiles(workflow):
    rollup.rebuild(workflow.pk)
    weeks = rollup.load_weeks([workflow.pk], [ledger.W13, ledger.W14])
    merged = merge_all([weeks[ledger.W13], weeks[ledger.W14]])
    ct = kpis.cycle_time(merged, None)
    # Nine values: 0.5 1 1 1.5 2 3 5 10 30 → median 2 h, within the 2 % bucket width.
    assert ct["exact"] is False and ct["median_h"] == approx(2.0, rel=0.02) and ct["n"] == 9


def test_dashboard_picks_up_documents_finished_after_the_last_rollup(workflow):
    from django.utils import timezone

    from tests.builders import ledger_document, ledger_run

    assert kpis.dashboard([workflow], ledger.W13)["summary"]["documents"]["completed"] == 8
    this_week = isoweeks.current_week()
    assert kpis.dashboard([workflow], this_week)["summary"]["documents"]["completed"] == 0
    run = ledger_run(workflow)
    ledger_document(run, 1, received=timezone.now() - timedelta(hours=2), hours=1, path="human", small_conf=0.3,
                    truth="billing")
    data = kpis.dashboard([workflow], this_week)
    assert data["summary"]["documents"]["completed"] == 1 and data["summary"]["automation"]["rate"] == 0.0
    assert data["summary"]["accuracy"]["escalation_end_to_end"]["n"] == 1
