"""The threshold what-if against a brute-force recount over the raw ledger rows."""

from __future__ import annotations

import random

import pytest

from tests.builders import ledger_document, ledger_run, ledger_stats, make_baseline, make_user, make_workflow
from tests.kpi import ledger
from workflows.kpi import readers as kpis
from workflows.kpi import rollup

pytestmark = pytest.mark.django_db
approx = pytest.approx


def brute_force(docs: list[dict], threshold: float, *, review_eur: float, per_call: float,
                compute_per_doc: float) -> dict:
    """Recount from the documents one by one, without bins."""
    through = [d for d in docs if d["path"] != "dead"]
    total = len(through)
    small = [d for d in through if d["conf"] >= threshold - 1e-12]
    escalated = total - len(small)
    large_now = sum(d["path"] == "large" for d in through)
    human_now = sum(d["path"] == "human" for d in through)
    keep = large_now / (large_now + human_now) if large_now + human_now else 0.0
    reviewed = [d for d in small if d["truth"] is not None]
    right = [d for d in reviewed if d["small_label"] == d["truth"]]
    human = escalated * (1 - keep)
    return {"small": len(small), "automation_rate": (len(small) + escalated * keep) / total,
            "reviewed": len(reviewed), "right": len(right),
            "eur": compute_per_doc + escalated * per_call / total + human * review_eur / total}


def check(facts, baseline, docs, per_call, compute_per_doc):
    table = kpis.what_if_table(facts, baseline, "cas")
    assert len(table) == 101
    review_eur = baseline["review_minutes"] / 60 * baseline["hourly_cost"]
    for row in table:
        t = row["threshold"]
        expected = brute_force(docs, t, review_eur=review_eur, per_call=per_call, compute_per_doc=compute_per_doc)
        assert row["small"] == expected["small"], t
        assert row["automation_rate"] == approx(expected["automation_rate"]), t
        assert row["small_accuracy"]["n"] == expected["reviewed"], t
        assert row["small_accuracy"]["correct"] == expected["right"], t
        assert row["eur_per_document"] == approx(expected["eur"]), t


def test_what_if_matches_a_recount_on_the_fixed_ledger():
    owner = make_user("des", "designer")
    wf = make_workflow(owner)
    ledger.build(wf, owner)
    baseline = make_baseline(wf).as_dict()
    rollup.rebuild(wf.pk)
    facts = rollup.load_weeks([wf.pk], [ledger.W13])[ledger.W13]
    docs = [{"path": p, "conf": c, "small_label": s, "truth": t} for p, c, s, _, t, _, _ in ledger.DOCUMENTS.values()]
    docs.append({"path": "small", "conf": 0.99, "small_label": "billing", "truth": None})
    check(facts, baseline, docs, per_call=0.01, compute_per_doc=0.5 / 3600 * 0.10)
    # By hand at 0.50: six stop at the small model, two escalate, 2/5 of escalations stay with the large model.
    at_half = kpis.what_if(facts, baseline, "cas", 0.5)
    assert at_half["small"] == 6 and at_half["automation_rate"] == approx((6 + 2 * 0.4) / 8)
    assert at_half["small_accuracy"]["n"] == 1 and at_half["small_accuracy"]["rate"] == 1.0


def test_what_if_matches_a_recount_on_a_random_ledger():
    owner = make_user("des", "designer")
    wf = make_workflow(owner)
    baseline = make_baseline(wf).as_dict()
    run = ledger_run(wf, owner)
    rng = random.Random(8)
    docs = []
    labels = ["billing", "technical", "account"]
    for seq in range(300):
        conf = round(rng.random(), rng.choice([2, 3, 6]))
        path = "small" if conf >= 0.8 else rng.choice(["large", "human", "human"])
        truth = rng.choice(labels) if (path == "human" or rng.random() < 0.1) else None
        small_label = rng.choice(labels)
        ledger_document(run, seq, received=ledger.TUESDAY, hours=rng.random() * 20, path=path, small_conf=conf,
                        small_label=small_label, truth=truth, user=owner)
        docs.append({"path": path, "conf": conf, "small_label": small_label, "truth": truth})
    calls = sum(d["path"] != "small" for d in docs)
    ledger_stats(run, "cas", items_in=300, cpu_seconds=30.0,
                 extra={"cost_eur": calls * 0.002, "tokens": calls * 80, "llm_calls": calls})
    rollup.rebuild(wf.pk)
    facts = rollup.load_weeks([wf.pk], [ledger.W13])[ledger.W13]
    check(facts, baseline, docs, per_call=0.002, compute_per_doc=0.1 / 3600 * 0.10)
