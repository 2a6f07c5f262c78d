"""Business KPIs, one reader function per KPI, so that each figure a page, the API or a signed pack shows
has one definition, written next to its formula below.

Every reader takes weekly facts (`WeekFacts` from workflows/kpi/facts.py, counted from the ledger by rollup.py,
review tasks, labels and NodeStats — never typed in; None for a week in which no document finished)
and, where euros, hours or grams are involved, the baseline as a dict (Baseline.as_dict()). Readers
return plain dicts; None means "not measurable" (no documents, no baseline, no reviewed items), never
zero.

Formulas:
- cycle time: received → completed per completed document, median and p95 (nearest rank), in hours;
  share completed within the SLA.
- automation rate = (completed documents that no person touched (no escalation, no cascade hand-off
  to a human) − those decided with a label set that no longer matches)
  / (completed documents + documents parked for a person that week and still waiting).
- accuracy per node = spot-checked predictions that were right / spot-checked predictions at that node;
  end to end = spot-checked documents whose every spot-checked prediction was right / spot-checked
  documents. Spot checks are a random sample of what the models decided alone, so this estimates the
  accuracy of the unattended work without bias; Wilson 95 % interval. Reviews of escalations (the
  unsure items people were asked about) are shown apart, as escalation accuracy.
- label sets: a completed document is flagged when a model labelled it outside the node's own labels,
  or with a version whose labels differ from its model's current production version; flagged
  documents are left out of the automation and savings claims.
- savings € = (documents − flagged documents) × manual minutes / 60 × hourly cost
              − (reviews × review minutes / 60 × hourly cost + CPU-hours × compute rate + large-model €);
  reviews include spot checks (a person's time either way).
- cost per document by path (small models only / large model involved / a person involved) =
  (CPU-hours × compute rate + large-model € + reviews × review minutes / 60 × hourly cost) of that
  path's documents / its documents. CPU is attributed per node: a node's CPU-seconds in a run divided
  evenly over the items it processed.
- large-model € = the cost recorded in the ledger, or tokens / 1000 × the baseline's price when set.
- energy Wh = CPU-seconds × watts per core / 3600; CO₂ g = Wh / 1000 × grid g/kWh; per 1,000 documents.
- time to first answer: received → the first decision that produced an `answer` field.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db.models import Count, Q
from django.utils import dateformat
from django.utils.translation import gettext, gettext_lazy, ngettext

from workflows.formats import number
from workflows.governance import drift as drift_report
from workflows.governance.accuracy import wilson
from workflows.kpi import isoweeks, rollup
from workflows.kpi.facts import (
    HUMAN,
    LARGE,
    LARGE_OK,
    LARGE_REVIEWED,
    PATHS,
    REVIEWED,
    SMALL_OK,
    CascadeFacts,
    N,
    WeekFacts,
)
from workflows.kpi.isoweeks import BINS
from workflows.models import Baseline, DeadLetter, ReviewTask
from workflows.models.registry import Label, PromotionRequest, RegisteredModel

TREND_WEEKS = 12


# --- who sees which workflow's KPIs ---------------------------------------------------------------

# --- statistics ----------------------------------------------------------------------------------

def proportion(correct: int, n: int) -> dict[str, Any]:
    interval = wilson(correct, n)
    return {"n": n, "correct": correct, "rate": (correct / n) if n else None,
            "low": interval[0] if interval else None, "high": interval[1] if interval else None}


def _div(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / 3600


def _week(facts: WeekFacts | None) -> WeekFacts:
    """A week in which no document finished reads as an empty week."""
    return facts if facts is not None else WeekFacts()


def _setting(baseline: dict | None, key: str) -> Any:
    """One baseline value; None without a baseline or when the value is left empty."""
    return baseline.get(key) if baseline else None


def _part(section: dict | None, key: str) -> Any:
    """One number of a reader's answer that is None when not measurable (savings without a baseline)."""
    return section.get(key) if section else None


# --- readers --------------------------------------------------------------------------------------

def documents(facts: WeekFacts | None) -> dict[str, Any]:
    f = _week(facts)
    return {"completed": f.docs, "dead": f.dead, "paths": f.paths.to_json(), "large_answered": f.large_used}


def cycle_time(facts: WeekFacts | None, baseline: dict | None) -> dict[str, Any]:
    dist = _week(facts).cycle
    median, p95 = dist.quantiles()
    sla = _setting(baseline, "sla_hours")
    manual = _setting(baseline, "manual_cycle_hours")
    within = isoweeks.hist_share_below(dist.hist, sla * 3600) if sla and dist.n else None
    return {"n": dist.n, "median_h": _hours(median), "p95_h": _hours(p95), "exact": dist.exact,
            "sla_h": sla, "p95_within_sla": (p95 <= sla * 3600) if (sla and p95 is not None) else None,
            "within_sla": within, "manual_h": manual, "vs_manual": _div(_hours(median), manual)}


def automation_rate(facts: WeekFacts | None) -> dict[str, Any]:
    f = _week(facts)
    excluded = f.label_sets.automated
    automated = max(0, f.paths.small + f.paths.large - excluded)
    return {"automated": automated, "completed": f.docs, "waiting": f.waiting, "excluded": excluded,
            "rate": _div(automated, f.docs + f.waiting)}


def accuracy(facts: WeekFacts | None, baseline: dict | None = None) -> dict[str, Any]:
    """Spot checks per node and end to end (the unbiased figures); reviews of escalations apart."""
    f = _week(facts)
    manual = _setting(baseline, "manual_accuracy")
    return {"nodes": _per_node(f.spot.nodes), "end_to_end": proportion(f.spot.e2e.correct, f.spot.e2e.n),
            "escalations": _per_node(f.accuracy.nodes),
            "escalation_end_to_end": proportion(f.accuracy.e2e.correct, f.accuracy.e2e.n),
            "manual": manual / 100 if manual is not None else None}


def _per_node(nodes: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"node": node, **proportion(hits.correct, hits.n)} for node, hits in sorted(nodes.items())]


def label_sets(facts: WeekFacts | None) -> dict[str, Any]:
    """Completed documents decided with a label set that no longer matches, per node and model version."""
    found = _week(facts).label_sets
    nodes = [{"node": node, "model_ref": ref, "documents": count, "why": why}
             for node, refs in sorted(found.nodes.items()) for ref, (count, why) in sorted(refs.items())]
    return {"documents": found.documents, "automated": found.automated, "nodes": nodes}


def large_model_eur(facts: WeekFacts | None, baseline: dict | None, path: str = "total") -> float:
    f = _week(facts)
    price = _setting(baseline, "large_model_eur_per_1k_tokens")
    if price is not None:
        return f.llm_tokens.of(path) / 1000 * price
    return f.llm_eur.of(path)


def _compute_eur(cpu_seconds: float, baseline: dict) -> float:
    return cpu_seconds / 3600 * baseline["compute_eur_per_cpu_hour"]


def _review_eur(reviews: float, baseline: dict) -> float:
    return reviews * baseline["review_minutes"] / 60 * baseline["hourly_cost"]


def savings(facts: WeekFacts | None, baseline: dict | None) -> dict[str, Any] | None:
    if not baseline:
        return None
    f = _week(facts)
    # A document labelled from the wrong label set saved nobody its manual work.
    documents = max(0, f.docs - f.label_sets.documents)
    manual = documents * baseline["manual_minutes"] / 60 * baseline["hourly_cost"]
    review = _review_eur(f.reviews.total, baseline)
    compute = _compute_eur(f.cpu.total, baseline)
    llm = large_model_eur(f, baseline)
    spent = review + compute + llm
    return {"documents": documents, "manual_eur": manual, "review_eur": review, "compute_eur": compute,
            "large_model_eur": llm, "factory_eur": spent, "savings_eur": manual - spent,
            "per_document_eur": _div(manual - spent, documents), "excluded": f.docs - documents}


def cost_per_document(facts: WeekFacts | None, baseline: dict | None) -> dict[str, Any] | None:
    if not baseline:
        return None
    f = _week(facts)
    out = {}
    for path in PATHS:
        n = f.paths.of(path)
        compute = _compute_eur(f.cpu.of(path), baseline)
        llm = large_model_eur(f, baseline, path)
        review = _review_eur(f.reviews.of(path), baseline)
        out[path] = {"documents": n, "compute_eur": compute, "large_model_eur": llm, "review_eur": review,
                     "eur_per_document": _div(compute + llm + review, n)}
    # The paths split the documents by who settled them; how many the large model answered on any path
    # is told apart, or a line whose every large-model answer a person checks reads "large model 0".
    out["large"]["answered"] = f.large_used
    out["manual"] = {"eur_per_document": baseline["manual_minutes"] / 60 * baseline["hourly_cost"]}
    return out


def footprint(facts: WeekFacts | None, baseline: dict | None) -> dict[str, Any]:
    f = _week(facts)
    docs = f.docs + f.dead
    cpu = f.cpu.total
    out: dict[str, Any] = {"documents": docs, "cpu_seconds": cpu, "cpu_seconds_per_1k": _div(cpu * 1000, docs)}
    if baseline:
        wh = cpu * baseline["watts_per_core"] / 3600
        co2 = wh / 1000 * baseline["grid_g_co2_per_kwh"]
        out.update(wh=wh, co2_g=co2, wh_per_1k=_div(wh * 1000, docs), co2_g_per_1k=_div(co2 * 1000, docs))
    return out


def first_answer(facts: WeekFacts | None) -> dict[str, Any] | None:
    dist = _week(facts).answer
    if not dist.n:
        return None
    median, p95 = dist.quantiles()
    return {"n": dist.n, "median_h": _hours(median), "p95_h": _hours(p95), "median_s": median, "p95_s": p95}


def cascade_funnel(facts: WeekFacts | None) -> list[dict[str, Any]]:
    out = []
    for node, c in sorted(_week(facts).cascade.items()):
        total = c.funnel.total()
        out.append({"node": node, "total": total, **c.funnel.to_json(),
                    "shares": {p: _div(c.funnel.of(p), total) for p in PATHS}})
    return out


def what_if(facts: WeekFacts | None, baseline: dict | None, node: str, threshold: float) -> dict[str, Any] | None:
    """Estimated automation, accuracy and cost per document if the small model's threshold were `threshold`.

    Documents whose recorded small-model confidence is ≥ threshold stop at the small model. The rest
    escalate; of those, the large model keeps the share it kept in the ledger (decided by large /
    escalated), people take the remainder. Accuracy of the small model above the threshold comes
    from reviewed labels of those documents (with its sample size); people are taken as right.
    """
    c = _week(facts).cascade.get(node)
    if not c:
        return None
    bins = c.bins
    total = sum(b[N] for b in bins)
    if not total:
        return None
    cut = isoweeks.conf_bin(threshold)
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
    result = {"node": node, "threshold": cut / 100, "documents": total, "small": small, "large": large,
              "human": human, "automation_rate": (small + large) / total, "small_accuracy": small_acc,
              "large_accuracy": large_acc, "accuracy": estimate, "eur_per_document": None}
    if baseline:
        result["eur_per_document"] = _what_if_eur(c, baseline, escalated, human, total)
    return result


def _what_if_eur(c: CascadeFacts, baseline: dict, escalated: float, human: float, total: int) -> float:
    calls = c.llm_calls
    price = baseline.get("large_model_eur_per_1k_tokens")
    if not calls:
        per_call = 0.0
    elif price is not None:
        per_call = c.llm_tokens / calls / 1000 * price
    else:
        per_call = c.llm_eur / calls
    compute = _compute_eur(c.cpu, baseline) / max(1, c.items)
    # Every escalated document asks the large model (when the cascade has one), then maybe a person.
    return compute + escalated * per_call / total + _review_eur(human, baseline) / total


def what_if_table(facts: WeekFacts | None, baseline: dict | None, node: str) -> list[dict[str, Any]]:
    """what_if at every hundredth from 0.00 to 1.00 (the page's slider reads this table)."""
    return [r for r in (what_if(facts, baseline, node, t / 100) for t in range(BINS)) if r is not None]


def promotions(workflow: Any, monday: date) -> list[dict[str, Any]]:
    """Model versions promoted during the week (approved promotion requests), for the models this
    workflow uses: those its nodes name and the classifiers made for its steps."""
    start, end = isoweeks.week_bounds(monday)
    used = models_of(workflow)
    approved = (PromotionRequest.objects.filter(status=PromotionRequest.APPROVED, decided_at__gte=start,
                                                decided_at__lt=end)
                .filter(Q(version__model__name__in=used) | Q(version__model__origin_workflow=workflow))
                .select_related("version__model", "previous_version__model", "decided_by").order_by("decided_at", "id"))
    return [{"at": p.decided_at, "model": p.version.model.name, "version": p.version.ref, "alias": p.alias,
             "previous": p.previous_version.ref if p.previous_version else None,
             "by": p.decided_by.get_username() if p.decided_by else ""} for p in approved]


def models_of(workflow: Any) -> set[str]:
    names = set()
    latest = workflow.latest
    for node in (latest.graph.get("nodes", []) if latest else []):
        ref = (node.get("config") or {}).get("model")
        if isinstance(ref, str) and ref:
            names.add(ref.split("@")[0].split(":")[0])
    return names


def labels_gained(workflow: Any, monday: date) -> dict[str, int]:
    """Class labels made during the week, by source: reviews and spot checks of this workflow's items,
    and uploaded labelled rows of the models it uses (what the next training can learn from)."""
    start, end = isoweeks.week_bounds(monday)
    models = RegisteredModel.objects.filter(Q(name__in=models_of(workflow)) | Q(origin_workflow=workflow))
    counts = dict(Label.objects.filter(created_at__gte=start, created_at__lt=end, field="")
                  .filter(Q(run__workflow=workflow) | Q(run__isnull=True, model__in=models))
                  .values_list("source").annotate(n=Count("id")).values_list("source", "n"))
    out = {source: counts.get(source, 0) for source in (Label.SPOT_CHECK, Label.REVIEW, Label.UPLOAD)}
    return {**out, "total": sum(out.values())}


def learning(weeks: dict[date, WeekFacts | None], monday: date) -> list[dict[str, Any]]:
    """Per node: spot-checked accuracy week by week (weeks with spot checks, up to `monday`), and its
    change from the week before `monday` (None unless both weeks were spot-checked)."""
    nodes = sorted({node for facts in weeks.values() if facts is not None for node in facts.spot.nodes})
    out = []
    for node in nodes:
        series = []
        for m, facts in sorted(weeks.items()):
            hits = facts.spot.nodes.get(node) if facts is not None and m <= monday else None
            if hits is not None and hits.n:
                series.append({"week": isoweeks.week_label(m), "monday": m, **proportion(hits.correct, hits.n)})
        by_monday = {w["monday"]: w for w in series}
        now, before = by_monday.get(monday), by_monday.get(monday - timedelta(weeks=1))
        change = now["rate"] - before["rate"] if now and before else None
        # As a headline card reads it, so the pages word the change the same way ("+3.5 pts vs last week").
        card = {"value": now["rate"] if now else None, "previous": before["rate"] if before else None,
                "change": change, "unit": "share"}
        out.append({"node": node, "weeks": series, "change": change, "card": card})
    return out


def drift_alerts(workflow: Any) -> list[dict[str, Any]]:
    """The governance module's drift alerts for this workflow's model nodes."""
    latest = workflow.latest
    nodes = {n["id"] for n in (latest.graph.get("nodes", []) if latest else []) if (n.get("config") or {}).get("model")}
    out = []
    for node in sorted(nodes):
        try:
            result = drift_report.node_drift(workflow, node)
        except Exception as exc:  # a governance bug must not take the business page down
            out.append({"node": node, "status": "error",
                        "message": gettext("drift check failed: %(error)s") % {"error": exc}})
            continue
        out.append({"node": node, "status": result.status, "message": result.message})
    return out


def open_risks(workflow: Any, facts: WeekFacts | None, baseline: dict | None, drift: list[dict] | None) -> list[str]:
    """Plain-language risks a business owner should know about this week, in the reader's language (a
    signed pack keeps them in the signer's)."""
    risks = []
    if not baseline:
        risks.append(gettext("No baseline: savings and costs cannot be computed. Set the baseline."))
    dead = DeadLetter.objects.filter(run__workflow=workflow, retried_at__isnull=True).count()
    if dead:
        risks.append(ngettext("%(count)s document(s) failed and wait in the dead-letter list (retry them or handle "
                              "them by hand).",
                              "%(count)s document(s) failed and wait in the dead-letter list (retry them or handle "
                              "them by hand).", dead) % {"count": dead})
    backlog = ReviewTask.objects.filter(run__workflow=workflow, status=ReviewTask.OPEN, kind=ReviewTask.ESCALATION)
    waiting = backlog.count()
    if waiting:
        oldest = backlog.order_by("created_at").values_list("created_at", flat=True).first()
        risks.append(ngettext("%(count)s document(s) wait for a reviewer, the oldest since %(since)s.",
                              "%(count)s document(s) wait for a reviewer, the oldest since %(since)s.", waiting)
                     % {"count": waiting, "since": dateformat.format(oldest, "d M H:i")})
    ct = cycle_time(facts, baseline)
    if ct["p95_within_sla"] is False:
        risks.append(gettext("The slowest 5 %% of documents took over %(p95)s h, beyond the %(sla)s h SLA.")
                     % {"p95": number(ct["p95_h"], 1), "sla": number(ct["sla_h"], 1)})
    acc = accuracy(facts, baseline)
    e2e = acc["end_to_end"]
    if e2e["n"] and e2e["n"] < 30:
        risks.append(ngettext("Accuracy rests on only %(count)s spot-checked document(s); treat it as a rough "
                              "indication.",
                              "Accuracy rests on only %(count)s spot-checked document(s); treat it as a rough "
                              "indication.", e2e["n"]) % {"count": e2e["n"]})
    elif not e2e["n"] and _week(facts).docs:
        risks.append(gettext("No spot checks this week: the accuracy of what the models decided alone is not "
                             "measured. Decide the spot checks in the review queue."))
    if acc["manual"] is not None and e2e["high"] is not None and e2e["high"] < acc["manual"]:
        risks.append(gettext("Spot-checked accuracy (%(rate)s) is below the manual baseline (%(manual)s) even at the "
                             "top of its 95 %% interval.")
                     % {"rate": f"{e2e['rate']:.0%}", "manual": f"{acc['manual']:.0%}"})
    flagged = _week(facts).label_sets.documents
    if flagged:
        risks.append(ngettext("%(count)s document(s) were labelled with a label set that no longer matches the "
                              "model's production version or the step's labels; they are left out of automation "
                              "and savings.",
                              "%(count)s document(s) were labelled with a label set that no longer matches the "
                              "model's production version or the step's labels; they are left out of automation "
                              "and savings.", flagged) % {"count": flagged})
    for alert in drift or []:
        if alert["status"] in ("alert", "error"):
            risks.append(gettext("Drift at %(node)s: %(message)s")
                         % {"node": alert["node"], "message": alert["message"]})
    return risks


# --- a whole dashboard ----------------------------------------------------------------------------

def summary(facts: WeekFacts | None, baseline: dict | None) -> dict[str, Any]:
    """The headline numbers of one set of facts."""
    ct = cycle_time(facts, baseline)
    auto = automation_rate(facts)
    acc = accuracy(facts, baseline)
    save = savings(facts, baseline)
    cost = cost_per_document(facts, baseline)
    foot = footprint(facts, baseline)
    answer = first_answer(facts)
    return {"documents": documents(facts), "cycle_time": ct, "automation": auto, "accuracy": acc, "savings": save,
            "cost_per_document": cost, "footprint": foot, "first_answer": answer, "funnel": cascade_funnel(facts),
            "label_sets": label_sets(facts)}


def _cost_per_document(s: dict[str, Any]) -> float | None:
    """What the factory spent per completed document (None without a baseline or documents)."""
    return _div(_part(s["savings"], "factory_eur"), s["documents"]["completed"])


HEADLINES = [
    # (key, title, getter, unit, higher is better); titles are read in the reader's language by headlines()
    ("documents", gettext_lazy("Documents completed"), lambda s: s["documents"]["completed"], "count", True),
    ("cycle", gettext_lazy("Cycle time (median)"), lambda s: s["cycle_time"]["median_h"], "hours", False),
    ("automation", gettext_lazy("Automation rate"), lambda s: s["automation"]["rate"], "share", True),
    ("accuracy", gettext_lazy("Accuracy (spot checks)"), lambda s: s["accuracy"]["end_to_end"]["rate"], "share",
     True),
    ("savings", gettext_lazy("Savings"), lambda s: _part(s["savings"], "savings_eur"), "eur", True),
    ("cost", gettext_lazy("Cost per document"), lambda s: _cost_per_document(s), "eur", False),
    ("energy", gettext_lazy("Energy per 1,000 documents"), lambda s: s["footprint"].get("wh_per_1k"), "wh", False),
    ("answer", gettext_lazy("Time to first answer (median)"), lambda s: _part(s["first_answer"], "median_h"), "hours",
     False),
]


def headlines(now: dict[str, Any], before: dict[str, Any]) -> list[dict[str, Any]]:
    cards = []
    for key, title, get, unit, higher_better in HEADLINES:
        value, previous = get(now), get(before)
        change = None if value is None or previous is None else value - previous
        good = None if not change else (change > 0) == higher_better
        cards.append({"key": key, "title": str(title), "value": value, "previous": previous, "change": change,
                      "unit": unit, "good": good})
    return cards


def trend(weeks: dict[date, WeekFacts | None], baseline: dict | None) -> dict[str, list]:
    """Weekly series for the charts: x in Unix seconds of each Monday 00:00 (in the installation's time zone),
    one list per KPI."""
    series: dict[str, list] = {"x": [], "label": [], "documents": [], "automation": [], "cycle_median_h": [],
                               "cycle_p95_h": [], "accuracy": [], "savings_eur": [], "eur_per_document": []}
    for monday, facts in weeks.items():
        s = summary(facts, baseline)
        series["x"].append(int(isoweeks.week_bounds(monday)[0].timestamp()))
        series["label"].append(isoweeks.week_label(monday))
        series["documents"].append(s["documents"]["completed"])
        series["automation"].append(_pct(s["automation"]["rate"]))
        series["cycle_median_h"].append(s["cycle_time"]["median_h"])
        series["cycle_p95_h"].append(s["cycle_time"]["p95_h"])
        series["accuracy"].append(_pct(s["accuracy"]["end_to_end"]["rate"]))
        series["savings_eur"].append(_part(s["savings"], "savings_eur"))
        series["eur_per_document"].append(_cost_per_document(s))
    return series


def _pct(x: float | None) -> float | None:
    return None if x is None else round(x * 100, 2)


def baseline_of(workflow: Any) -> dict[str, Any] | None:
    row = Baseline.objects.filter(workflow=workflow).first()
    return row.as_dict() if row else None


def dashboard(workflows: list[Any], monday: date, *, weeks: int = TREND_WEEKS, across: bool = False) -> dict[str, Any]:
    """Everything a KPI page shows for these workflows and this week (merged when `across`). `facts` is the
    week's WeekFacts, None when no document finished in it."""
    ids = [w.pk for w in workflows]
    rollup.ensure_fresh(ids)
    mondays = isoweeks.weeks_back(monday, weeks)
    by_week = rollup.load_weeks(ids, mondays)
    if across or len(workflows) != 1:
        return _across(workflows, monday, mondays, by_week)
    baseline = baseline_of(workflows[0])
    facts, previous = by_week[monday], by_week[monday - timedelta(weeks=1)]
    now, before = summary(facts, baseline), summary(previous, baseline)
    return {"week": monday, "week_label": isoweeks.week_label(monday), "baseline": baseline, "facts": facts,
            "summary": now, "cards": headlines(now, before), "trend": trend(by_week, baseline),
            "learning": learning(by_week, monday)}


def _across(workflows: list[Any], monday: date, mondays: list[date],
            by_week: dict[date, WeekFacts | None]) -> dict[str, Any]:
    """Across workflows: counts and shares merge; euros are summed per workflow with its own baseline."""
    baselines = {b.workflow_id: b.as_dict() for b in Baseline.objects.filter(workflow__in=workflows)}
    ids = [w.pk for w in workflows]
    per_workflow = rollup.load_weeks_by_workflow(ids, [monday, monday - timedelta(weeks=1)])
    rows = []
    totals = {monday: 0.0, monday - timedelta(weeks=1): 0.0}
    for w in workflows:
        this = summary(per_workflow.get((w.pk, monday)), baselines.get(w.pk))
        for m in totals:
            s = savings(per_workflow.get((w.pk, m)), baselines.get(w.pk))
            totals[m] += _part(s, "savings_eur") or 0.0
        rows.append({"workflow": w, "summary": this, "has_baseline": w.pk in baselines})
    now, before = summary(by_week[monday], None), summary(by_week[monday - timedelta(weeks=1)], None)
    cards = headlines(now, before)
    for card in cards:
        if card["key"] == "savings":
            card.update(value=totals[monday], previous=totals[monday - timedelta(weeks=1)],
                        change=totals[monday] - totals[monday - timedelta(weeks=1)])
            card["good"] = card["change"] > 0 if card["change"] else None
    cards = [c for c in cards if c["key"] not in ("cost", "energy")]
    return {"week": monday, "week_label": isoweeks.week_label(monday), "baseline": None, "facts": by_week[monday],
            "summary": now, "cards": cards, "trend": trend(by_week, None), "rows": rows}
