"""The evidence pack on a fixed labelled set, numbers computed by hand; shadow; runs pin at start.

The two real keyword classifiers (conftest): production gets 'fattura' wrong, the candidate 'login'.
On the 8 documents of FIXED_SET:
  production predicts billing, technical, account, account, technical ×3, technical → 5/8 right
  candidate  predicts billing, technical, technical, account, billing ×3, technical → 7/8 right
Candidate per class (truth billing 4, technical 2, account 2):
  billing P 4/4 R 4/4 F1 1; technical P 2/3 R 1 F1 0.8; account P 1 R 1/2 F1 2/3 → macro 0.8222
Production: billing P 1 R 1/4 F1 0.4; technical P 2/5 R 1 F1 0.5714; account F1 1 → macro 0.6571
English segment: production 4/4, candidate 3/4 — better on average, worse for English.
"""

from __future__ import annotations

import pytest

from tests.builders import edge, make_workflow, node
from tests.engine.helpers import drain
from workflows.engine import launch
from workflows.governance import promotion
from workflows.governance.evaluation import classification_metrics
from workflows.governance.tasks import compute_evidence
from workflows.models import Decision, Item, PromotionRequest

pytestmark = pytest.mark.django_db


def test_metrics_by_hand():
    m = classification_metrics(["a", "a", "b", "c"], ["a", "b", "b", "b"], ["a", "b", "c"])
    # a: P 1 R .5 F1 .6667; b: P 1/3 R 1 F1 .5; c: support 1, never predicted → F1 0
    assert m["accuracy"] == 0.5 and m["macro_f1"] == round((2 / 3 + 0.5 + 0) / 3, 4)
    assert m["per_class"]["b"] == {"precision": 0.3333, "recall": 1.0, "f1": 0.5, "support": 1}
    assert m["confusion"]["matrix"] == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def _ready_request(personas, version, fixed_set, alias="production"):
    request = promotion.request_promotion(version, alias, user=personas["designer"], reason="Italian invoices",
                                          labelled_set=fixed_set)
    assert compute_evidence.call(request.pk) == PromotionRequest.READY
    request.refresh_from_db()
    return request


def test_evidence_pack_numbers_on_the_fixed_set(personas, keyword_models, fixed_set):
    _v1, v2 = keyword_models
    evaluation = _ready_request(personas, v2, fixed_set).evidence["evaluation"]
    cand, prod = evaluation["candidate"], evaluation["production"]
    assert (cand["accuracy"], prod["accuracy"]) == (0.875, 0.625)
    assert (cand["macro_f1"], prod["macro_f1"]) == (0.8222, 0.6571)
    assert evaluation["delta"] == {"accuracy": 0.25, "macro_f1": 0.1651}
    assert cand["per_class"]["technical"] == {"precision": 0.6667, "recall": 1.0, "f1": 0.8, "support": 2}
    assert cand["per_class"]["account"] == {"precision": 1.0, "recall": 0.5, "f1": 0.6667, "support": 2}
    assert cand["confusion"] == {"labels": ["account", "billing", "technical"],
                                 "matrix": [[1, 0, 1], [0, 4, 0], [0, 0, 2]]}
    assert evaluation["changed_count"] == 4
    assert {(c["text"], c["candidate"], c["production"]) for c in evaluation["changed"]} == {
        ("login", "technical", "account"), ("fattura", "billing", "technical")}
    assert (cand["by_segment"]["language"]["it"]["accuracy"] == 1.0
            and prod["by_segment"]["language"]["it"]["accuracy"] == 0.25)
    # Better on average, worse for English: flagged.
    assert evaluation["segments_worse"] == [{"segment": "language", "value": "en", "n": 4, "candidate": 0.75,
                                             "production": 1.0, "delta": -0.25, "better_on_average": True}]


def test_evidence_page_shows_the_numbers_and_the_segment_flag(personas, keyword_models, fixed_set, client):
    request = _ready_request(personas, keyword_models[1], fixed_set)
    client.force_login(personas["validator"])
    html = client.get(f"/promotions/{request.pk}/").content.decode()
    assert "87.5 %" in html and "62.5 %" in html and "+25.0 pts" in html
    assert "Better on average but worse" in html and "<b>en</b>" in html
    assert 'id="approve"' in html
    # The requester and the trainer see no decision buttons: they may not decide.
    for who in ("designer", "trainer", "operator"):
        client.force_login(personas[who])
        assert 'id="approve"' not in client.get(f"/promotions/{request.pk}/").content.decode()


def shadow_graph():
    return {
        "nodes": [node("src", "source.upload", fields=["text"]),
                  node("cls", "classify", model="tickets@production", shadow=True),
                  node("route", "route", branches=[{"name": "billing", "labels": ["billing"]}]),
                  node("out", "sink.table")],
        "edges": [edge("src", "cls"), edge("cls", "route"), edge("route", "out", source_port="billing"),
                  edge("route", "out", source_port="else")],
    }


def test_shadow_decisions_are_recorded_never_routed_and_feed_the_evidence(personas, keyword_models, fixed_set):
    from workflows.models.registry import set_initial_alias

    _v1, v2 = keyword_models
    set_initial_alias(v2, "shadow")
    workflow = make_workflow(personas["designer"], shadow_graph(), name="Shadowed")
    run = launch.create_run(workflow, user=personas["operator"],
                            items=[{"text": w} for w in ("fattura", "invoice", "login", "crash")])
    drain()
    by_text = {Item.objects.get(pk=d.item_id).payload["text"]: d for d in Decision.objects.filter(run=run, node="cls")}
    fattura = by_text["fattura"]
    assert fattura.label == "technical" and fattura.model_ref == "tickets:v1"
    assert fattura.output["shadow"]["label"] == "billing" and fattura.output["shadow"]["model_ref"] == "tickets:v2"
    # Routed by production's answer: the shadow said billing, the item went to 'else'.
    assert Decision.objects.get(run=run, node="route", item=fattura.item).port == "else"
    assert Decision.objects.get(run=run, node="route", item=by_text["invoice"].item).port == "billing"
    shadow = _ready_request(personas, v2, fixed_set).evidence["shadow"]
    assert shadow["n"] == 4 and shadow["agreement"] == 0.5  # fattura and login differ
    assert shadow["thresholds"] == [0.8] and shadow["escalation_difference"] == 0.0  # both keyword models are sure
    assert {d["shadow"] for d in shadow["disagreements"]} == {"billing", "technical"}


def test_workflows_pick_the_new_production_at_their_next_run_running_runs_keep_theirs(personas, keyword_models,
                                                                                      fixed_set):
    _v1, v2 = keyword_models
    workflow = make_workflow(personas["designer"], shadow_graph(), name="Pinned")
    first = launch.create_run(workflow, user=personas["operator"], items=[{"text": "fattura"}])
    promotion.approve(_ready_request(personas, v2, fixed_set), user=personas["validator"], reason="better on Italian")
    second = launch.create_run(workflow, user=personas["operator"], items=[{"text": "fattura"}])
    assert first.resolved_models["tickets@production"]["ref"] == "tickets:v1"
    assert second.resolved_models["tickets@production"]["ref"] == "tickets:v2"
    drain()
    assert Decision.objects.get(run=first, node="cls").label == "technical"  # v1, pinned at its start
    second_decision = Decision.objects.get(run=second, node="cls")
    assert second_decision.model_ref == "tickets:v2" and second_decision.label == "billing"


def test_rollback_restores_the_previous_version_for_the_next_run(personas, keyword_models, fixed_set):
    from workflows.models.registry import Alias

    v1, v2 = keyword_models
    promotion.approve(_ready_request(personas, v2, fixed_set), user=personas["validator"])
    rollback = promotion.request_rollback("tickets", "production", user=personas["trainer"], reason="worse on English")
    compute_evidence.call(rollback.pk)
    rollback.refresh_from_db()
    assert rollback.version == v1 and rollback.evidence["evaluation"]["candidate"]["accuracy"] == 0.625
    promotion.approve(rollback, user=personas["validator2"])
    assert Alias.objects.get(model__name="tickets", name="production").version == v1
    workflow = make_workflow(personas["designer"], shadow_graph(), name="After rollback")
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": "x"}])
    assert run.resolved_models["tickets@production"]["ref"] == "tickets:v1"


def test_four_eyes_through_the_page_and_the_api(personas, keyword_models, fixed_set, client, api):
    request = _ready_request(personas, keyword_models[1], fixed_set)
    for who in ("designer", "trainer", "operator"):  # requester, trainer of the version, not a validator
        client.force_login(personas[who])
        assert client.post(f"/promotions/{request.pk}/decide/", {"action": "approve"}).status_code == 403
        assert api(personas[who]).post(f"/api/promotions/{request.pk}/decide/", {"action": "approve"},
                                       format="json").status_code == 403
    request.refresh_from_db()
    assert request.status == "ready"
    response = api(personas["validator"]).post(f"/api/promotions/{request.pk}/decide/",
                                               {"action": "approve", "reason": "ok"}, format="json")
    assert (response.status_code == 200 and response.data["status"] == "approved"
            and response.data["previous_version"] == "tickets:v1")


def test_replay_shows_each_document_with_both_labels_a_link_and_segments(personas, keyword_models, fixed_set, client):
    _v1, v2 = keyword_models
    workflow = make_workflow(personas["designer"], shadow_graph(), name="Replayed")
    docs = [("fattura", "it", "email"), ("errore", "it", "phone"), ("login", "en", "email"), ("invoice", "en", "phone")]
    run = launch.create_run(workflow, user=personas["operator"],
                            items=[{"text": f"{t} " + "x" * 300, "language": lang, "channel": ch}
                                   for t, lang, ch in docs])
    drain()
    replay = _ready_request(personas, v2, fixed_set).evidence["replay"]
    assert replay["n"] == 4 and replay["agreement"] == 0.5
    rows = {r["text"].split()[0]: r for r in replay["rows"]}
    fattura = rows["fattura"]
    assert (fattura["production"], fattura["candidate"], fattura["agree"]) == ("technical", "billing", False)
    assert rows["errore"]["agree"] is True and fattura["run"] == run.pk
    assert len(fattura["text"]) <= 161 and fattura["text"].endswith("…")
    assert replay["by_segment"]["channel"] == {"email": {"n": 2, "agreement": 0.0}, "phone": {"n": 2, "agreement": 1.0}}
    assert replay["by_segment"]["language"]["it"] == {"n": 2, "agreement": 0.5}
    request = PromotionRequest.objects.get()
    client.force_login(personas["validator"])
    page = client.get(f"/promotions/{request.pk}/").content.decode()
    assert f'href="/runs/{run.pk}/items/{fattura["item"]}/"' in page and "fattura xxx" in page
    assert 'id="replay-by-segment"' in page


@pytest.mark.slow
def test_a_first_classifier_for_a_zero_shot_step_is_compared_with_the_zero_shot_decision(personas, artifacts,
                                                                                         artifact_dir, settings,
                                                                                         client):
    from tests.governance.conftest import keyword_classifier
    from tests.governance.test_promotion_safeguards import TICKET_ITEMS, labelled
    from workflows.engine.nodes import loader
    from workflows.governance.classifiers import classifier_for_node
    from workflows.management.commands.setup_models import register_metas
    from workflows.models.registry import register_version

    settings.ARTIFACTS_DIR = artifact_dir
    loader.clear()
    register_metas(artifacts, log=lambda line: None)
    descriptions = {"billing": "an invoice, a payment or a refund", "technical": "a crash or an error of the app",
                    "account": "a login or a password"}
    graph = {"nodes": [node("src", "source.upload", fields=["text"]),
                       node("cls", "classify", model="minilm@production", method="zero_shot", labels=descriptions),
                       node("out", "sink.table")],
             "edges": [edge("src", "cls"), edge("cls", "out")]}
    workflow = make_workflow(personas["designer"], graph, name="Zero-shot triage")
    model = classifier_for_node(workflow, "cls", user=personas["trainer"])
    meta = keyword_classifier({"invoice": "billing", "crash": "technical", "password": "account",
                               "errore": "technical"}, "first")
    meta["files"] = {}
    first, _ = register_version(model_name=model.name, kind="classifier", meta=meta, source="trained",
                                runtime="tfidf", author=personas["trainer"], trained_by=personas["trainer"])
    try:
        request = _ready_request(personas, first, labelled("tickets-eval", TICKET_ITEMS, model))
    finally:
        loader.clear()
    baseline = request.evidence["baseline"]
    assert baseline["kind"] == "zero_shot" and baseline["ref"].startswith("minilm:v")
    evaluation = request.evidence["evaluation"]
    assert evaluation["candidate"]["accuracy"] == 1.0 and evaluation["production"]["n"] == 4
    assert evaluation["delta"]["accuracy"] == round(1.0 - evaluation["production"]["accuracy"], 4)
    client.force_login(personas["validator"])
    page = client.get(f"/promotions/{request.pk}/").content.decode()
    assert "zero-shot" in page.lower() and baseline["ref"] in page


def test_a_first_version_of_any_other_classifier_is_compared_with_nothing_and_says_so(personas, keyword_models,
                                                                                    client):
    from tests.governance.conftest import keyword_classifier
    from tests.governance.test_promotion_safeguards import TICKET_ITEMS, labelled
    from workflows.models.registry import register_version

    meta = keyword_classifier({"invoice": "billing", "crash": "technical", "password": "account"}, "fresh")
    fresh, _ = register_version(model_name="fresh", kind="classifier", meta=meta, source="trained", runtime="tfidf",
                                author=personas["trainer"], trained_by=personas["trainer"])
    request = _ready_request(personas, fresh, labelled("fresh-eval", TICKET_ITEMS))
    assert request.evidence["baseline"]["kind"] == "none" and request.evidence["evaluation"]["production"] is None
    client.force_login(personas["validator"])
    page = client.get(f"/promotions/{request.pk}/").content.decode()
    assert 'id="no-baseline"' in page
