"""Four eyes: who may approve a promotion, and what approval does, atomically and audited."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from tests.builders import register_model
from workflows.governance import promotion
from workflows.governance.labelsets import create_labelled_set
from workflows.models import AuditEntry
from workflows.models.audit import verify_chain
from workflows.models.registry import Alias, PromotionRequest, register_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def versions(personas):
    v1 = register_model("tickets", "classifier")
    v2, _ = register_version(model_name="tickets", kind="classifier", meta={"sha256": "b" * 64, "size": 2},
                             source="trained", runtime="head", parent=v1, author=personas["trainer"],
                             trained_by=personas["trainer"])
    # Evidence needs a labelled set to judge the candidate on (these versions record no labels).
    create_labelled_set(name="tickets-eval", items=[{"text": "invoice", "label": "billing"},
                                                    {"text": "crash", "label": "technical"}], user=None,
                        model=v1.model)
    return v1, v2


def ready(request: PromotionRequest) -> PromotionRequest:
    # What the worker's evidence task does when it finishes (tested with real models elsewhere).
    PromotionRequest.objects.filter(pk=request.pk).update(status=PromotionRequest.READY, evidence={"evaluation": None})
    request.refresh_from_db()
    return request


def production_of(name: str):
    return Alias.objects.get(model__name=name, name="production").version


def test_requester_trainer_and_non_validator_are_refused_another_validator_approves(personas, versions):
    v1, v2 = versions
    request = ready(promotion.request_promotion(v2, "production", user=personas["designer"],
                                                reason="Better on Italian tickets"))
    for who in ("designer", "operator", "business_owner", "admin"):  # requester, and roles that are not validators
        with pytest.raises(PermissionDenied):
            promotion.approve(request, user=personas[who])
    assert production_of("tickets") == v1
    promotion.approve(request, user=personas["validator"], reason="Evidence is convincing")
    assert production_of("tickets") == v2
    request.refresh_from_db()
    assert (request.status == "approved" and request.previous_version == v1
            and request.decided_by == personas["validator"])


def test_the_trainer_cannot_approve_even_as_a_validator(personas, versions):
    from django.contrib.auth.models import Group

    _, v2 = versions
    personas["trainer"].groups.add(Group.objects.get(name="validator"))
    request = ready(promotion.request_promotion(v2, "production", user=personas["designer"], reason="x"))
    with pytest.raises(promotion.PromotionRefused, match="trained"):
        promotion.approve(request, user=personas["trainer"])


def test_a_validator_cannot_approve_their_own_request(personas, versions):
    from django.contrib.auth.models import Group

    _, v2 = versions
    personas["validator"].groups.add(Group.objects.get(name="trainer"))
    request = ready(promotion.request_promotion(v2, "production", user=personas["validator"], reason="x"))
    with pytest.raises(promotion.PromotionRefused, match="requested"):
        promotion.approve(request, user=personas["validator"])
    assert AuditEntry.objects.filter(action="promotion.refused", actor_name="validator").exists()
    promotion.approve(request, user=personas["validator2"])
    assert production_of("tickets") == v2


def test_refusals_are_audited(personas, versions):
    _, v2 = versions
    request = ready(promotion.request_promotion(v2, "production", user=personas["designer"], reason="x"))
    with pytest.raises(PermissionDenied):
        promotion.approve(request, user=personas["designer"])
    with pytest.raises(PermissionDenied):
        promotion.approve(request, user=personas["operator"])
    denied = AuditEntry.objects.filter(action="access.denied", data__capability="promotion.approve")
    assert sorted(denied.values_list("actor_name", flat=True)) == ["designer", "operator"]


def test_approval_needs_evidence(personas, versions):
    _, v2 = versions
    request = promotion.request_promotion(v2, "production", user=personas["designer"], reason="x")
    with pytest.raises(ValidationError, match="evidence"):
        promotion.approve(request, user=personas["validator"])


def test_alias_moves_with_its_audit_entry_in_one_transaction(personas, versions, monkeypatch):
    v1, v2 = versions
    request = ready(promotion.request_promotion(v2, "production", user=personas["designer"], reason="x"))

    def broken_record(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(promotion, "record", broken_record)
    with pytest.raises(RuntimeError):
        promotion.approve(request, user=personas["validator"])
    assert production_of("tickets") == v1  # no audit entry → no move
    request.refresh_from_db()
    assert request.status == "ready"


def test_approval_is_in_the_verified_chain(personas, versions):
    _, v2 = versions
    request = ready(promotion.request_promotion(v2, "production", user=personas["designer"], reason="x"))
    promotion.approve(request, user=personas["validator"])
    entry = AuditEntry.objects.get(action="promotion.approve")
    assert entry.data["version"] == "tickets:v2" and entry.data["previous"] == "tickets:v1"
    assert verify_chain()[1] is None


def test_rollback_is_a_promotion_of_the_earlier_version(personas, versions):
    v1, v2 = versions
    promotion.approve(ready(promotion.request_promotion(v2, "production", user=personas["designer"], reason="x")),
                      user=personas["validator"])
    rollback = promotion.request_rollback("tickets", "production", user=personas["trainer"],
                                          reason="v2 worse on billing")
    assert rollback.version == v1 and rollback.reason.startswith("Rollback")
    with pytest.raises(PermissionDenied):
        promotion.approve(ready(rollback), user=personas["trainer"])
    promotion.approve(rollback, user=personas["validator2"])
    assert production_of("tickets") == v1


def test_one_open_request_per_alias_and_reasons_required(personas, versions):
    _, v2 = versions
    with pytest.raises(ValidationError, match="why"):
        promotion.request_promotion(v2, "production", user=personas["designer"], reason="  ")
    request = promotion.request_promotion(v2, "production", user=personas["designer"], reason="x")
    with pytest.raises(ValidationError, match="still open"):
        promotion.request_promotion(v2, "production", user=personas["trainer"], reason="y")
    with pytest.raises(ValidationError, match="reason"):
        promotion.reject(ready(request), user=personas["validator"], reason="")
    promotion.reject(request, user=personas["validator"], reason="Worse on the billing segment")
    request.refresh_from_db()
    assert request.status == "rejected"


def test_operators_cannot_request(personas, versions):
    with pytest.raises(PermissionDenied):
        promotion.request_promotion(versions[1], "production", user=personas["operator"], reason="x")


def test_a_validator_of_one_team_cannot_approve_a_shared_model_but_can_their_team_s_own(personas, versions):
    """The registry is shared: moving a shared model's production alias changes what every team runs,
    so only an organisation-wide validator may decide it. A classifier trained for one team's step is
    that team's: its own validators decide."""
    from tests.builders import make_user, make_workflow
    from workflows.models import Membership, RegisteredModel, Team

    v1, v2 = versions
    sales = Team.objects.create(name="Sales")
    member = make_user("vera")  # no group role: a validator in Sales only
    Membership.objects.create(team=sales, user=member, role="validator")
    request = ready(promotion.request_promotion(v2, "production", user=personas["designer"], reason="Better"))
    with pytest.raises(PermissionDenied):
        promotion.approve(request, user=member)
    assert production_of("tickets") == v1

    workflow = make_workflow(personas["designer"], {"nodes": [], "edges": []}, name="Sales triage")
    workflow.team = sales
    workflow.save(update_fields=["team"])
    RegisteredModel.objects.filter(pk=v1.model_id).update(origin_workflow=workflow, origin_node="cls")
    request.refresh_from_db()
    promotion.approve(request, user=member, reason="Our team's own classifier")
    assert production_of("tickets") == v2
