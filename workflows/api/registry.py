"""REST API for governance: registry, import, labelled sets, promotions, model jobs, review, drift, audit.

Thin like the pages: authorise, call workflows/governance, answer JSON. Refusals say why.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.governance import drift, labelsets, optimise, promotion, review, training
from workflows.governance.artifacts import import_model
from workflows.governance.importer import ModelRejected
from workflows.governance.registry import version_usage, workflows_using
from workflows.models import AuditEntry, ReviewTask
from workflows.models.audit import record, verify_chain
from workflows.models.registry import LabelledSet, ModelJob, ModelVersion, PromotionRequest, RegisteredModel
from workflows.roles import require

SCHEMA = extend_schema(tags=["governance"], request=None, responses=None)


def _bad(exc: ValidationError | str) -> Response:
    detail = " ".join(exc.messages) if isinstance(exc, ValidationError) else exc
    return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)


def version_json(v: ModelVersion, usage: list | None = None) -> dict[str, Any]:
    return {"id": v.pk, "ref": v.ref, "number": v.number, "sha256": v.sha256, "size": v.size, "source": v.source,
            "parent": v.parent.ref if v.parent_id else None, "runtime": v.runtime, "labels": v.labels, "metrics": v.metrics,
            "author": v.author.get_username() if v.author_id else None,
            "trained_by": v.trained_by.get_username() if v.trained_by_id else None, "created_at": v.created_at,
            "aliases": [a.name for a in v.aliases.all()], "licence": v.licence, "note": v.note,
            **({"used_by": version_usage(v, usage)} if usage is not None else {})}


def model_json(m: RegisteredModel, detail: bool = False) -> dict[str, Any]:
    data = {"name": m.name, "kind": m.kind, "description": m.description, "licence": m.licence,
            "aliases": {a.name: a.version.ref for a in m.aliases.all()}}
    if detail:
        usage = workflows_using(m.name)
        data["versions"] = [version_json(v, usage) for v in m.versions.select_related("parent__model", "author", "trained_by", "model")
                            .prefetch_related("aliases")]
        data["workflows"] = [{"id": u["workflow"].pk, "name": u["workflow"].name, "version": u["version"], "refs": u["refs"]}
                             for u in usage]
    return data


def _model(user: Any, name: str) -> RegisteredModel:
    require(user, "model.view")
    try:
        return RegisteredModel.objects.prefetch_related("aliases__version__model").get(name=name)
    except RegisteredModel.DoesNotExist:
        raise Http404("No such model.") from None


def _version(user: Any, name: str, number: int) -> ModelVersion:
    try:
        return _model(user, name).versions.select_related("model").get(number=number)
    except ModelVersion.DoesNotExist:
        raise Http404("No such version.") from None


def promotion_json(r: PromotionRequest) -> dict[str, Any]:
    return {"id": r.pk, "version": r.version.ref, "model": r.version.model.name, "alias": r.alias, "status": r.status,
            "reason": r.reason, "requested_by": r.requested_by.get_username(), "created_at": r.created_at,
            "decided_by": r.decided_by.get_username() if r.decided_by_id else None, "decided_at": r.decided_at,
            "decision_reason": r.decision_reason, "previous_version": r.previous_version.ref if r.previous_version_id else None,
            "labelled_set": r.labelled_set.name if r.labelled_set_id else None, "evidence": r.evidence,
            "evidence_error": r.evidence_error}


def job_json(j: ModelJob) -> dict[str, Any]:
    return {"id": j.pk, "kind": j.kind, "model": j.model.name, "base_version": j.base_version.ref, "status": j.status,
            "progress": j.progress, "message": j.message, "error": j.error, "report": j.report,
            "result_version": j.result_version.ref if j.result_version_id else None,
            "labelled_set": j.labelled_set.name if j.labelled_set_id else None, "created_by": j.created_by.get_username()}


@SCHEMA
@extend_schema(operation_id="models_list", description="Registered models with their aliases.")
@api_view(["GET"])
def model_list(request: Request) -> Response:
    require(request.user, "model.view")
    return Response([model_json(m) for m in RegisteredModel.objects.prefetch_related("aliases__version__model")])


@SCHEMA
@api_view(["GET"])
def model_detail(request: Request, name: str) -> Response:
    return Response(model_json(_model(request.user, name), detail=True))


@SCHEMA
@api_view(["POST"])
@parser_classes([MultiPartParser, FormParser])
def model_import(request: Request) -> Response:
    """Multipart: file, name, kind, labels (comma-separated). 400 with `reasons` when the model is refused."""
    require(request.user, "model.train")
    upload = request.FILES.get("file")
    if upload is None or not request.data.get("name"):
        return Response({"detail": "Send the model as `file` and its `name`.", "reasons": []}, status=status.HTTP_400_BAD_REQUEST)
    labels = [x.strip() for x in (request.data.get("labels") or "").split(",") if x.strip()]
    try:
        version, created, report = import_model(upload.read(), name=str(request.data["name"]).strip().lower(),
                                                kind=request.data.get("kind") or "classifier", labels=labels, user=request.user)
    except ModelRejected as exc:
        return Response({"detail": "The model was refused.", "refused": True, "reasons": exc.reasons},
                        status=status.HTTP_400_BAD_REQUEST)
    except ValidationError as exc:
        return _bad(exc)
    return Response({"version": version_json(version), "created": created, "report": report.to_json()},
                    status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@SCHEMA
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser, FormParser, JSONParser])
def labelled_sets(request: Request) -> Response:
    """GET: every set (without items). POST multipart: file (CSV/XLSX), name, model."""
    if request.method == "GET":
        require(request.user, "model.view")
        return Response([{"id": s.pk, "name": s.name, "items": len(s.items), "labels": s.labels, "source": s.source,
                          "model": s.model.name if s.model_id else None} for s in LabelledSet.objects.select_related("model")])
    require(request.user, "model.train")
    upload = request.FILES.get("file")
    if upload is None:
        return _bad("Send the CSV or XLSX as `file`.")
    try:
        items = labelsets.parse_labelled_file(upload.name, upload.read())
        labelled = labelsets.create_labelled_set(
            name=request.data.get("name") or upload.name.rsplit(".", 1)[0], items=items, user=request.user,
            model=RegisteredModel.objects.filter(name=request.data.get("model") or "").first())
    except ValidationError as exc:
        return _bad(exc)
    return Response({"id": labelled.pk, "name": labelled.name, "items": len(labelled.items), "labels": labelled.labels},
                    status=status.HTTP_201_CREATED)


@SCHEMA
@extend_schema(methods=["GET"], operation_id="promotions_list", description="Promotion requests, newest first.")
@extend_schema(methods=["POST"], operation_id="promotions_create", description="Request a promotion (version → alias).")
@api_view(["GET", "POST"])
def promotions(request: Request) -> Response:
    """GET: requests (?status=open|…). POST {model, version, alias, reason, labelled_set?, replay_size?}."""
    if request.method == "GET":
        require(request.user, "model.view")
        found = PromotionRequest.objects.select_related("version__model", "requested_by", "decided_by", "labelled_set",
                                                        "previous_version__model")
        wanted = request.query_params.get("status")
        if wanted == "open":
            found = found.filter(status__in=PromotionRequest.OPEN)
        elif wanted:
            found = found.filter(status=wanted)
        return Response([promotion_json(r) for r in found[:200]])
    require(request.user, "promotion.request")
    try:
        version = _version(request.user, str(request.data.get("model") or ""), int(request.data.get("version") or 0))
        labelled = LabelledSet.objects.filter(name=request.data.get("labelled_set") or "").first()
        created = promotion.request_promotion(version, request.data.get("alias") or "candidate", user=request.user,
                                              reason=request.data.get("reason") or "", labelled_set=labelled,
                                              replay_size=int(request.data.get("replay_size") or 200))
    except ValidationError as exc:
        return _bad(exc)
    except (TypeError, ValueError):
        return _bad("`version` and `replay_size` are numbers.")
    return Response(promotion_json(created), status=status.HTTP_201_CREATED)


def _request(user: Any, pk: int) -> PromotionRequest:
    require(user, "model.view")
    try:
        return PromotionRequest.objects.select_related("version__model", "requested_by", "decided_by", "labelled_set").get(pk=pk)
    except PromotionRequest.DoesNotExist:
        raise Http404("No such promotion request.") from None


@SCHEMA
@api_view(["GET"])
def promotion_detail(request: Request, pk: int) -> Response:
    return Response(promotion_json(_request(request.user, pk)))


@SCHEMA
@api_view(["POST"])
def promotion_decide(request: Request, pk: int) -> Response:
    """{action: approve|reject|cancel, reason}. Four eyes are enforced here as on the page (403 with why)."""
    req = _request(request.user, pk)
    action, reason = request.data.get("action"), request.data.get("reason") or ""
    try:
        if action == "approve":
            req = promotion.approve(req, user=request.user, reason=reason)
        elif action == "reject":
            req = promotion.reject(req, user=request.user, reason=reason)
        elif action == "cancel":
            req = promotion.cancel(req, user=request.user)
        else:
            return _bad("`action` is approve, reject or cancel.")
    except ValidationError as exc:
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
    return Response(promotion_json(PromotionRequest.objects.get(pk=req.pk)))


@SCHEMA
@api_view(["POST"])
def model_train(request: Request, name: str) -> Response:
    """{labelled_set?: name, use_reviews?: bool, C?: float} → the job (poll /api/jobs/<id>/)."""
    model = _model(request.user, name)
    try:
        job = training.start_training(model, user=request.user,
                                      labelled_set=LabelledSet.objects.filter(name=request.data.get("labelled_set") or "").first(),
                                      use_reviews=bool(request.data.get("use_reviews", True)), C=float(request.data.get("C") or 10))
    except ValidationError as exc:
        return _bad(exc)
    except (TypeError, ValueError):
        return _bad("C is a number.")
    return Response(job_json(job), status=status.HTTP_202_ACCEPTED)


@SCHEMA
@api_view(["POST"])
def model_optimise(request: Request, name: str, number: int) -> Response:
    """{labelled_set?: name, per_channel?: bool, fuse?: bool} → the job."""
    version = _version(request.user, name, number)
    try:
        job = optimise.start_optimise(version, user=request.user,
                                      labelled_set=LabelledSet.objects.filter(name=request.data.get("labelled_set") or "").first(),
                                      per_channel=bool(request.data.get("per_channel", True)), fuse=bool(request.data.get("fuse", False)))
    except ValidationError as exc:
        return _bad(exc)
    return Response(job_json(job), status=status.HTTP_202_ACCEPTED)


@SCHEMA
@api_view(["GET"])
def job_detail(request: Request, pk: int) -> Response:
    require(request.user, "model.view")
    job = ModelJob.objects.select_related("model", "base_version__model", "result_version__model", "labelled_set",
                                          "created_by").filter(pk=pk).first()
    if job is None:
        raise Http404("No such job.")
    return Response(job_json(job))


@SCHEMA
@api_view(["GET"])
def review_tasks(request: Request) -> Response:
    """Items waiting for review, with the model's proposal, and live accuracy per node."""
    require(request.user, "review.work")
    tasks = []
    for task in review.open_tasks(request.query_params.get("queue") or "")[:200]:
        decision = review.model_decision(task)
        proposal = review.proposal_of(task)
        tasks.append({"id": task.pk, "run": task.run_id, "item": task.item_id, "seq": task.item.seq, "queue": task.queue,
                      "text": (task.item.payload or {}).get("text"), "proposal": proposal.get("label"),
                      "confidence": proposal.get("confidence"), "labels": review.allowed_labels(task, decision),
                      "model_ref": decision.model_ref if decision else None})
    return Response({"tasks": tasks, "accuracy": review.live_accuracy()})


@SCHEMA
@api_view(["POST"])
def review_label(request: Request, pk: int) -> Response:
    """{label}: accept (the proposal) or correct; the label is kept and the item resumes downstream."""
    require(request.user, "review.work")
    task = ReviewTask.objects.select_related("item").filter(pk=pk).first()
    if task is None:
        raise Http404("No such review task.")
    try:
        label = review.decide(task, user=request.user, label=str(request.data.get("label") or ""))
    except ValidationError as exc:
        return _bad(exc)
    if label is None:
        return Response({"detail": "This item was already decided."}, status=status.HTTP_409_CONFLICT)
    return Response({"task": task.pk, "label": label.label, "predicted": label.predicted, "corrected": label.corrected})


@SCHEMA
@api_view(["GET"])
def drift_report(request: Request) -> Response:
    require(request.user, "model.view")
    return Response([asdict(d) | {"alert": d.alert} for d in drift.report()])


@SCHEMA
@api_view(["GET"])
def audit_list(request: Request) -> Response:
    require(request.user, "audit.view")
    entries = AuditEntry.objects.order_by("-id")
    if request.query_params.get("action"):
        entries = entries.filter(action__startswith=request.query_params["action"])
    if request.query_params.get("actor"):
        entries = entries.filter(actor_name=request.query_params["actor"])
    return Response([{"id": e.pk, "at": e.at, "actor": e.actor_name, "action": e.action, "object_type": e.object_type,
                      "object_id": e.object_id, "data": e.data, "prev_hash": e.prev_hash, "hash": e.hash} for e in entries[:500]])


@SCHEMA
@api_view(["POST"])
def audit_verify(request: Request) -> Response:
    require(request.user, "audit.view")
    count, broken, why = verify_chain()
    record("audit.verify", actor=request.user, ok=broken is None, checked=count, broken=broken.pk if broken else None)
    return Response({"ok": broken is None, "checked": count, "broken": broken.pk if broken else None, "why": why})
