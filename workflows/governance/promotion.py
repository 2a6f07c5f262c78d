"""Promotions: the only way an alias moves. Evidence first, then a second person approves.

Four eyes: the approver must hold the validator role and be neither the requester nor the person
who trained (or registered) the version. Approval moves the alias and writes its audit entry in
one transaction; rollback is a promotion of an earlier version, through the same door.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop

from workflows.governance.tasks import compute_evidence
from workflows.models.audit import record
from workflows.models.registry import ALIASES, Alias, LabelledSet, ModelVersion, PromotionRequest
from workflows.roles import can, deny, require


class PromotionRefused(PermissionDenied):
    pass


def _refuse(user: Any, request: PromotionRequest, why: str) -> PromotionRefused:
    record("promotion.refused", actor=user, obj=request, why=why, version=request.version.ref, alias=request.alias)
    return PromotionRefused(gettext(why))


def request_promotion(version: ModelVersion, alias: str, *, user: Any, reason: str,
                      labelled_set: LabelledSet | None = None, replay_size: int = 200) -> PromotionRequest:
    require(user, "promotion.request", version)
    if alias not in dict(ALIASES):
        raise ValidationError(gettext("'%(alias)s' is not an alias; choose production, candidate or shadow.")
                              % {"alias": alias})
    if not (reason or "").strip():
        raise ValidationError(gettext("Say why this version should be promoted."))
    current = version.model.alias(alias)
    if current is not None and current.pk == version.pk:
        raise ValidationError(gettext("%(ref)s already is %(alias)s.")
                              % {"ref": version.ref, "alias": f"{version.model.name}@{alias}"})
    with transaction.atomic():
        open_request = PromotionRequest.objects.select_for_update().filter(
            version__model=version.model, alias=alias, status__in=PromotionRequest.OPEN).first()
        if open_request is not None:
            raise ValidationError(gettext("Request #%(number)s for %(alias)s is still open; approve, reject or "
                                          "cancel it first.")
                                  % {"number": open_request.pk, "alias": f"{version.model.name}@{alias}"})
        if labelled_set is None:
            labelled_set = version.model.labelled_sets.order_by("-created_at").first()
        promotion = PromotionRequest.objects.create(version=version, alias=alias, reason=reason.strip(),
                                                    requested_by=user, labelled_set=labelled_set,
                                                    replay_size=replay_size)
        record("promotion.request", actor=user, obj=promotion, version=version.ref, alias=alias,
               current=current.ref if current else None, reason=promotion.reason)
        transaction.on_commit(lambda: _enqueue_evidence(promotion.pk))
    return promotion


def _enqueue_evidence(request_id: int) -> None:
    compute_evidence.enqueue(request_id)


def why_not_decide(request: PromotionRequest, user: Any) -> str:
    """Why `user` may not decide this request (the four-eyes rule), or "" when they may. In English, as
    the audit log keeps it; gettext() it where a person reads it."""
    if not can(user, "promotion.approve"):
        return gettext_noop("Only a validator can approve or reject.")
    if user.pk == request.requested_by_id:
        return gettext_noop("You requested this promotion; another validator must decide it.")
    if user.pk in {request.version.trained_by_id, request.version.author_id} - {None}:
        return gettext_noop("You trained or registered this version; another validator must decide it.")
    return ""


def check_four_eyes(request: PromotionRequest, user: Any) -> None:
    """Raise PromotionRefused (audited) unless `user` may decide this request."""
    if not can(user, "promotion.approve"):
        raise deny(user, "promotion.approve", request)
    why = why_not_decide(request, user)
    if why:
        raise _refuse(user, request, why)


def approve(request: PromotionRequest, *, user: Any, reason: str = "") -> PromotionRequest:
    check_four_eyes(request, user)
    with transaction.atomic():
        request = PromotionRequest.objects.select_for_update().select_related("version__model").get(pk=request.pk)
        if request.status != PromotionRequest.READY:
            raise ValidationError(gettext("Request #%(number)s is %(status)s; only a request whose evidence is ready "
                                          "can be approved.")
                                  % {"number": request.pk, "status": request.get_status_display()})
        model = request.version.model
        alias = Alias.objects.select_for_update().filter(model=model, name=request.alias).first()
        previous = alias.version if alias else None
        if alias is None:
            alias = Alias.objects.create(model=model, name=request.alias, version=request.version)
        else:
            alias.version = request.version
            alias.save(update_fields=["version", "updated_at"])
        request.status = PromotionRequest.APPROVED
        request.decided_by = user
        request.decided_at = timezone.now()
        request.decision_reason = reason
        request.previous_version = previous
        request.save()
        record("promotion.approve", actor=user, obj=request, model=model.name, alias=request.alias,
               version=request.version.ref, previous=previous.ref if previous else None,
               requested_by=request.requested_by.get_username(), reason=reason)
    return request


def reject(request: PromotionRequest, *, user: Any, reason: str) -> PromotionRequest:
    check_four_eyes(request, user)
    if not (reason or "").strip():
        raise ValidationError(gettext("Give the reason for rejecting, so the trainer knows what to fix."))
    with transaction.atomic():
        request = PromotionRequest.objects.select_for_update().get(pk=request.pk)
        if not request.is_open:
            raise ValidationError(gettext("Request #%(number)s is already %(status)s.")
                                  % {"number": request.pk, "status": request.get_status_display()})
        request.status = PromotionRequest.REJECTED
        request.decided_by = user
        request.decided_at = timezone.now()
        request.decision_reason = reason.strip()
        request.save()
        record("promotion.reject", actor=user, obj=request, version=request.version.ref, alias=request.alias,
               reason=reason)
    return request


def may_act(request: PromotionRequest, user: Any) -> bool:
    """Only validators and the requester act on a request (cancelling is the requester's right)."""
    return user.pk == request.requested_by_id or can(user, "promotion.approve")


def cancel(request: PromotionRequest, *, user: Any) -> PromotionRequest:
    if not may_act(request, user):
        raise deny(user, "promotion.cancel", request)
    with transaction.atomic():
        request = PromotionRequest.objects.select_for_update().get(pk=request.pk)
        if not request.is_open:
            raise ValidationError(gettext("Request #%(number)s is already %(status)s.")
                                  % {"number": request.pk, "status": request.get_status_display()})
        request.status = PromotionRequest.CANCELLED
        request.save(update_fields=["status"])
        record("promotion.cancel", actor=user, obj=request)
    return request


def request_rollback(model_name: str, alias: str, *, user: Any, reason: str) -> PromotionRequest:
    """Promote the version the alias pointed at before its last approved move."""
    last = (PromotionRequest.objects.filter(version__model__name=model_name, alias=alias,
                                            status=PromotionRequest.APPROVED)
            .exclude(previous_version=None).select_related("previous_version__model").first())
    if last is None:
        raise ValidationError(gettext("%(alias)s has no earlier version to roll back to.")
                              % {"alias": f"{model_name}@{alias}"})
    # Judged on the same labelled set as the promotion it undoes.
    return request_promotion(last.previous_version, alias, user=user, reason=f"Rollback: {reason}",
                             labelled_set=last.labelled_set)
