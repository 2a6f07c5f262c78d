"""The weekly review pack: what a business owner reads and signs for one workflow and one ISO week.

The content is built from the KPI readers as plain JSON; signing stores exactly that JSON with its
sha256 in a WeeklyPack (immutable) and an audit entry in the same transaction, so the archived pack
shows what was signed even if the ledger or the baseline change later.

`sign` is the one way to sign, for the page (workflows/views/kpi.py) and the API (workflows/api/kpi.py)
alike: both first fetch the workflow with `access.get_kpi_workflow(user, pk, "pack.sign")`, then let
`sign` refuse what it refuses, with the same messages and the same audit entry.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from workflows.exports import write_csv_rows
from workflows.kpi import isoweeks, readers
from workflows.models import Run, WeeklyPack, Workflow
from workflows.models.audit import record
from workflows.notifications import events as notifications
from workflows.roles import require

# ValidationError codes `sign` refuses with (the API answers both with 409 Conflict).
WEEK_NOT_OVER = "week_not_over"
ALREADY_SIGNED = "already_signed"


def week_is_over(monday: date) -> bool:
    return timezone.now() >= isoweeks.week_bounds(monday)[1]


def build(workflow: Any, monday: date) -> dict[str, Any]:
    data = readers.dashboard([workflow], monday)
    drift = readers.drift_alerts(workflow)
    start, end = isoweeks.week_bounds(monday)
    s = data["summary"]
    facts = data["facts"]
    content = {
        "workflow": {"id": workflow.pk, "name": workflow.name},
        "week": isoweeks.week_label(monday), "week_start": monday, "from": start, "to": end,
        "generated_at": timezone.now(), "partial_week": not week_is_over(monday),
        "baseline": data["baseline"],
        "cards": data["cards"],
        "documents": s["documents"], "cycle_time": s["cycle_time"], "automation": s["automation"],
        "accuracy": s["accuracy"], "savings": s["savings"], "cost_per_document": s["cost_per_document"],
        "footprint": s["footprint"], "first_answer": s["first_answer"], "funnel": s["funnel"], "trend": data["trend"],
        "models": facts.model_refs() if facts is not None else [],
        "promotions": readers.promotions(workflow, monday),
        # What the line learnt: spot-checked accuracy per node week over week, the labels people gave
        # (the next training's data) and, above, the versions promoted; the cards carry each KPI's change.
        "learning": {"nodes": data["learning"], "labels": readers.labels_gained(workflow, monday)},
        "label_sets": s["label_sets"],
        "drift": drift,
        "risks": readers.open_risks(workflow, facts, data["baseline"], drift),
    }
    return json.loads(json.dumps(content, cls=DjangoJSONEncoder))


def sign(workflow: Any, monday: date, *, user: Any, note: str = "", partial_ok: bool = False) -> WeeklyPack:
    """Freeze and sign the pack; writes the WeeklyPack and its `kpi.pack.sign` audit entry together.

    Refused with PermissionDenied (audited) unless the user may `pack.sign`; with ValidationError
    (code WEEK_NOT_OVER) for a week not over yet unless `partial_ok` confirms signing the numbers as they
    are now; with ValidationError (code ALREADY_SIGNED) for a week already signed.
    """
    require(user, "pack.sign", workflow)
    label = isoweeks.week_label(monday)
    already = ValidationError(gettext("The pack of %(week)s is already signed; signed packs never change.")
                              % {"week": label}, code=ALREADY_SIGNED)
    if WeeklyPack.objects.filter(workflow=workflow, week_start=monday).exists():
        raise already
    over = week_is_over(monday)
    if not over and not partial_ok:
        raise ValidationError(gettext("This week is not over yet. Confirm that you sign the numbers as they are now."),
                              code=WEEK_NOT_OVER)
    content = build(workflow, monday)
    year, week, _ = monday.isocalendar()
    try:
        with transaction.atomic():
            pack = WeeklyPack(workflow=workflow, week_start=monday, iso_year=year, iso_week=week, content=content,
                              sha256=WeeklyPack.digest(content), note=note[:2000], partial_week=not over,
                              signed_by=user)
            pack.save()
            record("kpi.pack.sign", actor=user, obj=pack, workflow=workflow.pk, week=label,
                   sha256=pack.sha256, partial_week=not over)
    except IntegrityError:
        raise already from None  # signed by a concurrent request since the check above
    return pack


def notify_ready_packs(now: datetime | None = None) -> int:
    """The monitor's periodic check (notifications.Duty): once last week is over, tell the business
    owners of each workflow that worked in it (a run open at some point of the week) and has no signed
    pack for it. The event's key tells each person once per workflow and week."""
    monday = isoweeks.week_start_of(now or timezone.now()) - timedelta(days=7)
    start, end = isoweeks.week_bounds(monday)
    worked = (Run.objects.filter(created_at__lt=end).filter(Q(finished_at__isnull=True) | Q(finished_at__gte=start))
              .values("workflow_id"))
    signed = WeeklyPack.objects.filter(week_start=monday).values("workflow_id")
    workflows = Workflow.objects.filter(pk__in=worked, archived=False).exclude(pk__in=signed).order_by("pk")
    return sum(notifications.pack_ready(workflow, monday, isoweeks.week_label(monday)) for workflow in workflows)


def _fmt(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def _share_unit(row: dict[str, Any], spot_checked: bool) -> str:
    words = (gettext("share of %(count)s spot-checked, 95%% CI %(low)s–%(high)s") if spot_checked else
             gettext("share of %(count)s reviewed, 95%% CI %(low)s–%(high)s"))
    return words % {"count": row["n"], "low": _fmt(row["low"]), "high": _fmt(row["high"])}


def csv_rows(content: dict[str, Any], pack: WeeklyPack | None = None) -> list[list[Any]]:
    """The pack as rows. Section, metric and unit names are the file's keys and stay English (a sheet
    that reads them keeps working); the sentences are in the reader's language, and the card titles,
    risks and drift messages in the language the pack was built (or signed) in."""
    rows: list[list[Any]] = [["section", "metric", "value", "unit"]]
    add = rows.append
    add(["pack", "workflow", content["workflow"]["name"], ""])
    add(["pack", "week", content["week"], gettext("ISO week, %(zone)s") % {"zone": isoweeks.week_zone_name()}])
    status = (gettext("signed by %(user)s at %(when)s") % {"user": pack.signed_by.get_username(),
                                                           "when": f"{pack.signed_at:%Y-%m-%d %H:%M}"}
              if pack else gettext("draft"))
    add(["pack", "status", status, ""])
    for card in content["cards"]:
        add(["headline", card["title"], _fmt(card["value"]), card["unit"]])
        add(["headline", gettext("%(title)s (last week)") % {"title": card["title"]}, _fmt(card["previous"]),
             card["unit"]])
    ct = content["cycle_time"]
    add(["cycle time", "median", _fmt(ct["median_h"]), "hours"])
    add(["cycle time", "p95", _fmt(ct["p95_h"]), "hours"])
    add(["cycle time", "within SLA", _fmt(ct["within_sla"]), "share"])
    # Packs signed before spot checks existed hold reviewed accuracy under "nodes" and no "escalations".
    spot_checked = "escalations" in content["accuracy"]
    for node in content["accuracy"]["nodes"]:
        add(["accuracy", node["node"], _fmt(node["rate"]), _share_unit(node, spot_checked)])
    e2e = content["accuracy"]["end_to_end"]
    add(["accuracy", "end to end", _fmt(e2e["rate"]),
         (gettext("share of %(count)s spot-checked documents") if spot_checked else
          gettext("share of %(count)s reviewed documents")) % {"count": e2e["n"]}])
    for node in content["accuracy"].get("escalations") or []:
        add(["escalation accuracy", node["node"], _fmt(node["rate"]), _share_unit(node, False)])
    learnt = content.get("learning") or {}
    for node in learnt.get("nodes") or []:
        for week in node["weeks"]:
            add(["learning", f"{node['node']} {week['week']}", _fmt(week["rate"]), _share_unit(week, True)])
        add(["learning", f"{node['node']} change", _fmt(node["change"]), "share"])
    for source, count in (learnt.get("labels") or {}).items():
        add(["labels gained", source, count, "labels"])
    for card in content["cards"]:
        add(["change since last week", card["key"], _fmt(card["change"]), card["unit"]])
    flagged = content.get("label_sets") or {}
    if flagged.get("documents"):
        add(["label sets", "documents flagged", flagged["documents"], "documents"])
    # A pack without a baseline has no savings and no costs (None in its content).
    for key, value in (content["savings"] or {}).items():
        add(["savings", key, _fmt(value), "" if key == "documents" else "EUR"])
    for path, cost in (content["cost_per_document"] or {}).items():
        add(["cost per document", path, _fmt(cost.get("eur_per_document")), "EUR"])
    for key, value in content["footprint"].items():
        add(["footprint", key, _fmt(value), ""])
    for i, label in enumerate(content["trend"]["label"]):
        add(["trend", label, content["trend"]["documents"][i], "documents"])
    for p in content["promotions"]:
        add(["promotion", p["model"], p["version"], f"{p['alias']} by {p['by']}"])
    for d in content["drift"] or []:
        add(["drift", d["node"], d["status"], d["message"]])
    for risk in content["risks"]:
        add(["risk", "", risk, ""])
    return rows


def to_csv(content: dict[str, Any], pack: WeeklyPack | None = None) -> str:
    return write_csv_rows(csv_rows(content, pack))
