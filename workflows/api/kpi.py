"""REST API for business KPIs: per workflow and across workflows, the baseline, the what-if, packs.
Thin: parse, authorise (workflows/kpis.py decides who sees which workflow), call the readers."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workflows import kpi_rollup as rollup
from workflows import kpis
from workflows.models import Baseline, WeeklyPack
from workflows.models.audit import record
from workflows.roles import require

from .schema import ARRAY

WEEK = OpenApiParameter("week", str, description="ISO week such as 2025-W14 (Europe/Rome); default: this week.")


def _plain(data: Any) -> Any:
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _week(request: Request):
    text = request.query_params.get("week")
    monday = rollup.parse_week(text)
    if text and monday is None:
        raise serializers.ValidationError({"week": "Write the week as 2025-W14."})
    return monday or rollup.current_week()


class BaselineSerializer(serializers.ModelSerializer):
    class Meta:
        model = Baseline
        fields = [*Baseline.FIELDS, "updated_at"]
        read_only_fields = ["updated_at"]


@extend_schema(parameters=[WEEK], responses=dict)
@api_view(["GET"])
def kpi_overview(request: Request) -> Response:
    require(request.user, "kpi.view")
    monday = _week(request)
    workflows = list(kpis.kpi_workflows(request.user).filter(archived=False).order_by("name", "id"))
    if not workflows:
        return Response({"week": rollup.week_label(monday), "workflows": [], "cards": []})
    data = kpis.dashboard(workflows, monday, across=True)
    rows = [{"id": r["workflow"].pk, "name": r["workflow"].name, "has_baseline": r["has_baseline"], **r["summary"]} for r in data["rows"]]
    return Response(_plain({"week": data["week_label"], "cards": data["cards"], "trend": data["trend"], "workflows": rows}))


@extend_schema(parameters=[WEEK], responses=dict)
@api_view(["GET"])
def workflow_kpis(request: Request, pk: int) -> Response:
    workflow = kpis.get_kpi_workflow(request.user, pk)
    data = kpis.dashboard([workflow], _week(request))
    return Response(_plain({"workflow": workflow.pk, "week": data["week_label"], "baseline": data["baseline"],
                            "cards": data["cards"], "summary": data["summary"], "trend": data["trend"]}))


@extend_schema(request=BaselineSerializer, responses=BaselineSerializer)
@api_view(["GET", "PUT"])
def kpi_baseline(request: Request, pk: int) -> Response:
    workflow = kpis.get_kpi_workflow(request.user, pk, "kpi.view" if request.method == "GET" else "baseline.edit")
    current = Baseline.objects.filter(workflow=workflow).first()
    if request.method == "GET":
        if current is None:
            return Response({"detail": "No baseline yet."}, status=status.HTTP_404_NOT_FOUND)
        return Response(BaselineSerializer(current).data)
    serializer = BaselineSerializer(current, data=request.data)
    serializer.is_valid(raise_exception=True)
    before = current.as_dict() if current else None
    baseline = serializer.save(workflow=workflow, updated_by=request.user, updated_at=timezone.now())
    record("kpi.baseline", actor=request.user, obj=workflow, before=before, after=baseline.as_dict())
    return Response(BaselineSerializer(baseline).data)


@extend_schema(parameters=[WEEK, OpenApiParameter("node", str), OpenApiParameter("threshold", float)], responses=dict)
@api_view(["GET"])
def kpi_what_if(request: Request, pk: int) -> Response:
    workflow = kpis.get_kpi_workflow(request.user, pk)
    data = kpis.dashboard([workflow], _week(request))
    nodes = [f["node"] for f in data["summary"]["funnel"]]
    node = request.query_params.get("node") or (nodes[0] if nodes else "")
    try:
        threshold = float(request.query_params.get("threshold", "0.8"))
    except ValueError:
        threshold = -1.0
    if not 0 <= threshold <= 1:
        raise serializers.ValidationError({"threshold": "A number from 0 to 1."})
    result = kpis.what_if(data["facts"], data["baseline"], node, threshold)
    if result is None:
        return Response({"detail": f"No cascade decisions at '{node}' that week.", "nodes": nodes}, status=status.HTTP_404_NOT_FOUND)
    return Response(_plain(result))


@extend_schema(responses=ARRAY, description="The signed weekly review packs, newest first.")
@api_view(["GET"])
def kpi_packs(request: Request, pk: int) -> Response:
    workflow = kpis.get_kpi_workflow(request.user, pk)
    packs = WeeklyPack.objects.filter(workflow=workflow).select_related("signed_by")
    return Response(_plain([{"week": f"{p.iso_year}-W{p.iso_week:02d}", "signed_by": p.signed_by.get_username(),
                             "signed_at": p.signed_at, "sha256": p.sha256, "partial_week": p.partial_week, "intact": p.intact}
                            for p in packs]))
