"""REST API for business KPIs: per workflow and across workflows, the baseline, the what-if, packs.
Thin: parse, authorise (workflows/kpi/readers.py decides who sees which workflow), call the readers;
signing a pack goes through workflows/kpi/pack.py `sign`, as the page does."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils.translation import gettext, gettext_noop
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.access import get_kpi_workflow, kpi_workflows
from workflows.formats import LocaleDecimalSerializerField
from workflows.kpi import isoweeks, readers
from workflows.kpi import pack as packs
from workflows.kpi.baseline import save_baseline
from workflows.models import Baseline, WeeklyPack
from workflows.roles import require

from .schema import ARRAY, CONFLICT

WEEK = OpenApiParameter("week", str, description="ISO week such as 2025-W14, in the installation's time zone "
                        "(TIME_ZONE, Europe/Rome by default); default: this week.")


def _plain(data: Any) -> Any:
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def _week(request: Request) -> date:
    text = request.query_params.get("week")
    monday = isoweeks.parse_week(text)
    if text and monday is None:
        raise serializers.ValidationError({"week": gettext("Write the week as 2025-W14.")})
    return monday or isoweeks.current_week()


class BaselineSerializer(serializers.ModelSerializer):
    # Strings are read like the form's input ("28,50" is 28.5); JSON numbers as they are.
    serializer_field_mapping = {**serializers.ModelSerializer.serializer_field_mapping,
                                models.DecimalField: LocaleDecimalSerializerField}

    class Meta:
        model = Baseline
        fields = [*Baseline.FIELDS, "updated_at"]
        read_only_fields = ["updated_at"]


@extend_schema(parameters=[WEEK], responses=dict)
@api_view(["GET"])
def kpi_overview(request: Request) -> Response:
    require(request.user, "kpi.view")
    monday = _week(request)
    workflows = list(kpi_workflows(request.user).filter(archived=False).order_by("name", "id"))
    if not workflows:
        return Response({"week": isoweeks.week_label(monday), "workflows": [], "cards": []})
    data = readers.dashboard(workflows, monday, across=True)
    rows = [{"id": r["workflow"].pk, "name": r["workflow"].name, "has_baseline": r["has_baseline"], **r["summary"]}
            for r in data["rows"]]
    return Response(_plain({"week": data["week_label"], "cards": data["cards"], "trend": data["trend"],
                            "workflows": rows}))


@extend_schema(parameters=[WEEK], responses=dict)
@api_view(["GET"])
def workflow_kpis(request: Request, pk: int) -> Response:
    workflow = get_kpi_workflow(request.user, pk)
    data = readers.dashboard([workflow], _week(request))
    return Response(_plain({"workflow": workflow.pk, "week": data["week_label"], "baseline": data["baseline"],
                            "cards": data["cards"], "summary": data["summary"], "trend": data["trend"],
                            "learning": data["learning"]}))


@extend_schema(request=BaselineSerializer, responses=BaselineSerializer)
@api_view(["GET", "PUT"])
def kpi_baseline(request: Request, pk: int) -> Response:
    workflow = get_kpi_workflow(request.user, pk, "kpi.view" if request.method == "GET" else "baseline.edit")
    current = Baseline.objects.filter(workflow=workflow).first()
    if request.method == "GET":
        if current is None:
            return Response({"detail": gettext("No baseline yet.")}, status=status.HTTP_404_NOT_FOUND)
        return Response(BaselineSerializer(current).data)
    serializer = BaselineSerializer(current, data=request.data)
    serializer.is_valid(raise_exception=True)
    baseline = save_baseline(workflow, serializer.validated_data, user=request.user)
    return Response(BaselineSerializer(baseline).data)


@extend_schema(parameters=[WEEK, OpenApiParameter("node", str), OpenApiParameter("threshold", float)], responses=dict)
@api_view(["GET"])
def kpi_what_if(request: Request, pk: int) -> Response:
    workflow = get_kpi_workflow(request.user, pk)
    data = readers.dashboard([workflow], _week(request))
    nodes = [f["node"] for f in data["summary"]["funnel"]]
    node = request.query_params.get("node") or (nodes[0] if nodes else "")
    try:
        threshold = float(request.query_params.get("threshold", "0.8"))
    except ValueError:
        threshold = -1.0
    if not 0 <= threshold <= 1:
        raise serializers.ValidationError({"threshold": gettext("A number from 0 to 1.")})
    result = readers.what_if(data["facts"], data["baseline"], node, threshold)
    if result is None:
        return Response({"detail": gettext("No cascade decisions at '%(node)s' that week.") % {"node": node},
                         "nodes": nodes},
                        status=status.HTTP_404_NOT_FOUND)
    return Response(_plain(result))


@extend_schema(responses=ARRAY, description="The signed weekly review packs, newest first.")
@api_view(["GET"])
def kpi_packs(request: Request, pk: int) -> Response:
    workflow = get_kpi_workflow(request.user, pk)
    signed = WeeklyPack.objects.filter(workflow=workflow).select_related("signed_by")
    return Response(_plain([_pack_json(p) for p in signed]))


def _pack_json(pack: WeeklyPack) -> dict[str, Any]:
    return {"week": f"{pack.iso_year}-W{pack.iso_week:02d}", "signed_by": pack.signed_by.get_username(),
            "signed_at": pack.signed_at, "sha256": pack.sha256, "partial_week": pack.partial_week,
            "intact": pack.intact}


class PackSignSerializer(serializers.Serializer):
    note = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000,
                                 help_text="Kept with the signed pack.")
    partial = serializers.BooleanField(required=False, default=False,
                                       help_text="Sign a week that is not over yet, with its numbers as they are now.")


# What to do about each refusal of packs.sign, said after its own message (translated where it is said).
SIGN_HINTS = {
    packs.WEEK_NOT_OVER: gettext_noop('Send "partial": true to sign the numbers as they are now, or sign once the '
                                      "week is over."),
    packs.ALREADY_SIGNED: gettext_noop("The signed pack is listed at GET /api/workflows/%(pk)s/kpis/packs/."),
}


@extend_schema(request=PackSignSerializer, responses={201: OpenApiTypes.OBJECT, 409: CONFLICT},
               parameters=[OpenApiParameter("week", str, OpenApiParameter.PATH,
                                            description="ISO week such as 2025-W13, in the installation's time zone "
                                                        "(TIME_ZONE, Europe/Rome by default).")],
               description="Sign the week's review pack, as the pack page does (business owners only): its content "
                           "is frozen with its sha256 and the signature audited. Refused with 409: a week already "
                           "signed, or a week not over yet without `partial`.")
@api_view(["POST"])
def kpi_pack_sign(request: Request, pk: int, week: str) -> Response:
    workflow = get_kpi_workflow(request.user, pk, "pack.sign")
    monday = isoweeks.parse_week(week)
    if monday is None:
        raise serializers.ValidationError({"week": gettext("Write the week as 2025-W14.")})
    form = PackSignSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    try:
        pack = packs.sign(workflow, monday, user=request.user, note=form.validated_data["note"],
                          partial_ok=form.validated_data["partial"])
    except ValidationError as exc:
        hint = gettext(SIGN_HINTS[exc.code]) % {"pk": workflow.pk} if exc.code in SIGN_HINTS else ""
        return Response({"detail": " ".join([*exc.messages, hint]).strip(), "code": exc.code},
                        status=status.HTTP_409_CONFLICT)
    return Response(_plain(_pack_json(pack)), status=status.HTTP_201_CREATED)
