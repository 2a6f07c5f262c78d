"""Promotions that cannot mislead, and four eyes without holes.

The evaluation set must carry the candidate's labels and not overlap its training data (by content
hash); a label-set change against production is a blocking warning the validator must acknowledge;
Approve waits for meaningful evidence; the trainer of any ancestor version may not approve; one open
request per alias even when two arrive at once.
"""

from __future__ import annotations

import re
import threading
import time

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from tests.builders import edge, make_workflow, node, register_model
from tests.governance.conftest import CANDIDATE_WORDS, keyword_classifier
from workflows.governance import promotion
from workflows.governance.labelsets import content_hash, create_labelled_set
from workflows.governance.tasks import compute_evidence
from workflows.models.registry import Alias, LabelledSet, ModelVersion, PromotionRequest, register_version

pytestmark = pytest.mark.django_db

SENTIMENT = {"great": "positive", "awful": "negative", "okay": "neutral", "fine": "neutral"}
TICKET_ITEMS = [("invoice", "billing"), ("crash", "technical"), ("password", "account"), ("errore", "technical")]


def trained(words: dict[str, str], name: str, *, parent, user, hashes: list[str] | None = None) -> ModelVersion:
    meta = keyword_classifier(words, name)
    if hashes is not None:
        meta["params"]["training_hashes"] = sorted(hashes)
    version, created = register_version(model_name="tickets", kind="classifier", meta=meta, source="trained",
                                        runtime="tfidf", parent=parent, author=user, trained_by=user)
    assert created
    return version


def labelled(name: str, pairs, model=None) -> LabelledSet:
    return create_labelled_set(name=name, items=[{"text": t, "label": label} for t, label in pairs], user=None,
                               model=model)


def sentiment_set(name: str = "moods", model=None) -> LabelledSet:
    return labelled(name, [("great", "positive"), ("awful", "negative"), ("okay", "neutral"), ("fine", "neutral")],
                    model)


def evidence_for(request: PromotionRequest) -> PromotionRequest:
    assert compute_evidence.call(request.pk) == PromotionRequest.READY, request.evidence_error
    request.refresh_from_db()
    return request


# --- the evaluation set --------------------------------------------------------------------------


def test_a_set_with_other_labels_is_refused_naming_what_is_missing_and_extra(personas, keyword_models, fixed_set):
    v1, _ = keyword_models
    mood = trained(SENTIMENT, "mood", parent=v1, user=personas["trainer"])
    with pytest.raises(ValidationError) as refused:
        promotion.request_promotion(mood, "production", user=personas["designer"], reason="x", labelled_set=fixed_set)
    said = " ".join(refused.value.messages)
    assert "missing negative, neutral, positive" in said and "extra account, billing, technical" in said
    assert not PromotionRequest.objects.exists()


def test_a_set_overlapping_the_training_data_is_refused_with_the_count(personas, keyword_models, fixed_set):
    v1, _ = keyword_models
    words = {**CANDIDATE_WORDS, "refund": "billing"}
    v3 = trained(words, "v3", parent=v1, user=personas["trainer"],
                 hashes=[content_hash("Fattura "), content_hash("LOGIN"), content_hash("never in the set")])
    with pytest.raises(ValidationError, match=r"shares 4 documents"):  # 'fattura' ×3 and 'login'
        promotion.request_promotion(v3, "production", user=personas["designer"], reason="x", labelled_set=fixed_set)


def test_an_int8_copy_is_judged_against_the_data_its_parent_was_trained_on(personas, keyword_models, fixed_set):
    v1, _ = keyword_models
    v3 = trained({**CANDIDATE_WORDS, "refund": "billing"}, "v3", parent=v1, user=personas["trainer"],
                 hashes=[content_hash("crash")])
    meta = keyword_classifier({**CANDIDATE_WORDS, "refund": "billing", "rimborso": "billing"}, "v4")
    v4, _ = register_version(model_name="tickets", kind="classifier", meta=meta, source="quantised", runtime="tfidf",
                             parent=v3, author=personas["admin"], trained_by=personas["admin"])
    with pytest.raises(ValidationError, match=r"shares 1 document"):
        promotion.request_promotion(v4, "production", user=personas["designer"], reason="x", labelled_set=fixed_set)


def test_the_default_set_is_the_newest_that_fits_and_none_fitting_is_refused(personas, keyword_models):
    v1, _ = keyword_models
    model = v1.model
    v3 = trained({**CANDIDATE_WORDS, "refund": "billing"}, "v3", parent=v1, user=personas["trainer"],
                 hashes=[content_hash("invoice")])
    with pytest.raises(ValidationError, match="Upload one"):
        promotion.request_promotion(v3, "production", user=personas["designer"], reason="x")
    good = labelled("good", TICKET_ITEMS[1:] + [("fattura", "billing")], model)
    labelled("overlapping", TICKET_ITEMS, model)  # newer, but holds 'invoice', which v3 was trained on
    sentiment_set("newest-wrong-labels", model)
    request = promotion.request_promotion(v3, "production", user=personas["designer"], reason="x")
    assert request.labelled_set == good


def test_a_set_changed_after_the_request_fails_the_evidence_with_the_reason(personas, keyword_models, fixed_set):
    _, v2 = keyword_models
    request = promotion.request_promotion(v2, "production", user=personas["designer"], reason="x",
                                          labelled_set=fixed_set)
    fixed_set.items = [*fixed_set.items, {"text": "great", "label": "positive"}]
    fixed_set.labels = [*fixed_set.labels, "positive"]
    fixed_set.save()
    assert compute_evidence.call(request.pk) == PromotionRequest.EVIDENCE_FAILED
    request.refresh_from_db()
    assert "extra positive" in request.evidence_error and "ValidationError" not in request.evidence_error


def test_the_evidence_records_that_the_labels_match(personas, keyword_models, fixed_set):
    _, v2 = keyword_models
    request = evidence_for(promotion.request_promotion(v2, "production", user=personas["designer"], reason="x",
                                                       labelled_set=fixed_set))
    evaluation = request.evidence["evaluation"]
    assert evaluation["labels_match"] is True and evaluation["labels"] == ["account", "billing", "technical"]
    assert request.evidence["baseline"]["kind"] == "production" and request.evidence["baseline"]["ref"] == "tickets:v1"


# --- a label-set change --------------------------------------------------------------------------


def on_tickets_graph():
    return {"nodes": [node("src", "source.upload", fields=["text"]),
                      node("cls", "classify", model="tickets@production"), node("out", "sink.table")],
            "edges": [edge("src", "cls"), edge("cls", "out")]}


def test_a_label_change_is_a_blocking_warning_listing_workflows_and_needs_acknowledgement(personas, keyword_models,
                                                                                        client, api):
    v1, _ = keyword_models
    make_workflow(personas["designer"], on_tickets_graph(), name="Ticket triage")
    make_workflow(personas["designer"], {"nodes": [node("src", "source.upload", fields=["text"]),
                                                   node("out", "sink.table")], "edges": [edge("src", "out")]},
                  name="Unrelated")
    mood = trained(SENTIMENT, "mood", parent=v1, user=personas["trainer"])
    request = evidence_for(promotion.request_promotion(mood, "production", user=personas["designer"], reason="x",
                                                       labelled_set=sentiment_set()))
    change = promotion.label_change(request)
    assert change["added"] == ["negative", "neutral", "positive"] and change["removed"] == [
        "account", "billing", "technical"]
    assert [w["name"] for w in change["workflows"]] == ["Ticket triage"]
    client.force_login(personas["validator"])
    page = client.get(f"/promotions/{request.pk}/").content.decode()
    assert 'id="label-change"' in page and "Ticket triage" in page and 'name="acknowledge_label_change"' in page
    with pytest.raises(ValidationError, match="label"):
        promotion.approve(request, user=personas["validator"])
    answer = api(personas["validator"]).post(f"/api/promotions/{request.pk}/decide/", {"action": "approve"},
                                             format="json")
    assert answer.status_code == 409 and "acknowledge" in answer.data["detail"]
    client.post(f"/promotions/{request.pk}/decide/", {"action": "approve", "reason": "sentiment is the plan"})
    assert Alias.objects.get(model__name="tickets", name="production").version == v1
    # The refusal keeps what the validator typed; the browser itself asks for the tick before Approve.
    page = client.get(f"/promotions/{request.pk}/").content.decode()
    assert 'value="sentiment is the plan"' in page and 'id="acknowledge-label-change" required' in page
    client.post(f"/promotions/{request.pk}/decide/", {"action": "approve", "reason": "sentiment is the plan",
                                                      "acknowledge_label_change": "on"})
    request.refresh_from_db()
    assert request.status == "approved" and request.label_change_acknowledged
    assert Alias.objects.get(model__name="tickets", name="production").version == mood


def test_the_api_acknowledges_with_a_flag(personas, keyword_models, api):
    v1, _ = keyword_models
    mood = trained(SENTIMENT, "mood", parent=v1, user=personas["trainer"])
    request = evidence_for(promotion.request_promotion(mood, "production", user=personas["designer"], reason="x",
                                                       labelled_set=sentiment_set()))
    shown = api(personas["validator"]).get(f"/api/promotions/{request.pk}/").data
    assert shown["label_change"]["added"] == ["negative", "neutral", "positive"] and shown["approval_blockers"] == []
    answer = api(personas["validator"]).post(f"/api/promotions/{request.pk}/decide/",
                                             {"action": "approve", "acknowledge_label_change": True}, format="json")
    assert answer.status_code == 200 and answer.data["label_change_acknowledged"] is True


def test_same_labels_need_no_acknowledgement(personas, keyword_models, fixed_set):
    _, v2 = keyword_models
    request = evidence_for(promotion.request_promotion(v2, "production", user=personas["designer"], reason="x",
                                                       labelled_set=fixed_set))
    assert promotion.label_change(request) is None
    promotion.approve(request, user=personas["validator"])


# --- approve waits for meaningful evidence ----------------------------------------------------------


def test_approve_is_disabled_and_refused_until_the_evidence_is_meaningful(personas, keyword_models, fixed_set, client):
    _, v2 = keyword_models
    request = promotion.request_promotion(v2, "production", user=personas["designer"], reason="x",
                                          labelled_set=fixed_set)
    client.force_login(personas["validator"])
    page = client.get(f"/promotions/{request.pk}/").content.decode()
    assert 'id="reject"' in page and ('id="approve"' not in page or 'id="approve" disabled' in page)
    request = evidence_for(request)
    evidence = request.evidence
    evidence["evaluation"]["candidate"]["n"] = 0
    PromotionRequest.objects.filter(pk=request.pk).update(evidence=evidence)
    request.refresh_from_db()
    page = client.get(f"/promotions/{request.pk}/").content.decode()
    assert 'id="approve" disabled' in page and "no labelled document" in page
    with pytest.raises(ValidationError, match="no labelled document"):
        promotion.approve(request, user=personas["validator"])


def test_reject_is_as_prominent_as_approve_and_comes_first(personas, keyword_models, fixed_set, client):
    _, v2 = keyword_models
    request = evidence_for(promotion.request_promotion(v2, "production", user=personas["designer"], reason="x",
                                                       labelled_set=fixed_set))
    client.force_login(personas["validator"])
    page = client.get(f"/promotions/{request.pk}/").content.decode()
    approve = re.search(r'<button[^>]*id="approve"[^>]*>', page).group(0)
    reject = re.search(r'<button[^>]*id="reject"[^>]*>', page).group(0)
    assert "primary" not in approve and "disabled" not in approve
    assert re.search(r'class="([^"]*)"', reject).group(1) == re.search(r'class="([^"]*)"', approve).group(1)
    assert page.index('id="reject"') < page.index('id="approve"')
    assert "css/promotion.css" in page


def test_a_decided_request_shows_no_empty_decision_card(personas, keyword_models, fixed_set, client):
    _, v2 = keyword_models
    rejected = evidence_for(promotion.request_promotion(v2, "production", user=personas["designer"], reason="x",
                                                        labelled_set=fixed_set))
    promotion.reject(rejected, user=personas["validator"], reason="not yet")
    client.force_login(personas["validator"])
    assert 'id="decide"' not in client.get(f"/promotions/{rejected.pk}/").content.decode()
    approved = evidence_for(promotion.request_promotion(v2, "production", user=personas["designer"], reason="y",
                                                        labelled_set=fixed_set))
    promotion.approve(approved, user=personas["validator"], reason="ok")
    client.force_login(personas["designer"])  # who may request, and so roll back
    page = client.get(f"/promotions/{approved.pk}/").content.decode()
    assert 'id="decide"' in page and 'id="rollback"' in page  # the card still offers the rollback


# --- four eyes -------------------------------------------------------------------------------------


def test_the_trainer_of_an_ancestor_cannot_approve_its_int8_copy(personas):
    v1 = register_model("tickets", "classifier")
    personas["trainer"].groups.add(Group.objects.get(name="validator"))
    v2, _ = register_version(model_name="tickets", kind="classifier", meta={"sha256": "b" * 64, "size": 2},
                             source="trained", runtime="head", parent=v1, author=personas["trainer"],
                             trained_by=personas["trainer"])
    v3, _ = register_version(model_name="tickets", kind="classifier", meta={"sha256": "c" * 64, "size": 1},
                             source="quantised", runtime="head", parent=v2, author=personas["admin"],
                             trained_by=personas["admin"])
    request = promotion.request_promotion(v3, "production", user=personas["designer"], reason="smaller",
                                          labelled_set=labelled("any", TICKET_ITEMS, v1.model))
    PromotionRequest.objects.filter(pk=request.pk).update(status=PromotionRequest.READY)
    request.refresh_from_db()
    assert "trained" in promotion.why_not_decide(request, personas["trainer"])
    with pytest.raises(promotion.PromotionRefused, match="trained"):
        promotion.approve(request, user=personas["trainer"])
    promotion.approve(request, user=personas["validator"])


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT l.pid) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                       "WHERE NOT l.granted AND a.datname = current_database()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_requests_for_one_alias_leave_one_open(personas):
    if connection.vendor != "postgresql":
        pytest.skip("row locks need PostgreSQL")
    register_model("tickets", "classifier")
    v2, _ = register_version(model_name="tickets", kind="classifier", meta={"sha256": "b" * 64, "size": 2},
                             source="trained", runtime="head", author=personas["trainer"],
                             trained_by=personas["trainer"])
    evaluation = labelled("tickets-eval", TICKET_ITEMS, v2.model)
    outcomes: list[str] = []

    def ask(who: str) -> None:
        try:
            promotion.request_promotion(v2, "production", user=personas[who], reason=who, labelled_set=evaluation)
            outcomes.append("created")
        except ValidationError as exc:
            outcomes.append(" ".join(exc.messages))
        except Exception as exc:  # shown by the assertion below
            outcomes.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=ask, args=(who,)) for who in ("designer", "trainer")]
    # Hold the version row so that both requests stop at their INSERT (its foreign-key check waits for
    # this lock): each has done whatever checking it does before writing, at the same moment.
    with transaction.atomic():
        ModelVersion.objects.select_for_update().get(pk=v2.pk)
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while _waiting_on_locks() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _waiting_on_locks() == 2, outcomes
    for thread in threads:
        thread.join(20)
    assert sorted(o if o == "created" else "refused" for o in outcomes) == ["created", "refused"], outcomes
    assert PromotionRequest.objects.filter(status__in=PromotionRequest.OPEN).count() == 1
