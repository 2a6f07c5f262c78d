"""The review queue's domain side: deciding a parked item makes a label and resumes the item.

Accepting the proposal confirms the model (a label equal to its prediction); correcting it records
the true label. Both are labels: they give live accuracy per node and train the next candidate.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from workflows.engine.launch import decide_review
from workflows.governance.classifiers import classifier_for_node
from workflows.models import Decision, ReviewTask
from workflows.models.registry import Label, RegisteredModel, parse_ref
from workflows.roles import require


def open_tasks(queue: str = ""):
    tasks = ReviewTask.objects.filter(status=ReviewTask.OPEN).select_related("item", "run__workflow")
    return tasks.filter(queue=queue) if queue else tasks


def model_decision(task: ReviewTask) -> Decision | None:
    """The model node's decision whose proposal this review checks: the latest labelled one before it."""
    return (Decision.objects.filter(run_id=task.run_id, item_id=task.item_id, label__isnull=False)
            .exclude(model_ref="").exclude(node=task.node).order_by("-id").first())


def allowed_labels(task: ReviewTask, decision: Decision | None = None) -> list[str]:
    labels = list(task.proposal.get("labels") or [])
    if not labels and decision is not None:
        scores = (decision.output or {}).get("scores") or {}
        labels = list(scores)
        if not labels:
            model = _model_of(decision.model_ref)
            version = model.alias("production") if model else None
            labels = list(version.labels) if version else []
    proposal = (task.proposal.get("proposal") or task.proposal).get("label")
    if proposal and proposal not in labels:
        labels.insert(0, proposal)
    return labels


def proposal_of(task: ReviewTask) -> dict[str, Any]:
    inner = task.proposal.get("proposal")
    return inner if isinstance(inner, dict) else task.proposal


def _model_of(model_ref: str) -> RegisteredModel | None:
    try:
        name = parse_ref(model_ref)[0]
    except LookupError:
        return None
    return RegisteredModel.objects.filter(name=name).first()


def label_owner(task: ReviewTask, decision: Decision | None) -> RegisteredModel | None:
    """The classifier a label trains: the one the step decided with; for a step that decided
    zero-shot on an embedder (which has no head to train), the step's own classifier-to-be."""
    if decision is None:
        return None
    model = _model_of(decision.model_ref)
    if model is not None and model.kind == "classifier":
        return model
    if model is not None and model.kind == "embedder" and decision.label:
        return classifier_for_node(task.run.workflow, decision.node)
    return model


def decide(task: ReviewTask, *, user: Any, label: str, extra: dict[str, Any] | None = None) -> Label | None:
    """Accept (label == proposal) or correct; resumes the item downstream. None if already decided.

    `extra` (edited fields, a note) travels with the decision into the item's downstream payload."""
    require(user, "review.work", task)
    label = (label or "").strip()
    decision = model_decision(task)
    labels = allowed_labels(task, decision)
    if not label:
        raise ValidationError(gettext("Pick a label."))
    if labels and label not in labels:
        raise ValidationError(gettext("'%(label)s' is not one of the labels: %(labels)s.")
                              % {"label": label, "labels": ", ".join(labels)})
    proposal = proposal_of(task)
    predicted = (decision.label if decision else None) or proposal.get("label") or ""
    with transaction.atomic():
        result = {**(extra or {}), "label": label, "corrected": bool(predicted) and label != predicted}
        if not decide_review(task, user=user, result=result):
            return None
        payload = task.item.payload or {}
        segment = {k: str(payload[k]) for k in ("language", "lang", "channel", "customer_type", "segment")
                   if isinstance(payload.get(k), str | int)}
        return Label.objects.create(
            model=label_owner(task, decision), run_id=task.run_id, item_id=task.item_id,
            review_task=task, node=decision.node if decision else task.node,
            model_ref=decision.model_ref if decision else "",
            text=str(payload.get("text") or payload.get("subject") or "")[:20_000], label=label, predicted=predicted,
            confidence=decision.confidence if decision else proposal.get("confidence"), segment=segment,
            source=Label.REVIEW, created_by=user)


def live_accuracy(workflow_id: int | None = None) -> list[dict[str, Any]]:
    """Per (workflow, node, model version): reviewed items and how many the model got right."""
    labels = Label.objects.filter(source=Label.REVIEW).exclude(predicted="").select_related("run__workflow")
    if workflow_id is not None:
        labels = labels.filter(run__workflow_id=workflow_id)
    groups: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    names: dict[tuple, str] = {}
    for lab in labels:
        key = (lab.run.workflow_id if lab.run else None, lab.node, lab.model_ref)
        names[key] = lab.run.workflow.name if lab.run else "—"
        groups[key][0] += 1
        groups[key][1] += int(lab.predicted == lab.label)
    return [{"workflow_id": k[0], "workflow": names[k], "node": k[1], "model_ref": k[2], "reviewed": n, "correct": c,
             "accuracy": round(c / n, 4) if n else None}
            for k, (n, c) in sorted(groups.items(), key=lambda kv: str(kv[0]))]
