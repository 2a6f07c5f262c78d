"""The weekly review pack: what a business owner reads and signs for one workflow and one ISO week.

The content is built from the KPI readers as plain JSON; signing stores exactly that JSON with its
sha256 in a WeeklyPack (immutable) and an audit entry in the same transaction, so the archived pack
shows what was signed even if the ledger or the baseline change later.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone

from workflows import kpi_rollup as rollup
from workflows import kpis
from workflows.exports import write_csv_rows
from workflows.models import WeeklyPack
from workflows.models.audit import record
from workflows.roles import require


def week_is_over(monday: date) -> bool:
    return timezone.now() >= rollup.week_bounds(monday)[1]


def build(workflow: Any, monday: date) -> dict[str, Any]:
    data = kpis.dashboard([workflow], monday)
    drift = kpis.drift_alerts(workflow)
    start, end = rollup.week_bounds(monday)
    s = data["summary"]
    content = {
        "workflow": {"id": workflow.pk, "name": workflow.name},
        "week": rollup.week_label(monday), "week_start": monday, "from": start, "to": end,
        "generated_at": timezone.now(), "partial_week": not week_is_over(monday),
        "baseline": data["baseline"],
        "cards": data["cards"],
        "documents": s["documents"], "cycle_time": s["cycle_time"], "automation": s["automation"], "accuracy": s["accuracy"],
        "savings": s["savings"], "cost_per_document": s["cost_per_document"], "footprint": s["footprint"],
        "first_answer": s["first_answer"], "funnel": s["funnel"], "trend": data["trend"],
        "models": sorted({ref for refs in ((data["facts"] or {}).get("models") or {}).values() for ref in refs}),
        "promotions": kpis.promotions(workflow, monday),
        "drift": drift,
        "risks": kpis.open_risks(workflow, data["facts"], data["baseline"], drift),
    }
    return json.loads(json.dumps(content, cls=DjangoJSONEncoder))


def sign(workflow: Any, monday: date, *, user: Any, note: str = "", partial_ok: bool = False) -> WeeklyPack:
    """Freeze and sign the pack. Refused: a second signature, or a week not over without `partial_ok`."""
    require(user, "pack.sign", workflow)
    over = week_is_over(monday)
    if not over and not partial_ok:
        raise ValidationError("This week is not over yet. Confirm that you sign the numbers as they are now.")
    content = build(workflow, monday)
    year, week, _ = monday.isocalendar()
    try:
        with transaction.atomic():
            pack = WeeklyPack(workflow=workflow, week_start=monday, iso_year=year, iso_week=week, content=content,
                              sha256=WeeklyPack.digest(content), note=note[:2000], partial_week=not over, signed_by=user)
            pack.save()
            record("kpi.pack.sign", actor=user, obj=pack, workflow=workflow.pk, week=rollup.week_label(monday),
                   sha256=pack.sha256, partial_week=not over)
    except IntegrityError:
        raise ValidationError(f"The pack of {rollup.week_label(monday)} is already signed; signed packs never change.") from None
    return pack


def _fmt(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def csv_rows(content: dict[str, Any], pack: WeeklyPack | None = None) -> list[list[Any]]:
    rows: list[list[Any]] = [["section", "metric", "value", "unit"]]
    add = rows.append
    add(["pack", "workflow", content["workflow"]["name"], ""])
    add(["pack", "week", content["week"], "ISO week, Europe/Rome"])
    add(["pack", "status", f"signed by {pack.signed_by.get_username()} at {pack.signed_at:%Y-%m-%d %H:%M}" if pack else "draft", ""])
    for card in content["cards"]:
        add(["headline", card["title"], _fmt(card["value"]), card["unit"]])
        add(["headline", f"{card['title']} (last week)", _fmt(card["previous"]), card["unit"]])
    ct = content["cycle_time"]
    add(["cycle time", "median", _fmt(ct["median_h"]), "hours"])
    add(["cycle time", "p95", _fmt(ct["p95_h"]), "hours"])
    add(["cycle time", "within SLA", _fmt(ct["within_sla"]), "share"])
    for node in content["accuracy"]["nodes"]:
        add(["accuracy", node["node"], _fmt(node["rate"]), f"share of {node['n']} reviewed, 95% CI {_fmt(node['low'])}–{_fmt(node['high'])}"])
    e2e = content["accuracy"]["end_to_end"]
    add(["accuracy", "end to end", _fmt(e2e["rate"]), f"share of {e2e['n']} reviewed documents"])
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
