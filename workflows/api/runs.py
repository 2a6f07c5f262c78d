"""REST API for runs: start (upload or JSON items), intake, list, detail, results, trace, export,
cancel, retry dead letters, and deciding a review task. Thin: parse, authorise, call engine code."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.access import get_review_task_for_user, get_run_for_user, get_workflow_for_user, restrict
from workflows.design.texts import status_label
from workflows.engine import documents, launch
from workflows.engine import mapping as mapping_guess
from workflows.engine.intake import MAX_CELL_CHARS, IntakeError, json_loads, oversized_fields
from workflows.engine.results import (
    FilterError,
    item_trace,
    node_rows,
    results_queryset,
    table_page,
)
from workflows.exports import export_response, original_response
from workflows.governance import review
from workflows.models import Run
from workflows.models.review import ReviewTask
from workflows.roles import require

from .errors import text_query
from .parsers import BoundedJSONParser
from .serializers import MAX_INT


class RunSerializer(serializers.ModelSerializer):
    workflow_name = serializers.CharField(source="workflow.name", read_only=True)
    version_number = serializers.IntegerField(source="version.number", read_only=True)
    progress = serializers.FloatField(read_only=True)

    class Meta:
        model = Run
        fields = ["id", "workflow", "workflow_name", "version_number", "draft", "status", "origin", "is_live",
                  "source_node", "resolved_models", "shard_size", "batch_size", "input_name", "items_total",
                  "items_done", "items_dead", "items_parked", "progress", "error", "created_at", "started_at",
                  "finished_at"]


class ItemsSerializer(serializers.Serializer):
    items = serializers.ListField(child=serializers.DictField(), min_length=1,
                                  help_text="Each item a JSON object, e.g. {\"text\": \"…\", \"subject\": \"…\"}.")

    def validate_items(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        long = oversized_fields(items)
        if long:
            said = "; ".join(gettext("item %(item)s: '%(field)s'") % {"item": i, "field": field}
                             for i, field in long[:20])
            raise serializers.ValidationError(
                gettext("Text longer than %(limit)s characters (%(items)s): split such a document into parts (an "
                        "uploaded file has the same limit per cell).")
                % {"limit": f"{MAX_CELL_CHARS:,}", "items": said + (" …" if len(long) > 20 else "")})
        return items


class RunStartSerializer(ItemsSerializer):
    version = serializers.IntegerField(required=False, min_value=1, max_value=MAX_INT,
                                       help_text="A test run of this version (a draft: designers only); "
                                       "default: the live version.")



def _mapping(raw: Any) -> dict[str, str] | None:
    if raw in (None, "", {}):
        return None
    if isinstance(raw, str):
        try:
            raw = json_loads(raw)
        except ValueError as exc:
            raise serializers.ValidationError(
                {"mapping": gettext("Must be a JSON object {item field: column}: %(error)s.") % {"error": exc}}
            ) from None
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise serializers.ValidationError({"mapping": gettext("Must map item field names to column names.")})
    return raw


def _start_error(exc: launch.StartError) -> Response:
    return Response({"detail": gettext("The run cannot start."), "problems": exc.problems},
                    status=status.HTTP_400_BAD_REQUEST)


def _intake_error(exc: IntakeError) -> Response:
    return Response({"detail": exc.message, "rows": exc.rows[:100], "imported": 0}, status=status.HTTP_400_BAD_REQUEST)


@extend_schema(methods=["GET"], operation_id="workflows_runs_list", responses=RunSerializer(many=True),
               description="The workflow's runs, newest first (at most 100).")
@extend_schema(methods=["POST"], operation_id="workflows_runs_create", request={
    "multipart/form-data": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"},
                                                             "mapping": {"type": "string"},
                                                             "pages_per_document": {"type": "integer", "minimum": 0},
                                                             "version": {"type": "integer", "minimum": 1}},
                            "required": ["file"]},
    "application/json": RunStartSerializer}, responses={201: RunSerializer},
    description="Start a run: upload a CSV, JSONL or XLSX file (optional `mapping` JSON {item field: column}), "
    "or documents — a PDF, a PNG, JPEG or TIFF image, a ZIP of them, a FatturaPA XML or P7M e-invoice — each "
    "an item with `text`, `file_name`, `pages` and `original` (optional `pages_per_document`: 1 for one item "
    "per page, N for every N pages; pages without a text layer are read by OCR before the first station), "
    "or send JSON {\"items\": [...]}. All items are imported or none. The run is of the live (published) "
    "version; `version` asks for a test run of another one (a draft run: designers only).")
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser, FormParser, BoundedJSONParser])
def workflow_runs(request: Request, pk: int) -> Response:
    if request.method == "GET":
        workflow = get_workflow_for_user(request.user, pk)
        require(request.user, "run.view", workflow)
        return Response(RunSerializer(workflow.runs.select_related("workflow", "version")[:100], many=True).data)
    workflow = get_workflow_for_user(request.user, pk, "run.start")
    upload = request.FILES.get("file")
    try:
        version = launch.test_version(workflow, request.data.get("version"), user=request.user)
        if upload is not None:  # over the cap, UploadCapHandler refused it; intake.parse checks again
            mapping = _mapping(request.data.get("mapping"))
            split = documents.pages_per_document(request.data.get("pages_per_document"))
            _, items = documents.load_upload(upload.read(), upload.name, mapping, launch.source_fields(workflow),
                                             pages_per_document=split)
            name, origin = upload.name, "upload"
        else:
            data = ItemsSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            items, name, origin = data.validated_data["items"], "", "api"
            mapping = _mapping(request.data.get("mapping"))
        run = launch.create_run(workflow, user=request.user, items=items, origin=origin, input_name=name,
                                mapping=mapping or {}, version=version)
    except IntakeError as exc:
        return _intake_error(exc)
    except launch.StartError as exc:
        return _start_error(exc)
    return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


@extend_schema(request={"multipart/form-data": {"type": "object",
                                                "properties": {"file": {"type": "string", "format": "binary"},
                                                               "pages_per_document": {"type": "integer",
                                                                                      "minimum": 0}}}},
               responses=OpenApiTypes.OBJECT,
               description="Preview an upload: detected format, encoding, delimiter, columns and the first rows, "
               "and `suggested_mapping` {item field: column} guessed from the columns' names and values (a field "
               "no column fits is left out; a column of identifiers is never suggested for text). For documents: "
               "`format` \"documents\", `documents` (name, pages, the start of the text, `ocr_pages` to read by "
               "OCR), `total`, `pages`, `ocr_pages`.")
@api_view(["POST"])
@parser_classes([MultiPartParser])
def upload_preview(request: Request, pk: int) -> Response:
    workflow = get_workflow_for_user(request.user, pk, "run.start")
    upload = request.FILES.get("file")
    if upload is None:
        return Response({"detail": gettext("Attach the file as 'file'.")}, status=status.HTTP_400_BAD_REQUEST)
    fields = launch.source_fields(workflow)
    try:
        split = documents.pages_per_document(request.data.get("pages_per_document"))
        parsed = documents.preview_upload(upload.read(), upload.name, pages_per_document=split, required=fields)
    except IntakeError as exc:
        return _intake_error(exc)
    if isinstance(parsed, documents.Upload):
        return Response(parsed.preview())
    sample = [values for _, values in parsed.rows[: mapping_guess.SAMPLE_ROWS]]
    choices = mapping_guess.guess(fields, parsed.columns, sample)
    return Response({**parsed.preview(), "suggested_mapping": {c.field: c.column for c in choices if c.column}})


@extend_schema(request=ItemsSerializer, responses={202: OpenApiTypes.OBJECT},
               description="REST intake: items join the workflow's live run; returns their ids.")
@api_view(["POST"])
def intake(request: Request, pk: int) -> Response:
    workflow = get_workflow_for_user(request.user, pk, "run.start")
    data = ItemsSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    items = data.validated_data["items"]
    if len(items) > settings.ENGINE_INTAKE_MAX_ITEMS:
        return Response({"detail": gettext("Send at most %(limit)s items per request.")
                                   % {"limit": settings.ENGINE_INTAKE_MAX_ITEMS}}, status=400)
    fields = launch.source_fields(workflow, "rest")  # one query, not one per item
    lacking = {i: [f for f in fields if not (isinstance(item.get(f), str) and item.get(f))]
               for i, item in enumerate(items)}
    missing = [i for i, gaps in lacking.items() if gaps]
    if missing:
        said = "; ".join(gettext("item %(item)s lacks %(fields)s") % {"item": i, "fields": ", ".join(lacking[i])}
                         for i in missing[:20])
        return Response({"detail": gettext("%(items)s. Every item needs non-empty text in %(fields)s (the fields of "
                                           "the workflow's REST source).")
                         % {"items": said + (" …" if len(missing) > 20 else ""), "fields": ", ".join(fields)},
                         "rows": missing[:100]}, status=status.HTTP_400_BAD_REQUEST)
    try:
        run, ids = launch.append_to_live_run(workflow, items, user=request.user)
    except launch.StartError as exc:
        return _start_error(exc)
    return Response({"run": run.pk, "item_ids": ids}, status=status.HTTP_202_ACCEPTED)


@extend_schema(responses=RunSerializer(many=True))
@api_view(["GET"])
def run_list(request: Request) -> Response:
    require(request.user, "run.view")
    runs = restrict(Run.objects.select_related("workflow", "version"), request.user, "run.view")[:200]
    return Response(RunSerializer(runs, many=True).data)


@extend_schema(responses=RunSerializer)
@api_view(["GET"])
def run_detail(request: Request, pk: int) -> Response:
    run = get_run_for_user(request.user, pk)
    data = RunSerializer(run).data
    data["nodes"] = node_rows(run)
    data["dead_letters"] = list(run.dead_letters.filter(retried_at__isnull=True).values(
        "id", "item_id", "item__seq", "node", "reason", "error_code", "attempts", "created_at")[:200])
    return Response(data)


@extend_schema(request=None, responses=RunSerializer)
@api_view(["POST"])
def run_cancel(request: Request, pk: int) -> Response:
    run = get_run_for_user(request.user, pk, "run.start")
    if not launch.cancel_run(run, user=request.user):
        return Response({"detail": gettext("The run is %(status)s; only a run that has not finished can be cancelled.")
                                   % {"status": status_label(run.status)}},
                        status=status.HTTP_409_CONFLICT)
    run.refresh_from_db()
    return Response(RunSerializer(run).data)


@extend_schema(request=None, responses=OpenApiTypes.OBJECT, description="Retry every dead letter of the run.")
@api_view(["POST"])
def run_retry(request: Request, pk: int) -> Response:
    run = get_run_for_user(request.user, pk, "run.start")
    try:
        count = launch.retry_dead_letters(run, user=request.user)
    except launch.StartError as exc:
        return _start_error(exc)
    return Response({"retried": count})


@extend_schema(parameters=[OpenApiParameter("status", str), OpenApiParameter("label", str),
                           OpenApiParameter("node", str),
                           OpenApiParameter("q", str, description="An item number, `id:<item id>`, or text anywhere "
                                            "in the item or a node's output."),
                           OpenApiParameter("field", str, description="With `value`: a field (dotted, e.g. "
                                            "fields.email) of the item or of a node's output that contains `value`."),
                           OpenApiParameter("value", str),
                           OpenApiParameter("conf_min", str, description="A node's confidence at least this (0 to "
                                            "1; with `node`, that node's)."),
                           OpenApiParameter("conf_max", str, description="A node's confidence at most this."),
                           OpenApiParameter("sort", str, description="A column key as in `columns` (`seq`, "
                                            "`status`, `text`, `cls:confidence`, `route:@route`, `rev:@by`), "
                                            "`-` first for descending."),
                           OpenApiParameter("offset", int), OpenApiParameter("limit", int)],
               responses=OpenApiTypes.OBJECT, description="Results as the results page shows them: items with their "
               "status, payload and `cells` (a value per column: input fields and each node's outputs), paged.")
@api_view(["GET"])
def run_items(request: Request, pk: int) -> Response:
    run = get_run_for_user(request.user, pk)
    try:
        queryset = results_queryset(run, text_query(request))
    except FilterError as exc:
        raise serializers.ValidationError({"detail": str(exc)}) from None
    try:
        offset = min(max(0, int(request.query_params.get("offset", 0))), MAX_INT)
        limit = min(500, max(1, int(request.query_params.get("limit", 50))))
    except ValueError:
        raise serializers.ValidationError({"detail": gettext("offset and limit are whole numbers.")}) from None
    table = table_page(run, list(queryset[offset : offset + limit]))
    rows = [{"id": r["item"].pk, "seq": r["item"].seq, "status": r["item"].status, "payload": r["item"].payload,
             "finished_at": r["item"].finished_at, "cells": r["cells"]} for r in table["rows"]]
    return Response({"count": queryset.count(), "offset": offset,
                     "columns": [c["column"].key for c in table["columns"]], "results": rows})


@extend_schema(responses=OpenApiTypes.OBJECT, operation_id="runs_item_trace",
               description="One item's trace: every decision in plan order, reviews and dead letters.")
@api_view(["GET"])
def run_item(request: Request, pk: int, item_id: int) -> Response:
    run = get_run_for_user(request.user, pk)
    trace = item_trace(run, item_id)
    original = documents.item_original(run, trace["payload"])
    if original is not None:  # a document: where its file can be downloaded
        trace["original"] = {"sha256": original.sha256, "name": original.name,
                             "url": reverse("api-run-original", args=[run.pk, original.sha256])}
    return Response(trace)


@extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
               description="The original file of one of the run's documents (the `original` of an item), "
                           "as an attachment.")
@api_view(["GET"])
def run_original(request: Request, pk: int, sha256: str) -> FileResponse:
    return original_response(get_run_for_user(request.user, pk), sha256)


@extend_schema(parameters=[OpenApiParameter("as", str, enum=["csv", "xlsx", "jsonl"],
                                            description="File format (not `format`: DRF reserves it)"),
                           OpenApiParameter("node", str),
                           OpenApiParameter("dialect", str, enum=["it", "en"],
                                            description="CSV only: 'it' (; and decimal comma) or 'en' (, and "
                                                        "decimal point); default from Accept-Language")],
               responses={(200, "text/csv"): OpenApiTypes.BINARY, (200, "application/jsonl"): OpenApiTypes.BINARY,
                          (200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"):
                              OpenApiTypes.BINARY})
@api_view(["GET"])
def run_export(request: Request, pk: int) -> StreamingHttpResponse:
    run = get_run_for_user(request.user, pk)
    query = text_query(request)  # checked before the download starts: a failure inside the stream would truncate it
    return export_response(run, query.get("as", "csv"), query.get("node") or None, query.get("dialect") or None)


class ReviewDecisionSerializer(serializers.Serializer):
    label = serializers.CharField(required=False, allow_blank=True, max_length=120)
    fields = serializers.DictField(required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=2000)


@extend_schema(request=ReviewDecisionSerializer, responses=OpenApiTypes.OBJECT,
               description="Decide a review task: `label` (accept the proposal or correct it), and any output to "
                           "correct: `fields` (an object of extracted fields, each a text or a list of texts; empty "
                           "removes), `summary`, `answer`. An escalated item resumes downstream with the corrected "
                           "values; a spot check is only recorded. Corrections need the label too; an output this "
                           "item does not have is refused, by name.")
@api_view(["POST"])
def review_decide(request: Request, pk: int) -> Response:
    task = get_review_task_for_user(request.user, pk)
    data = ReviewDecisionSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    label = data.validated_data.get("label")
    try:
        # Every key but label, fields and note names a text output (summary, answer): a misspelt one is
        # refused, not ignored.
        _, fields, texts, extra = review.decision_body(request.data)
        decided = None
        if label or fields or texts or task.kind == ReviewTask.SPOT_CHECK:
            # A label is a correction or an acceptance: it becomes a Label row (training data, live
            # accuracy), and so does each corrected output.
            decided = review.decide_task(task, user=request.user, label=label or "", extra=extra, fields=fields,
                                         texts=texts)
            if decided is None:
                return Response({"detail": gettext("This item was already decided.")},
                                status=status.HTTP_409_CONFLICT)
    except DjangoValidationError as exc:
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    if decided is not None:
        return Response({"decided": task.pk, "label": decided.label.label, "corrected": decided.label.corrected,
                         "corrections": [c.field for c in decided.corrections]})
    if not launch.decide_review(task, user=request.user, result=extra):
        return Response({"detail": gettext("This item was already decided.")}, status=status.HTTP_409_CONFLICT)
    return Response({"decided": task.pk})
