"""REST API for governance: registry, import, labelled sets, promotions, model jobs, review, drift, audit.

Thin like the pages: authorise, call workflows/governance, answer JSON. Refusals say why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.access import (
    get_job_for_user,
    get_model_for_user,
    get_promotion_for_user,
    get_review_task_for_user,
    get_version_for_user,
    restrict,
    visible_workflow_ids,
    visible_workflows,
)
from workflows.design import texts
from workflows.governance import drift, evaluation, labelsets, optimise, promotion, review, training
from workflows.governance.accuracy import live_accuracy
from workflows.governance.artifacts import import_model
from workflows.governance.importer import ModelRejected
from workflows.governance.usage import version_usage, workflows_using
from workflows.models import AuditEntry
from workflows.models.audit import verify_chain_for
from workflows.models.registry import (
    ALIASES,
    KINDS,
    LabelledSet,
    ModelJob,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
)
from workflows.roles import deny, require

from .errors import text_query
from .schema import ARRAY, CONFLICT
from .serializers import MAX_INT


def doc(**kwargs: Any):
    """extend_schema for governance endpoints: no request body and a JSON object unless said otherwise."""
    return extend_schema(**{"tags": ["governance"], "request": None, "responses": OpenApiTypes.OBJECT, **kwargs})


SCHEMA = doc()


class ModelImportForm(serializers.Serializer):
    file = serializers.FileField(help_text="The ONNX file.")
    name = serializers.SlugField(max_length=80)
    kind = serializers.ChoiceField(choices=KINDS, default="classifier")
    labels = serializers.CharField(required=False, allow_blank=True, default="",
                                   help_text="Comma-separated, in output order.")


class LabelledSetForm(serializers.Serializer):
    file = serializers.FileField(help_text="CSV or XLSX, one document a row.")
    name = serializers.CharField(required=False, allow_blank=True, max_length=120, help_text="Default: the file name.")
    model = serializers.CharField(required=False, allow_blank=True, max_length=80)
    mapping = serializers.JSONField(required=False, binary=True,
                                    help_text='{"text": column, "label": column, "segments": [columns]}; guessed '
                                    "from the columns' names when omitted (as `preview` shows).")
    preview = serializers.BooleanField(required=False, default=False,
                                       help_text="Only read the file: its columns, first rows and the mapping "
                                       "guessed; nothing is saved.")


class PromotionRequestSerializer(serializers.Serializer):
    model = serializers.CharField(max_length=80)
    version = serializers.IntegerField(min_value=1, max_value=MAX_INT)
    alias = serializers.ChoiceField(choices=ALIASES, default="candidate")
    reason = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)
    labelled_set = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="", max_length=120)
    replay_size = serializers.IntegerField(required=False, min_value=0, max_value=5000, default=200)


class PromotionDecisionSerializer(serializers.Serializer):
    action = serializers.ChoiceField(choices=["approve", "reject", "cancel"])
    reason = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="", max_length=2000)
    acknowledge_label_change = serializers.BooleanField(
        required=False, default=False, help_text="Approving a version whose labels differ from what the alias gives "
        "today (see the request's `label_change`) changes every workflow on it: say so explicitly.")


class TrainSerializer(serializers.Serializer):
    labelled_set = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="", max_length=120)
    use_reviews = serializers.BooleanField(required=False, default=True)
    # Fixes the regularisation; left out, cross-validation chooses it.
    C = serializers.FloatField(required=False, default=None, allow_null=True, min_value=1e-6, max_value=1e6)


class OptimiseSerializer(serializers.Serializer):
    labelled_set = serializers.CharField(required=False, allow_blank=True, allow_null=True, default="", max_length=120)
    per_channel = serializers.BooleanField(required=False, default=True)
    fuse = serializers.BooleanField(required=False, default=False)


class ReviewLabelSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=120)


def parsed(serializer_class: type[serializers.Serializer], request: Request) -> dict[str, Any]:
    """The request body checked against its serializer, or a 400 that names each field to fix."""
    form = serializer_class(data=request.data)
    form.is_valid(raise_exception=True)
    return form.validated_data


def _labelled_set(name: str | None) -> LabelledSet | None:
    return LabelledSet.objects.filter(name=name).first() if name else None


def _bad(exc: ValidationError | str) -> Response:
    detail = " ".join(exc.messages) if isinstance(exc, ValidationError) else exc
    return Response({"detail": detail}, status=status.HTTP_400_BAD_REQUEST)


def version_json(v: ModelVersion, usage: list | None = None) -> dict[str, Any]:
    return {"id": v.pk, "ref": v.ref, "number": v.number, "sha256": v.sha256, "size": v.size, "source": v.source,
            "parent": v.parent.ref if v.parent_id else None, "runtime": v.runtime, "labels": v.labels,
            "metrics": v.metrics, "author": v.author.get_username() if v.author_id else None,
            "trained_by": v.trained_by.get_username() if v.trained_by_id else None, "created_at": v.created_at,
            "aliases": [a.name for a in v.aliases.all()], "licence": v.licence, "note": v.note,
            **({"used_by": version_usage(v, usage)} if usage is not None else {})}


def model_json(m: RegisteredModel, detail: bool = False, reader: Any = None) -> dict[str, Any]:
    """`reader`: whose workflows the usage lists (only those they may see)."""
    data = {"name": m.name, "kind": m.kind, "description": m.description, "licence": m.licence,
            "aliases": {a.name: a.version.ref for a in m.aliases.all()}}
    if detail:
        usage = workflows_using(m.name, None if reader is None else visible_workflows(reader))
        data["versions"] = [version_json(v, usage)
                            for v in m.versions.select_related("parent__model", "author", "trained_by", "model")
                            .prefetch_related("aliases")]
        data["workflows"] = [{"id": u["workflow"].pk, "name": u["workflow"].name, "version": u["version"],
                              "refs": u["refs"]}
                             for u in usage]
    return data


def promotion_json(r: PromotionRequest) -> dict[str, Any]:
    return {"id": r.pk, "version": r.version.ref, "model": r.version.model.name, "alias": r.alias, "status": r.status,
            "reason": r.reason, "requested_by": r.requested_by.get_username(), "created_at": r.created_at,
            "decided_by": r.decided_by.get_username() if r.decided_by_id else None, "decided_at": r.decided_at,
            "decision_reason": r.decision_reason,
            "previous_version": r.previous_version.ref if r.previous_version_id else None,
            "labelled_set": r.labelled_set.name if r.labelled_set_id else None,
            "evidence": evaluation.for_display(r.evidence) if r.evidence else r.evidence,
            "evidence_error": r.evidence_error,
            "label_change": promotion.label_change(r) if r.is_open else None,
            "label_change_acknowledged": r.label_change_acknowledged,
            "approval_blockers": promotion.approval_blockers(r) if r.is_open else []}


def job_json(j: ModelJob) -> dict[str, Any]:
    return {"id": j.pk, "kind": j.kind, "model": j.model.name,
            "base_version": j.base_version.ref if j.base_version_id else None, "status": j.status,
            "progress": j.progress, "message": j.message, "error": j.error, "report": j.report,
            "result_version": j.result_version.ref if j.result_version_id else None,
            "labelled_set": j.labelled_set.name if j.labelled_set_id else None,
            "created_by": j.created_by.get_username()}


@doc(operation_id="models_list", responses=ARRAY, description="Registered models with their aliases.")
@api_view(["GET"])
def model_list(request: Request) -> Response:
    require(request.user, "model.view")
    return Response([model_json(m) for m in RegisteredModel.objects.prefetch_related("aliases__version__model")])


@SCHEMA
@api_view(["GET"])
def model_detail(request: Request, name: str) -> Response:
    return Response(model_json(get_model_for_user(request.user, name), detail=True, reader=request.user))


@doc(request={"multipart/form-data": ModelImportForm}, responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
     description="Import an ONNX model (201; 200 when the same file is already registered). "
     "400 with `reasons` when the model is refused.")
@api_view(["POST"])
@parser_classes([MultiPartParser, FormParser])
def model_import(request: Request) -> Response:
    require(request.user, "model.train")
    form = parsed(ModelImportForm, request)
    labels = [x.strip() for x in form["labels"].split(",") if x.strip()]
    try:
        version, created, report = import_model(form["file"].read(), name=form["name"].lower(), kind=form["kind"],
                                                labels=labels, user=request.user)
    except ModelRejected as exc:
        return Response({"detail": gettext("The model was refused."), "refused": True,
                         "reasons": texts.translate_all(exc.reasons)},
                        status=status.HTTP_400_BAD_REQUEST)
    except ValidationError as exc:
        return _bad(exc)
    return Response({"version": version_json(version), "created": created, "report": report.to_json()},
                    status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


@doc(methods=["GET"], operation_id="labelled_sets_list", responses=ARRAY,
     description="Every labelled set (without items).")
@doc(methods=["POST"], operation_id="labelled_sets_create", request={"multipart/form-data": LabelledSetForm},
     responses={201: OpenApiTypes.OBJECT, 200: OpenApiTypes.OBJECT},
     description="Upload a labelled set (CSV or XLSX) with an optional column `mapping`; with `preview` the file is "
     "only read (200: columns, first rows, suggested mapping).")
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser, FormParser])
def labelled_sets(request: Request) -> Response:
    if request.method == "GET":
        require(request.user, "model.view")
        return Response([{"id": s.pk, "name": s.name, "items": len(s.items), "labels": s.labels, "source": s.source,
                          "model": s.model.name if s.model_id else None}
                         for s in LabelledSet.objects.select_related("model")])
    require(request.user, "model.train")
    form = parsed(LabelledSetForm, request)
    upload = form["file"]
    try:
        read = labelsets.read_file(upload.name, upload.read())
        if form["preview"]:
            suggested = labelsets.suggest(read)
            return Response({**read.preview(), "suggested_mapping": {
                "text": suggested.text or None, "label": suggested.label or None,
                "segments": list(suggested.segments)}})
        items = labelsets.items_from(read, labelsets.mapping_from(form.get("mapping")))
        labelled = labelsets.create_labelled_set(
            name=form["name"] or upload.name.rsplit(".", 1)[0], items=items, user=request.user,
            model=RegisteredModel.objects.filter(name=form["model"]).first() if form.get("model") else None)
    except ValidationError as exc:
        return _bad(exc)
    return Response({"id": labelled.pk, "name": labelled.name, "items": len(labelled.items), "labels": labelled.labels},
                    status=status.HTTP_201_CREATED)


@doc(methods=["GET"], operation_id="promotions_list", responses=ARRAY, description="Promotion requests, newest first.",
     parameters=[OpenApiParameter("status", str, description="`open`, or one status.")])
@doc(methods=["POST"], operation_id="promotions_create", request=PromotionRequestSerializer,
     responses={201: OpenApiTypes.OBJECT}, description="Request a promotion (version → alias).")
@api_view(["GET", "POST"])
def promotions(request: Request) -> Response:
    if request.method == "GET":
        require(request.user, "model.view")
        found = PromotionRequest.objects.select_related("version__model", "requested_by", "decided_by", "labelled_set",
                                                        "previous_version__model")
        wanted = text_query(request).get("status")
        if wanted == "open":
            found = found.filter(status__in=PromotionRequest.OPEN)
        elif wanted:
            found = found.filter(status=wanted)
        return Response([promotion_json(r) for r in found[:200]])
    require(request.user, "promotion.request")
    form = parsed(PromotionRequestSerializer, request)
    version = (ModelVersion.objects.select_related("model")
               .filter(model__name=form["model"], number=form["version"]).first())
    if version is None:
        raise serializers.ValidationError({"version": gettext("There is no version %(number)s of a model named "
                                                              "'%(name)s'.")
                                                      % {"number": form["version"], "name": form["model"]}})
    try:
        created = promotion.request_promotion(version, form["alias"], user=request.user, reason=form["reason"],
                                              labelled_set=_labelled_set(form["labelled_set"]),
                                              replay_size=form["replay_size"])
    except ValidationError as exc:
        return _bad(exc)
    return Response(promotion_json(created), status=status.HTTP_201_CREATED)


@SCHEMA
@api_view(["GET"])
def promotion_detail(request: Request, pk: int) -> Response:
    return Response(promotion_json(get_promotion_for_user(request.user, pk)))


@doc(request=PromotionDecisionSerializer, responses={200: OpenApiTypes.OBJECT, 409: CONFLICT},
     description="Approve, reject or cancel. Four eyes are enforced here as on the page (403 with why).")
@api_view(["POST"])
def promotion_decide(request: Request, pk: int) -> Response:
    req = get_promotion_for_user(request.user, pk)
    if not promotion.may_act(req, request.user):
        raise deny(request.user, "promotion.approve", req)  # before reading the body: only validators and the requester
    form = parsed(PromotionDecisionSerializer, request)
    action, reason = form["action"], form["reason"] or ""
    try:
        if action == "approve":
            req = promotion.approve(req, user=request.user, reason=reason,
                                    acknowledge_label_change=form["acknowledge_label_change"])
        elif action == "reject":
            req = promotion.reject(req, user=request.user, reason=reason)
        else:
            req = promotion.cancel(req, user=request.user)
    except ValidationError as exc:
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
    return Response(promotion_json(PromotionRequest.objects.get(pk=req.pk)))


def _start_job(request: Request, start: Callable[..., ModelJob], target: Any,
               serializer_class: type[serializers.Serializer]) -> Response:
    """A training or optimisation job on `target` (a model or a version), answered at once: the role is
    checked before the body is read; the serializer's fields are `start`'s keyword arguments."""
    require(request.user, "model.train", target)
    options = dict(parsed(serializer_class, request))
    try:
        job = start(target, user=request.user, labelled_set=_labelled_set(options.pop("labelled_set")), **options)
    except ValidationError as exc:
        return _bad(exc)
    return Response(job_json(job), status=status.HTTP_202_ACCEPTED)


@doc(request=TrainSerializer, responses={202: OpenApiTypes.OBJECT},
     description="Train a new head: answers the job at once (poll /api/jobs/{id}/).")
@api_view(["POST"])
def model_train(request: Request, name: str) -> Response:
    return _start_job(request, training.start_training, get_model_for_user(request.user, name), TrainSerializer)


@doc(request=OptimiseSerializer, responses={202: OpenApiTypes.OBJECT},
     description="Quantise a version to int8 as a new candidate: answers the job at once.")
@api_view(["POST"])
def model_optimise(request: Request, name: str, number: int) -> Response:
    return _start_job(request, optimise.start_optimise, get_version_for_user(request.user, name, number),
                      OptimiseSerializer)


@SCHEMA
@api_view(["GET"])
def job_detail(request: Request, pk: int) -> Response:
    return Response(job_json(get_job_for_user(request.user, pk)))


@doc(parameters=[OpenApiParameter("queue", str),
                 OpenApiParameter("kind", str, description="'escalation' or 'spot_check'; both when absent.")],
     description="Items waiting for review, each with the model's label and its alternatives, every output the "
                 "line produced so far (extracted fields, summary, drafted answer) and a large model's suggestion; "
                 "live accuracy per node on escalations and on spot checks, apart.")
@api_view(["GET"])
def review_tasks(request: Request) -> Response:
    require(request.user, "review.work")
    query = text_query(request)
    tasks = restrict(review.open_tasks(query.get("queue") or "", review.kind_of(query.get("kind"))), request.user,
                     "review.work", "run__workflow__team")
    views = review.task_views(tasks[:200])
    seen = visible_workflow_ids(request.user, "review.work")
    accuracy = [a for a in live_accuracy() if seen is None or a.workflow_id in seen]
    return Response({"tasks": [v.as_json() for v in views], "accuracy": [a.as_json() for a in accuracy],
                     "accuracy_window_days": settings.ACCURACY_WINDOW_DAYS})


@doc(request=ReviewLabelSerializer, responses={200: OpenApiTypes.OBJECT, 409: CONFLICT},
     description="Accept (the proposal) or correct the label, and correct any output: `fields` (an object of "
                 "extracted fields, each a text or a list of texts; empty removes), `summary`, `answer`. Each "
                 "correction becomes a label; an escalated item resumes downstream with the corrected values, a "
                 "spot check is only recorded. An output this item does not have is refused, by name.")
@api_view(["POST"])
def review_label(request: Request, pk: int) -> Response:
    task = get_review_task_for_user(request.user, pk)
    form = parsed(ReviewLabelSerializer, request)
    try:
        _, fields, texts, extra = review.decision_body(request.data)
        decided = review.decide_task(task, user=request.user, label=form["label"], fields=fields, texts=texts,
                                     extra=extra)
    except ValidationError as exc:
        return _bad(exc)
    if decided is None or decided.label is None:
        return Response({"detail": gettext("This item was already decided.")}, status=status.HTTP_409_CONFLICT)
    label = decided.label
    return Response({"task": task.pk, "label": label.label, "predicted": label.predicted, "corrected": label.corrected,
                     "corrections": [c.field for c in decided.corrections]})


@doc(responses=ARRAY)
@api_view(["GET"])
def drift_report(request: Request) -> Response:
    require(request.user, "model.view")
    seen = visible_workflow_ids(request.user)
    return Response([asdict(d) | {"alert": d.alert} for d in drift.report() if seen is None or d.workflow_id in seen])


@doc(responses=ARRAY, parameters=[OpenApiParameter("action", str, description="Actions starting with this."),
                                  OpenApiParameter("actor", str)])
@api_view(["GET"])
def audit_list(request: Request) -> Response:
    require(request.user, "audit.view")
    entries = AuditEntry.objects.order_by("-id")
    query = text_query(request)
    if query.get("action"):
        entries = entries.filter(action__startswith=query["action"])
    if query.get("actor"):
        entries = entries.filter(actor_name=query["actor"])
    return Response([{"id": e.pk, "at": e.at, "actor": e.actor_name, "action": e.action, "object_type": e.object_type,
                      "object_id": e.object_id, "data": e.data, "prev_hash": e.prev_hash, "hash": e.hash}
                     for e in entries[:500]])


@SCHEMA
@api_view(["POST"])
def audit_verify(request: Request) -> Response:
    require(request.user, "audit.view")
    count, broken, why = verify_chain_for(request.user)
    return Response({"ok": not why, "checked": count, "broken": broken.pk if broken else None, "why": why})
