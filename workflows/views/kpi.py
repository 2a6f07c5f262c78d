"""KPI pages: across workflows, one workflow's dashboard, its baseline, and its weekly packs.

Who sees what is decided in workflows/access.py (`kpi_workflows`, `get_kpi_workflow`); signing a
pack goes through workflows/kpi/pack.py `sign`, as the API does.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from workflows.access import get_kpi_workflow, kpi_workflows
from workflows.formats import LocaleDecimalField
from workflows.kpi import isoweeks, readers, rollup
from workflows.kpi import pack as packs
from workflows.kpi.baseline import save_baseline
from workflows.models import Baseline, KpiWeek, WeeklyPack
from workflows.roles import can, require


class BaselineForm(forms.ModelForm):
    """Every figure reads "28,50" and "28.50" alike (workflows/formats.py); labels and help in the
    user's language (the model's verbose names stay English: they are the admin's and migrations')."""

    class Meta:
        model = Baseline
        fields = list(Baseline.FIELDS)
        field_classes = dict.fromkeys(Baseline.FIELDS, LocaleDecimalField)
        labels = {
            "manual_minutes": _("Manual minutes per document"),
            "hourly_cost": _("Hourly cost (€/hour)"),
            "manual_accuracy": _("Manual accuracy (%)"),
            "manual_cycle_hours": _("Manual cycle time (hours)"),
            "sla_hours": _("SLA target (hours)"),
            "review_minutes": _("Review minutes per item"),
            "compute_eur_per_cpu_hour": _("Compute cost (€/CPU-hour)"),
            "large_model_eur_per_1k_tokens": _("Large-model price (€/1k tokens)"),
            "grid_g_co2_per_kwh": _("Grid factor (g CO₂/kWh)"),
            "watts_per_core": _("Watts per busy core (W)"),
        }
        help_texts = {
            "manual_minutes": _("Minutes a person spends on one document without the factory."),
            "hourly_cost": _("Fully loaded cost of one hour of the people doing the work."),
            "manual_cycle_hours": _("Typical time from receipt to completion before the factory (optional)."),
            "sla_hours": _("Documents should be completed within this many hours of receipt."),
            "review_minutes": _("Minutes a reviewer spends on one parked item."),
            "large_model_eur_per_1k_tokens": _("Leave empty to use the cost each endpoint recorded in the ledger."),
        }


def _week(request: HttpRequest, default: date | None = None) -> date:
    monday = isoweeks.parse_week(request.GET.get("week"))
    return monday or default or isoweeks.current_week()


def _nav(monday: date) -> dict[str, str]:
    return {"previous": isoweeks.week_label(monday - timedelta(weeks=1)),
            "next": isoweeks.week_label(monday + timedelta(weeks=1)),
            "current": isoweeks.week_label(isoweeks.current_week()), "label": isoweeks.week_label(monday),
            "zone": isoweeks.week_zone_name()}


@login_required
def kpi_overview(request: HttpRequest) -> HttpResponse:
    require(request.user, "kpi.view")
    workflows = list(kpi_workflows(request.user).filter(archived=False).order_by("name", "id"))
    monday = _week(request)
    data = readers.dashboard(workflows, monday, across=True) if workflows else None
    return render(request, "kpi/overview.html", {"workflows": workflows, "data": data, "nav": _nav(monday),
                                                 "charts": data["trend"] if data else None})


@login_required
def kpi_dashboard(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_kpi_workflow(request.user, pk)
    monday = _week(request)
    data = readers.dashboard([workflow], monday)
    what_if = {f["node"]: readers.what_if_table(data["facts"], data["baseline"], f["node"])
               for f in data["summary"]["funnel"]}
    return render(request, "kpi/dashboard.html", {
        "workflow": workflow, "data": data, "s": data["summary"], "nav": _nav(monday), "charts": data["trend"],
        "what_if": what_if, "can_edit_baseline": can(request.user, "baseline.edit", workflow),
        "signed": WeeklyPack.objects.filter(workflow=workflow, week_start=monday).first()})


@login_required
@require_http_methods(["GET", "POST"])
def kpi_baseline(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_kpi_workflow(request.user, pk, "baseline.edit")
    current = Baseline.objects.filter(workflow=workflow).first()
    form = BaselineForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        save_baseline(workflow, form.cleaned_data, user=request.user)
        messages.success(request, gettext("Baseline saved."))
        return redirect("kpi-dashboard", pk=workflow.pk)
    return render(request, "kpi/baseline.html", {"workflow": workflow, "form": form, "baseline": current},
                  status=400 if request.method == "POST" else 200)


@login_required
def kpi_packs(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_kpi_workflow(request.user, pk)
    signed = {p.week_start: p for p in WeeklyPack.objects.filter(workflow=workflow).select_related("signed_by")}
    rollup.ensure_fresh([workflow.pk])
    weeks = set(KpiWeek.objects.filter(workflow=workflow).values_list("week_start", flat=True)) | set(signed)
    weeks.add(isoweeks.current_week())
    rows = [{"monday": m, "label": isoweeks.week_label(m), "pack": signed.get(m)} for m in sorted(weeks, reverse=True)]
    return render(request, "kpi/packs.html", {"workflow": workflow, "rows": rows})


def _pack_week(week: str) -> date:
    monday = isoweeks.parse_week(week)
    if monday is None:
        raise Http404(gettext("Not an ISO week; write it as 2025-W14."))
    return monday


def _pack_content(workflow: Any, monday: date) -> tuple[dict[str, Any], WeeklyPack | None]:
    pack = WeeklyPack.objects.filter(workflow=workflow, week_start=monday).select_related("signed_by").first()
    return (pack.content if pack else packs.build(workflow, monday)), pack


def _trend_rows(trend: dict[str, list]) -> list[tuple]:
    keys = ("label", "documents", "automation", "cycle_median_h", "accuracy", "savings_eur")
    return list(zip(*(trend[k] for k in keys), strict=True))


@login_required
def kpi_pack(request: HttpRequest, pk: int, week: str) -> HttpResponse:
    workflow = get_kpi_workflow(request.user, pk)
    monday = _pack_week(week)
    content, pack = _pack_content(workflow, monday)
    return render(request, "kpi/pack.html", {
        "workflow": workflow, "c": content, "pack": pack, "week": isoweeks.week_label(monday),
        "charts": content["trend"], "trend_rows": _trend_rows(content["trend"]), "time_zone": isoweeks.week_zone_name(),
        "can_sign": can(request.user, "pack.sign", workflow), "week_over": packs.week_is_over(monday)})


@login_required
def kpi_pack_csv(request: HttpRequest, pk: int, week: str) -> HttpResponse:
    workflow = get_kpi_workflow(request.user, pk)
    monday = _pack_week(week)
    content, pack = _pack_content(workflow, monday)
    response = HttpResponse(packs.to_csv(content, pack), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="kpi-pack-{workflow.pk}-{isoweeks.week_label(monday)}.csv"'
    return response


@login_required
@require_http_methods(["POST"])
def kpi_pack_sign(request: HttpRequest, pk: int, week: str) -> HttpResponse:
    workflow = get_kpi_workflow(request.user, pk, "pack.sign")
    monday = _pack_week(week)
    label = isoweeks.week_label(monday)
    try:
        packs.sign(workflow, monday, user=request.user, note=request.POST.get("note", ""),
                   partial_ok=request.POST.get("partial") == "yes")
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect(reverse("kpi-pack", args=[workflow.pk, label]))
    messages.success(request, gettext("Pack %(week)s signed and archived.") % {"week": label})
    return redirect(reverse("kpi-pack", args=[workflow.pk, label]))
