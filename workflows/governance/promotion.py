"""Promotions: the only way an alias moves. Evidence first, then a second person approves.

Four eyes: the approver must hold the validator role and be neither the requester nor the person
who trained (or registered) the version or any version it was made from (a quantised copy's parent,
the version a head was retrained from). Approval moves the alias and writes its audit entry in one
transaction; rollback is a promotion of an earlier version, through the same door.

Evidence must not mislead: a classifier is judged on a set with its own labels and none of its
training documents (labelsets.check_evaluation_set), Approve waits until that evaluation has run on
documents, and a version whose labels differ from what the alias gives today changes every workflow
on the alias, so the validator must acknowledge that change by name.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop, ngettext

from workflows.four_eyes import FourEyes, FourEyesRefused
from workflows.governance import labelsets
from workflows.governance.classifiers import node_config
from workflows.governance.tasks import compute_evidence
from workflows.governance.usage import workflows_using
from workflows.models.audit import record
from workflows.models.registry import (
    ALIASES,
    Alias,
    LabelledSet,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
)
from workflows.notifications import events as notifications
from workflows.roles import can, deny, require


class PromotionRefused(FourEyesRefused):
    pass


# The four-eyes rule of promotions: the same rule as publishing a workflow (workflows/four_eyes.py).
FOUR_EYES = FourEyes(
    capability="promotion.approve", refused="promotion.refused", error=PromotionRefused,
    no_role=gettext_noop("Only a validator can approve or reject."),
    requester=gettext_noop("You requested this promotion; another validator must decide it."),
    # Optimising records the optimiser: whoever trained the version it copies made it too.
    maker=gettext_noop("You trained or registered this version, or a version it was made from; another "
                       "validator must decide it."))


def _makers(request: PromotionRequest) -> set[int | None]:
    return {who for v in request.version.lineage() for who in (v.trained_by_id, v.author_id)}


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
    labelled_set = evaluation_set(version, labelled_set)
    with transaction.atomic():
        # The model's row is the lock: FOR UPDATE on the open requests would lock nothing when there
        # are none yet, and two requests arriving together would both find none and both be created.
        RegisteredModel.objects.select_for_update().get(pk=version.model_id)
        open_request = PromotionRequest.objects.filter(
            version__model=version.model, alias=alias, status__in=PromotionRequest.OPEN).first()
        if open_request is not None:
            raise ValidationError(gettext("Request #%(number)s for %(alias)s is still open; approve, reject or "
                                          "cancel it first.")
                                  % {"number": open_request.pk, "alias": f"{version.model.name}@{alias}"})
        promotion = PromotionRequest.objects.create(version=version, alias=alias, reason=reason.strip(),
                                                    requested_by=user, labelled_set=labelled_set,
                                                    replay_size=replay_size)
        record("promotion.request", actor=user, obj=promotion, version=version.ref, alias=alias,
               current=current.ref if current else None, reason=promotion.reason)
        notifications.promotion_waiting(promotion, may_decide=lambda who: not why_not_decide(promotion, who))
        transaction.on_commit(lambda: _enqueue_evidence(promotion.pk))
    return promotion


def evaluation_set(version: ModelVersion, chosen: LabelledSet | None) -> LabelledSet | None:
    """The set the evidence will judge a classifier on: the one chosen, if it can judge it, else the
    newest that can (ValidationError naming why, or saying to upload one). Embedders are compared
    with production on any texts: their model's newest set."""
    if version.model.kind != "classifier":
        return chosen or version.model.labelled_sets.order_by("-created_at").first()
    if chosen is None:
        return labelsets.default_evaluation_set(version)
    labelsets.check_evaluation_set(version, chosen)
    return chosen


def _enqueue_evidence(request_id: int) -> None:
    compute_evidence.enqueue(request_id)


def why_not_decide(request: PromotionRequest, user: Any) -> str:
    """Why `user` may not decide this request (the four-eyes rule), or "" when they may. In English, as
    the audit log keeps it; gettext() it where a person reads it."""
    return FOUR_EYES.why_not(user, requested_by=request.requested_by_id, makers=_makers(request))


def label_change(request: PromotionRequest) -> dict[str, Any] | None:
    """What approving would change in the labels the alias gives, or None when nothing: the labels
    today (the version on the alias; for a step's own classifier with no production yet, the step's
    zero-shot labels), the candidate's, and the workflows whose decisions would change."""
    version = request.version
    model = version.model
    new = labelsets.candidate_labels(version)
    if model.kind != "classifier" or not new:
        return None
    current = model.alias(request.alias)
    own_step = request.alias == "production" and model.origin_workflow_id and model.origin_node
    if current is not None:
        old, against = labelsets.candidate_labels(current), current.ref
    elif own_step:
        config = node_config(model.origin_workflow, model.origin_node) or {}
        labels = config.get("labels") or {}
        old = sorted(str(label) for label in (labels if isinstance(labels, dict | list) else []))
        against = gettext("the zero-shot step '%(node)s'") % {"node": model.origin_node}
    else:
        return None
    if not old or set(old) == set(new):
        return None
    ref = f"{model.name}@{request.alias}"
    workflows = [{"id": use["workflow"].pk, "name": use["workflow"].name,
                  "nodes": sorted(n for n, r in use["refs"].items() if r == ref)}
                 for use in workflows_using(model.name) if ref in use["refs"].values()]
    if own_step and all(w["id"] != model.origin_workflow_id for w in workflows):
        workflows.append({"id": model.origin_workflow_id, "name": model.origin_workflow.name,
                          "nodes": [model.origin_node]})
    return {"alias": ref, "against": against, "from": old, "to": new, "added": sorted(set(new) - set(old)),
            "removed": sorted(set(old) - set(new)), "workflows": workflows}


def approval_blockers(request: PromotionRequest) -> list[str]:
    """Why the evidence cannot support approval yet, in the reader's language ([] when it can). A
    classifier needs an evaluation that ran on labelled documents carrying its labels."""
    if request.status != PromotionRequest.READY:
        return [gettext("The evidence is not ready.")]
    version = request.version
    if version.model.kind != "classifier" or not labelsets.candidate_labels(version):
        return []
    evaluation = (request.evidence or {}).get("evaluation") or {}
    candidate = evaluation.get("candidate") or {}
    if not candidate.get("n"):
        return [gettext("The evidence evaluated no labelled document: request again with a labelled set of this "
                        "model's labels.")]
    blockers = []
    if not evaluation.get("labels_match"):
        blockers.append(gettext("The evidence was computed on a set whose labels are not the candidate's."))
    labelled = request.labelled_set
    if labelled is not None:
        try:
            labelsets.check_evaluation_set(version, labelled)
        except ValidationError as exc:
            blockers.extend(exc.messages)  # the set was changed after the evidence
    return blockers


def _label_change_refusal(change: dict[str, Any]) -> ValidationError:
    names = ", ".join(w["name"] for w in change["workflows"]) or gettext("none found")
    return ValidationError(ngettext(
        "Approving changes the labels of %(alias)s from %(old)s to %(new)s, for %(count)s workflow (%(names)s): "
        "acknowledge the label change to approve.",
        "Approving changes the labels of %(alias)s from %(old)s to %(new)s, for %(count)s workflows (%(names)s): "
        "acknowledge the label change to approve.", len(change["workflows"]))
        % {"alias": change["alias"], "old": ", ".join(change["from"]), "new": ", ".join(change["to"]),
           "count": len(change["workflows"]), "names": names})


def check_four_eyes(request: PromotionRequest, user: Any) -> None:
    """Raise PromotionRefused (audited) unless `user` may decide this request."""
    FOUR_EYES.check(user, request, requested_by=request.requested_by_id, makers=_makers(request),
                    version=request.version.ref, alias=request.alias)


def approve(request: PromotionRequest, *, user: Any, reason: str = "",
            acknowledge_label_change: bool = False) -> PromotionRequest:
    check_four_eyes(request, user)
    with transaction.atomic():
        request = PromotionRequest.objects.select_for_update().select_related("version__model").get(pk=request.pk)
        if request.status != PromotionRequest.READY:
            raise ValidationError(gettext("Request #%(number)s is %(status)s; only a request whose evidence is ready "
                                          "can be approved.")
                                  % {"number": request.pk, "status": request.get_status_display()})
        blockers = approval_blockers(request)
        if blockers:
            raise ValidationError(" ".join(blockers))
        model = RegisteredModel.objects.select_for_update().get(pk=request.version.model_id)
        change = label_change(request)
        if change is not None and not acknowledge_label_change:
            raise _label_change_refusal(change)
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
        request.label_change_acknowledged = change is not None
        request.save()
        record("promotion.approve", actor=user, obj=request, model=model.name, alias=request.alias,
               version=request.version.ref, previous=previous.ref if previous else None,
               requested_by=request.requested_by.get_username(), reason=reason,
               label_change=({"from": change["from"], "to": change["to"],
                              "workflows": [w["name"] for w in change["workflows"]]} if change else None))
        notifications.promotion_decided(request)
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
        notifications.promotion_decided(request)
    return request


def may_act(request: PromotionRequest, user: Any) -> bool:
    """Only validators and the requester act on a request (cancelling is the requester's right)."""
    return user.pk == request.requested_by_id or can(user, "promotion.approve", request)


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
    # Judged on the same labelled set as the promotion it undoes, when that set can judge the earlier
    # version (a promotion that changed the labels was judged on the new labels): else the newest that can.
    labelled = last.labelled_set
    if labelled is not None and last.previous_version.model.kind == "classifier":
        try:
            labelsets.check_evaluation_set(last.previous_version, labelled)
        except ValidationError:
            labelled = None
    return request_promotion(last.previous_version, alias, user=user, reason=f"Rollback: {reason}",
                             labelled_set=labelled)
