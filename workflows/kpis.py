"""Business KPIs, one reader function per KPI (DESIGN §8).

Every reader takes weekly facts (workflows/kpi_rollup.py: counted from the ledger, review tasks,
labels and NodeStats — never typed in) and, where euros, hours or grams are involved, the baseline as
a dict (Baseline.as_dict()). Readers return plain dicts; None means "not measurable" (no documents,
no baseline, no reviewed items), never zero.

Formulas:
- cycle time: received → completed per completed document, median and p95 (nearest rank), in hours;
  share completed within the SLA.
- automation rate = completed documents that no person touched (no review task, no cascade hand-off
  to a human) / completed documents.
- accuracy per node = reviewed labels equal to the node's prediction / reviewed labels at that node;
  end to end = reviewed documents whose every reviewed prediction was right / reviewed documents.
  Wilson 95 % interval. Reviewed items are the ones routed to people, usually the hard ones: the
  figure is a floor for the automated documents, not an estimate of them.
- savings € = documents × manual minutes / 60 × hourly cost
              − (reviews × review minutes / 60 × hourly cost + CPU-hours × compute rate + large-model €).
- cost per document by path (small models only / large model involved / a person involved) =
  (CPU-hours × compute rate + large-model € + reviews × review minutes / 60 × hourly cost) of that
  path's documents / its documents. CPU is attributed per node: a node's CPU-seconds in a run divided
  evenly over the items it processed.
- large-model € = the cost recorded in the ledger, or tokens / 1000 × the baseline's price when set.
- energy Wh = CPU-seconds × watts per core / 3600; CO₂ g = Wh / 1000 × grid g/kWh; per 1,000 documents.
- time to first answer: received → the first decision that produced an `answer` field.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, Q
from django.http import Http404

from workflows import kpi_rollup as rollup
from workflows.kpi_rollup import BINS, HUMAN, LARGE, LARGE_OK, LARGE_REVIEWED, PATHS, REVIEWED, SMALL_OK, N
from workflows.roles import ADMIN, BUSINESS_OWNER, can, deny, roles_of

Z95 = 1.959963984540054
TREND_WEEKS = 12


# --- who sees which workflow's KPIs ---------------------------------------------------------------

def kpi_workflows(user: Any):
    """Business owners and admins: every workflow. Designers and operators: their own — workflows they
    created, saved a version of, or started a run of. Everyone else: none (kpi.view refused)."""
    from workflows.models import Run, Workflow, WorkflowVersion

    if not can(user, "kpi.view"):
        return Workflow.objects.none()
    if roles_of(user) & {BUSINESS_OWNER, ADMIN}:
        return Workflow.objects.all()
    return Workflow.objects.filter(
        Q(created_by=user)
        | Exists(WorkflowVersion.objects.filter(workflow=OuterRef("pk"), author=user))
        | Exists(Run.objects.filter(workflow=OuterRef("pk"), created_by=user)))


def get_kpi_workflow(user: Any, pk: Any, capability: str = "kpi.view"):
    """The workflow if the user may see its KPIs (else 403, audited) and do `capability` (else 403)."""
    from workflows.models import Workflow

    if not can(user, "kpi.view"):
        raise deny(user, "kpi.view", object_type="workflows.workflow", object_id=pk)
    try:
        workflow = kpi_workflows(user).get(pk=pk)
    except (Workflow.DoesNotExist, ValueError, TypeError):
        if Workflow.objects.filter(pk=pk if str(pk).isdigit() else -1).exists():
            raise deny(user, "kpi.view", object_type="workflows.workflow", object_id=pk, reason="not their workflow") from None
        raise Http404("No such workflow.") from None
    if capability != "kpi.view" and not can(user, capability):
        raise deny(user, capability, workflow)
    return workflow


# --- statistics -----------------------------------------------------------------------------------

def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion; None without observations."""
    if n <= 0:
        return None
    p = correct / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


def proportion(correct: int, n: int) -> dict[str, Any]:
    interval = wilson(correct, n)
    return {"n": n, "correct": correct, "rate": (correct / n) if n else None,
            "low": interval[0] if interval else None, "high": interval[1] if interval else None}


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _quantiles(dist: dict[str, Any]) -> tuple[float | None, float | None]:
    if dist.get("median") is not None:
        return dist["median"], dist["p95"]
    return rollup.hist_quantile(dist.get("hist") or {}, 0.5), rollup.hist_quantile(dist.get("hist") or {}, 0.95)


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 3600


# --- readers --------------------------------------------------------------------------------------

def documents(facts: dict | None) -> dict[str, Any]:
    facts = facts or {}
    return {"completed": facts.get("docs", 0), "dead": facts.get("dead", 0), "paths": facts.get("paths") or dict.fromkeys(PATHS, 0)}


def cycle_time(facts: dict | None, baseline: dict | None) -> dict[str, Any]:
    dist = (facts or {}).get("cycle") or {}
    median, p95 = _quantiles(dist)
    sla = (baseline or {}).get("sla_hours")
    manual = (baseline or {}).get("manual_cycle_hours")
    within = rollup.hist_share_below(dist.get("hist") or {}, sla * 3600) if sla and dist.get("n") else None
    return {"n": dist.get("n", 0), "median_h": _hours(median), "p95_h": _hours(p95), "exact": dist.get("median") is not None,
            "sla_h": sla, "p95_within_sla": (p95 <= sla * 3600) if (sla and p95 is not None) else None, "within_sla": within,
            "manual_h": manual, "vs_manual": _div(_hours(median), manual)}


def automation_rate(facts: dict | None) -> dict[str, Any]:
    docs = documents(facts)
    automated = docs["paths"].get("small", 0) + docs["paths"].get("large", 0)
    return {"automated": automated, "completed": docs["completed"], "rate": _div(automated, docs["completed"])}


def accuracy(facts: dict | None, baseline: dict | None = None) -> dict[str, Any]:
    acc = (facts or {}).get("accuracy") or {}
    nodes = [{"node": node, **proportion(c, n)} for node, (n, c) in sorted((acc.get("nodes") or {}).items())]
    e2e_n, e2e_c = acc.get("e2e") or [0, 0]
    manual = (baseline or {}).get("manual_accuracy")
    return {"nodes": nodes, "end_to_end": proportion(e2e_c, e2e_n), "manual": manual / 100 if manual is not None else None}


def large_model_eur(facts: dict | None, baseline: dict | None, path: str = "total") -> float:
    facts = facts or {}
    price = (baseline or {}).get("large_model_eur_per_1k_tokens")
    if price is not None:
        return (facts.get("llm_tokens") or {}).get(path, 0.0) / 1000 * price
    return (facts.get("llm_eur") or {}).get(path, 0.0)


def _compute_eur(cpu_seconds: float, baseline: dict) -> float:
    return cpu_seconds / 3600 * baseline["compute_eur_per_cpu_hour"]


def _review_eur(reviews: float, baseline: dict) -> float:
    return reviews * baseline["review_minutes"] / 60 * baseline["hourly_cost"]


def savings(facts: dict | None, baseline: dict | None) -> dict[str, Any] | None:
    if not baseline:
        return None
    facts = facts or {}
    docs = facts.get("docs", 0)
    manual = docs * baseline["manual_minutes"] / 60 * baseline["hourly_cost"]
    review = _review_eur((facts.get("reviews") or {}).get("total", 0), baseline)
    compute = _compute_eur((facts.get("cpu") or {}).get("total", 0.0), baseline)
    llm = large_model_eur(facts, baseline)
    spent = review + compute + llm
    return {"documents": docs, "manual_eur": manual, "review_eur": review, "compute_eur": compute, "large_model_eur": llm,
            "factory_eur": spent, "savings_eur": manual - spent, "per_document_eur": _div(manual - spent, docs)}


def cost_per_document(facts: dict | None, baseline: dict | None) -> dict[str, Any] | None:
    if not baseline:
        return None
    facts = facts or {}
    out = {}
    for path in PATHS:
        n = (facts.get("paths") or {}).get(path, 0)
        compute = _compute_eur((facts.get("cpu") or {}).get(path, 0.0), baseline)
        llm = large_model_eur(facts, baseline, path)
        review = _review_eur((facts.get("reviews") or {}).get(path, 0), baseline)
        out[path] = {"documents": n, "compute_eur": compute, "large_model_eur": llm, "review_eur": review,
                     "eur_per_document": _div(compute + llm + review, n)}
    out["manual"] = {"eur_per_document": baseline["manual_minutes"] / 60 * baseline["hourly_cost"]}
    return out


def footprint(facts: dict | None, baseline: dict | None) -> dict[str, Any]:
    facts = facts or {}
    docs = facts.get("docs", 0) + facts.get("dead", 0)
    cpu = (facts.get("cpu") or {}).get("total", 0.0)
    out: dict[str, Any] = {"documents": docs, "cpu_seconds": cpu, "cpu_seconds_per_1k": _div(cpu * 1000, docs)}
    if baseline:
        wh = cpu * baseline["watts_per_core"] / 3600
        co2 = wh / 1000 * baseline["grid_g_co2_per_kwh"]
        out.update(wh=wh, co2_g=co2, wh_per_1k=_div(wh * 1000, docs), co2_g_per_1k=_div(co2 * 1000, docs))
    return out


def first_answer(facts: dict | None) -> dict[str, Any] | None:
    dist = (facts or {}).get("answer") or {}
    if not dist.get("n"):
        return None
    median, p95 = _quantiles(dist)
    return {"n": dist["n"], "median_h": _hours(median), "p95_h": _hours(p95), "median_s": median, "p95_s": p95}


def cascade_funnel(facts: dict | None) -> list[dict[str, Any]]:
    out = []
    for node, c in sorted(((facts or {}).get("cascade") or {}).items()):
        total = sum(c["funnel"].values())
        out.append({"node": node, "total": total, **c["funnel"],
                    "shares": {p: _div(c["funnel"][p], total) for p in PATHS}})
    return out


def what_if(facts: dict | None, baseline: dict | None, node: str, threshold: float) -> dict[str, Any] | None:
    """Estimated automation, accuracy and cost per document if the small model's threshold were `threshold`.

    Documents whose recorded small-model confidence is ≥ threshold stop at the small model. The rest
    escalate; of those, the large model keeps the share it kept in the ledger (decided by large /
    escalated), people take the remainder. Accuracy of the small model above the threshold comes
    from reviewed labels of those documents (with its sample size); people are taken as right.
    """
    c = ((facts or {}).get("cascade") or {}).get(node)
    if not c:
        return None
    bins = c["bins"]
    total = sum(b[N] for b in bins)
    if not total:
        return None
    cut = rollup.conf_bin(threshold)
    small = sum(b[N] for b in bins[cut:])
    escalated = total - small
    large_now, human_now = sum(b[LARGE] for b in bins), sum(b[HUMAN] for b in bins)
    keep = _div(large_now, large_now + human_now) or 0.0
    large = escalated * keep
    human = escalated - large
    small_acc = proportion(sum(b[SMALL_OK] for b in bins[cut:]), sum(b[REVIEWED] for b in bins[cut:]))
    large_acc = proportion(sum(b[LARGE_OK] for b in bins), sum(b[LARGE_REVIEWED] for b in bins))
    estimate = None
    if small_acc["rate"] is not None and (large == 0 or large_acc["rate"] is not None):
        estimate = (small * small_acc["rate"] + large * (large_acc["rate"] or 0.0) + human) / total
    result = {"node": node, "threshold": cut / 100, "documents": total, "small": small, "large": large, "human": human,
              "automation_rate": (small + large) / total, "small_accuracy": small_acc, "large_accuracy": large_acc,
              "accuracy": estimate, "eur_per_document": None}
    if baseline:
        calls = c["llm_calls"]
        per_call = (c["llm_tokens"] / calls / 1000 * baseline["large_model_eur_per_1k_tokens"]
                    if baseline.get("large_model_eur_per_1k_tokens") is not None else c["llm_eur"] / calls) if calls else 0.0
        compute = _compute_eur(c["cpu"], baseline) / max(1, c["items"])
        # Every escalated document asks the large model (when the cascade has one), then maybe a person.
        result["eur_per_document"] = compute + escalated * per_call / total + _review_eur(human, baseline) / total
    return result


def what_if_table(facts: dict | None, baseline: dict | None, node: str) -> list[dict[str, Any]]:
    """what_if at every hundredth from 0.00 to 1.00 (the page's slider reads this table)."""
    return [r for r in (what_if(facts, baseline, node, t / 100) for t in range(BINS)) if r is not None]


def promotions(workflow: Any, monday: date) -> list[dict[str, Any]]:
    """Model versions promoted during the week, for models this workflow uses (audit 'promotion.approve')."""
    from workflows.models import AuditEntry

    start, end = rollup.week_bounds(monday)
    used = models_of(workflow)
    out = []
    for entry in AuditEntry.objects.filter(action="promotion.approve", at__gte=start, at__lt=end).order_by("at"):
        if entry.data.get("model") in used:
            out.append({"at": entry.at, "model": entry.data.get("model"), "version": entry.data.get("version"),
                        "alias": entry.data.get("alias"), "previous": entry.data.get("previous"), "by": entry.actor_name})
    return out


def models_of(workflow: Any) -> set[str]:
    names = set()
    latest = workflow.latest
    for node in (latest.graph.get("nodes", []) if latest else []):
        ref = (node.get("config") or {}).get("model")
        if isinstance(ref, str) and ref:
            names.add(ref.split("@")[0].split(":")[0])
    return names


def drift_alerts(workflow: Any) -> list[dict[str, Any]] | None:
    """The governance module's drift alerts for this workflow's model nodes; None if it is unavailable."""
    try:
        from workflows.governance import drift
    except ImportError:
        return None
    latest = workflow.latest
    nodes = {n["id"] for n in (latest.graph.get("nodes", []) if latest else []) if (n.get("config") or {}).get("model")}
    out = []
    for node in sorted(nodes):
        try:
            result = drift.node_drift(workflow, node)
        except Exception as exc:  # a governance bug must not take the business page down
            out.append({"node": node, "status": "error", "message": f"drift check failed: {exc}"})
            continue
        out.append({"node": node, "status": result.status, "message": result.message})
    return out


def open_risks(workflow: Any, facts: dict | None, baseline: dict | None, drift: list[dict] | None) -> list[str]:
    """Plain-language risks a business owner should know about this week."""
    from workflows.models import DeadLetter, ReviewTask

    risks = []
    if not baseline:
        risks.append("No baseline: savings and costs cannot be computed. Set the baseline.")
    dead = DeadLetter.objects.filter(run__workflow=workflow, retried_at__isnull=True).count()
    if dead:
        risks.append(f"{dead} document(s) failed and wait in the dead-letter list (retry them or handle them by hand).")
    backlog = ReviewTask.objects.filter(run__workflow=workflow, status=ReviewTask.OPEN)
    waiting = backlog.count()
    if waiting:
        oldest = backlog.order_by("created_at").values_list("created_at", flat=True).first()
        risks.append(f"{waiting} document(s) wait for a reviewer, the oldest since {oldest:%d %b %H:%M}.")
    ct = cycle_time(facts, baseline)
    if ct["p95_within_sla"] is False:
        risks.append(f"The slowest 5 % of documents took over {ct['p95_h']:.1f} h, beyond the {ct['sla_h']:g} h SLA.")
    acc = accuracy(facts, baseline)
    e2e = acc["end_to_end"]
    if e2e["n"] and e2e["n"] < 30:
        risks.append(f"Accuracy rests on only {e2e['n']} reviewed document(s); treat it as a rough indication.")
    if acc["manual"] is not None and e2e["high"] is not None and e2e["high"] < acc["manual"]:
        risks.append(f"Reviewed accuracy ({e2e['rate']:.0%}) is below the manual baseline ({acc['manual']:.0%}) "
                     "even at the top of its 95 % interval.")
    for alert in drift or []:
        if alert["status"] in ("alert", "error"):
            risks.append(f"Drift at {alert['node']}: {alert['message']}")
    return risks


# --- a whole dashboard ----------------------------------------------------------------------------

def summary(facts: dict | None, baseline: dict | None) -> dict[str, Any]:
    """The headline numbers of one set of facts."""
    ct = cycle_time(facts, baseline)
    auto = automation_rate(facts)
    acc = accuracy(facts, baseline)
    save = savings(facts, baseline)
    cost = cost_per_document(facts, baseline)
    foot = footprint(facts, baseline)
    answer = first_answer(facts)
    return {"documents": documents(facts), "cycle_time": ct, "automation": auto, "accuracy": acc, "savings": save,
            "cost_per_document": cost, "footprint": foot, "first_answer": answer, "funnel": cascade_funnel(facts)}


HEADLINES = [
    # (key, title, getter, unit, higher is better)
    ("documents", "Documents completed", lambda s: s["documents"]["completed"], "count", True),
    ("cycle", "Cycle time (median)", lambda s: s["cycle_time"]["median_h"], "hours", False),
    ("automation", "Automation rate", lambda s: s["automation"]["rate"], "share", True),
    ("accuracy", "Reviewed accuracy", lambda s: s["accuracy"]["end_to_end"]["rate"], "share", True),
    ("savings", "Savings", lambda s: (s["savings"] or {}).get("savings_eur"), "eur", True),
    ("cost", "Cost per document", lambda s: _div(((s["savings"] or {}).get("factory_eur")), s["documents"]["completed"]), "eur", False),
    ("energy", "Energy per 1,000 documents", lambda s: s["footprint"].get("wh_per_1k"), "wh", False),
    ("answer", "Time to first answer (median)", lambda s: (s["first_answer"] or {}).get("median_h"), "hours", False),
]


def headlines(now: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
    cards = []
    for key, title, get, unit, higher_better in HEADLINES:
        value, previous = get(now), get(before)
        change = None if value is None or previous is None else value - previous
        good = None if not change else (change > 0) == higher_better
        cards.append({"key": key, "title": title, "value": value, "previous": previous, "change": change, "unit": unit,
                      "good": good})
    return cards


def trend(weeks: dict[date, dict | None], baseline: dict | None) -> dict[str, list]:
    """Weekly series for the charts: x in Unix seconds of each Monday (Rome), one list per KPI."""
    series: dict[str, list] = {"x": [], "label": [], "documents": [], "automation": [], "cycle_median_h": [],
                               "cycle_p95_h": [], "accuracy": [], "savings_eur": [], "eur_per_document": []}
    for monday, facts in weeks.items():
        s = summary(facts, baseline)
        series["x"].append(int(rollup.week_bounds(monday)[0].timestamp()))
        series["label"].append(rollup.week_label(monday))
        series["documents"].append(s["documents"]["completed"])
        series["automation"].append(_pct(s["automation"]["rate"]))
        series["cycle_median_h"].append(s["cycle_time"]["median_h"])
        series["cycle_p95_h"].append(s["cycle_time"]["p95_h"])
        series["accuracy"].append(_pct(s["accuracy"]["end_to_end"]["rate"]))
        series["savings_eur"].append((s["savings"] or {}).get("savings_eur"))
        series["eur_per_document"].append(_div((s["savings"] or {}).get("factory_eur"), s["documents"]["completed"]))
    return series


def _pct(x: float | None) -> float | None:
    return None if x is None else round(x * 100, 2)


def baseline_of(workflow: Any) -> dict[str, Any] | None:
    from workflows.models import Baseline

    row = Baseline.objects.filter(workflow=workflow).first()
    return row.as_dict() if row else None


def dashboard(workflows: list[Any], monday: date, *, weeks: int = TREND_WEEKS, across: bool = False) -> dict[str, Any]:
    """Everything a KPI page shows for these workflows and this week (merged when `across`)."""
    ids = [w.pk for w in workflows]
    rollup.ensure_fresh(ids)
    mondays = rollup.weeks_back(monday, weeks)
    by_week = rollup.load_weeks(ids, mondays)
    if across or len(workflows) != 1:
        return _across(workflows, monday, mondays, by_week)
    baseline = baseline_of(workflows[0])
    facts, previous = by_week[monday], by_week[monday - timedelta(weeks=1)]
    now, before = summary(facts, baseline), summary(previous, baseline)
    return {"week": monday, "week_label": rollup.week_label(monday), "baseline": baseline, "facts": facts,
            "summary": now, "cards": headlines(now, before), "trend": trend(by_week, baseline)}


def _across(workflows: list[Any], monday: date, mondays: list[date], by_week: dict) -> dict[str, Any]:
    """Across workflows: counts and shares merge; euros are summed per workflow with its own baseline."""
    from workflows.models import Baseline

    baselines = {b.workflow_id: b.as_dict() for b in Baseline.objects.filter(workflow__in=workflows)}
    ids = [w.pk for w in workflows]
    per_workflow = rollup.load_weeks_by_workflow(ids, [monday, monday - timedelta(weeks=1)])
    rows = []
    totals = {monday: 0.0, monday - timedelta(weeks=1): 0.0}
    for w in workflows:
        this = summary(per_workflow.get((w.pk, monday)), baselines.get(w.pk))
        for m in totals:
            s = savings(per_workflow.get((w.pk, m)), baselines.get(w.pk))
            totals[m] += (s or {}).get("savings_eur") or 0.0
        rows.append({"workflow": w, "summary": this, "has_baseline": w.pk in baselines})
    now, before = summary(by_week[monday], None), summary(by_week[monday - timedelta(weeks=1)], None)
    cards = headlines(now, before)
    for card in cards:
        if card["key"] == "savings":
            card.update(value=totals[monday], previous=totals[monday - timedelta(weeks=1)],
                        change=totals[monday] - totals[monday - timedelta(weeks=1)])
            card["good"] = card["change"] > 0 if card["change"] else None
    cards = [c for c in cards if c["key"] not in ("cost", "energy")]
    return {"week": monday, "week_label": rollup.week_label(monday), "baseline": None, "facts": by_week[monday],
            "summary": now, "cards": cards, "trend": trend(by_week, None), "rows": rows}
