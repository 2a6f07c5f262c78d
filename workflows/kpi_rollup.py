"""From the ledger to weekly facts: one KpiWeek row per workflow and ISO week (Europe/Rome).

A week's facts are counts, sums and histograms (additive, so weeks and workflows merge by adding),
plus the exact median/p95 of that one week. Euros, energy and CO₂ are not stored: they are computed
at read time from the facts and the current baseline (workflows/kpis.py), so editing the baseline
needs no rebuild.

Which week a document belongs to: the week (Monday 00:00 to Monday 00:00, Europe/Rome) in which it
finished — completed or given up as a dead letter. Documents still waiting for a reviewer count in
the week they are finally completed.

Freshness: `ensure_fresh` looks for items finished (and labels written) after the workflow's mark
and rebuilds only the weeks they fall in — with an idle ledger it costs one indexed query. The mark
trails the rebuild by REFRESH_MARGIN so a transaction that committed late is still picked up. What
it does not notice: a dead letter retried into a later week is counted in its old week until
`rebuild(workflow)` runs (the signed pack keeps what was signed in any case).
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, transaction
from django.db.models import Case, Max, Min, Value, When
from django.db.models.fields.json import KT
from django.utils import timezone

ROME = ZoneInfo("Europe/Rome")
REFRESH_MARGIN = timedelta(seconds=10)  # longer than any micro-batch commit takes
PATHS = ("small", "large", "human")
HIST_BASE = 1.02  # cycle-time histogram buckets are 2 % wide: merged quantiles are within ~1 %
CHUNK = 2000  # item ids per IN (...) query
BINS = 101  # small-model confidence in hundredths, 0.00 … 1.00
# bins[b] = [items, reviewed, small model right, decided by large, sent to a human, large reviewed, large right]
N, REVIEWED, SMALL_OK, LARGE, HUMAN, LARGE_REVIEWED, LARGE_OK = range(7)


# --- ISO weeks in Europe/Rome ---------------------------------------------------------------------

def week_start_of(moment: datetime) -> date:
    local = moment.astimezone(ROME).date()
    return local - timedelta(days=local.weekday())


def week_bounds(monday: date) -> tuple[datetime, datetime]:
    """[Monday 00:00, next Monday 00:00) in Rome, as aware datetimes (DST weeks are 167 or 169 h)."""
    return (datetime.combine(monday, time(0), tzinfo=ROME), datetime.combine(monday + timedelta(days=7), time(0), tzinfo=ROME))


def week_label(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def parse_week(text: str | None) -> date | None:
    """'2025-W14' → that ISO week's Monday; None when it is not a week."""
    try:
        year, week = (text or "").upper().split("-W")
        return date.fromisocalendar(int(year), int(week), 1)
    except (ValueError, TypeError):
        return None


def current_week() -> date:
    return week_start_of(timezone.now())


def weeks_back(monday: date, count: int) -> list[date]:
    return [monday - timedelta(weeks=i) for i in range(count - 1, -1, -1)]


# --- quantiles and histograms ---------------------------------------------------------------------

def nearest_rank(sorted_values: list[float], q: float) -> float | None:
    """The q-quantile by the nearest-rank method: the ⌈q·n⌉-th smallest value."""
    if not sorted_values:
        return None
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


def bucket(seconds: float) -> int:
    return 0 if seconds < HIST_BASE else int(math.log(seconds) / math.log(HIST_BASE))


def bucket_edges(k: int) -> tuple[float, float]:
    return (0.0 if k == 0 else HIST_BASE ** k), HIST_BASE ** (k + 1)


def distribution(values: list[float]) -> dict[str, Any]:
    values = sorted(values)
    hist: dict[str, int] = defaultdict(int)
    for v in values:
        hist[str(bucket(v))] += 1
    return {"n": len(values), "median": statistics.median(values) if values else None,
            "p95": nearest_rank(values, 0.95), "sum": sum(values), "hist": dict(hist)}


def hist_quantile(hist: dict[str, int], q: float) -> float | None:
    """Nearest-rank quantile read from a histogram: the geometric middle of the bucket holding it."""
    total = sum(hist.values())
    if not total:
        return None
    need = max(1, math.ceil(q * total))
    seen = 0
    for k in sorted(hist, key=int):
        seen += hist[k]
        if seen >= need:
            lo, hi = bucket_edges(int(k))
            return math.sqrt(lo * hi) if lo else hi / 2
    return None


def hist_share_below(hist: dict[str, int], limit: float) -> float | None:
    """Share of values ≤ limit; the one bucket straddling the limit is split linearly."""
    total = sum(hist.values())
    if not total:
        return None
    below = 0.0
    for k, count in hist.items():
        lo, hi = bucket_edges(int(k))
        if hi <= limit:
            below += count
        elif lo < limit:
            below += count * (limit - lo) / (hi - lo)
    return below / total


# --- one week of one workflow ---------------------------------------------------------------------

def _num(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def empty_cascade() -> dict[str, Any]:
    return {"funnel": dict.fromkeys(PATHS, 0), "bins": [[0] * 7 for _ in range(BINS)], "llm_eur": 0.0, "llm_tokens": 0.0,
            "llm_calls": 0, "cpu": 0.0, "items": 0}


def conf_bin(confidence: float) -> int:
    # The epsilon keeps 0.29 in bin 29 although 0.29 * 100 is 28.999…
    return min(BINS - 1, max(0, int(confidence * 100 + 1e-9)))


def compute_week(workflow_id: int, monday: date) -> dict[str, Any] | None:
    """The facts of one workflow's week straight from the ledger; None when nothing finished in it."""
    from workflows.models import Decision, Item, NodeStats, ReviewTask
    from workflows.models.registry import Label

    start, end = week_bounds(monday)
    in_week = {"run__workflow_id": workflow_id, "finished_at__gte": start, "finished_at__lt": end,
               "status__in": [Item.DONE, Item.DEAD]}
    items = {i: [run, status, received, finished] for i, run, status, received, finished in
             Item.objects.filter(**in_week).values_list("id", "run_id", "status", "received_at", "finished_at")}
    if not items:
        return None
    # By (run, item ids), in chunks, along the ledger's unique (run, item, node) index: the same plan
    # on SQLite and PostgreSQL whatever the size of the ledger (a join on the week's range let
    # SQLite scan the decisions).
    by_run: dict[int, list[int]] = {}
    for item_id, (run_id, *_rest) in items.items():
        by_run.setdefault(run_id, []).append(item_id)
    chunks = [(run_id, ids[i:i + CHUNK]) for run_id, ids in by_run.items() for i in range(0, len(ids), CHUNK)]
    decisions = []
    for run_id, chunk in chunks:
        decisions += Decision.objects.filter(run_id=run_id, item_id__in=chunk).annotate(
            decided_by=KT("output__decided_by"), small_conf=KT("output__small__confidence"), small_label=KT("output__small__label"),
            llm_eur=KT("output__llm__cost_eur"), llm_in=KT("output__llm__tokens_in"), llm_out=KT("output__llm__tokens_out"),
            has_answer=Case(When(output__has_key="answer", then=Value(True)), default=Value(False)),
            asked_large=Case(When(output__has_key="large_answer", then=Value(True)), default=Value(False)),
        ).values_list("item_id", "run_id", "node", "model_ref", "label", "confidence", "created_at", "decided_by", "small_conf",
                      "small_label", "llm_eur", "llm_in", "llm_out", "has_answer", "asked_large")
    run_ids = {v[0] for v in items.values()}
    cpu_avg: dict[tuple, float] = {}
    per_call: dict[tuple, tuple[float, float]] = {}
    for run, node, items_in, cpu, extra in NodeStats.objects.filter(run_id__in=run_ids).values_list(
            "run_id", "node", "items_in", "cpu_seconds", "extra"):
        cpu_avg[(run, node)] = (cpu / items_in) if items_in else 0.0
        calls = (extra or {}).get("llm_calls") or 0
        if calls:
            per_call[(run, node)] = (float(extra.get("cost_eur", 0.0)) / calls, float(extra.get("tokens", 0)) / calls)
    reviews: dict[int, int] = defaultdict(int)
    truth: dict[tuple[int, str], tuple[str, str]] = {}
    for _run_id, chunk in chunks:
        for item_id in ReviewTask.objects.filter(item_id__in=chunk, status=ReviewTask.DECIDED).values_list("item_id", flat=True):
            reviews[item_id] += 1
        for item_id, node, label, predicted in Label.objects.filter(item_id__in=chunk, source=Label.REVIEW).values_list(
                "item_id", "node", "label", "predicted"):
            truth[(item_id, node)] = (label, predicted)

    cpu: dict[int, float] = defaultdict(float)
    eur: dict[int, float] = defaultdict(float)
    tokens: dict[int, float] = defaultdict(float)
    large: set[int] = set()
    human: set[int] = set(reviews)
    answered: dict[int, datetime] = {}
    models: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    cascade: dict[str, dict[str, Any]] = {}
    for (item_id, run, node, model_ref, label, confidence, created, decided_by, small_conf, small_label, llm_eur, llm_in,
         llm_out, has_answer, asked_large) in decisions:
        share = cpu_avg.get((run, node), 0.0)
        cpu[item_id] += share
        if model_ref:
            models[node][model_ref] += 1
        cost = _num(llm_eur)
        if cost is not None:
            eur[item_id] += cost
            tokens[item_id] += (_num(llm_in) or 0) + (_num(llm_out) or 0)
            large.add(item_id)
        if has_answer and (item_id not in answered or created < answered[item_id]):
            answered[item_id] = created
        if not decided_by:
            continue
        c = cascade.setdefault(node, empty_cascade())
        c["items"] += 1
        c["cpu"] += share
        called = decided_by == "large" or bool(asked_large)
        if called and (run, node) in per_call:
            call_eur, call_tokens = per_call[(run, node)]
            eur[item_id] += call_eur
            tokens[item_id] += call_tokens
            c["llm_eur"] += call_eur
            c["llm_tokens"] += call_tokens
            c["llm_calls"] += 1
        if decided_by == "human":
            human.add(item_id)
        elif decided_by == "large":
            large.add(item_id)
        path = decided_by if decided_by in PATHS else "small"
        c["funnel"][path] += 1
        sc = _num(small_conf) if decided_by == "large" else confidence
        if sc is None:
            continue
        row = c["bins"][conf_bin(sc)]
        row[N] += 1
        said = (small_label if decided_by == "large" else label) or ""
        known = truth.get((item_id, node))
        if known:
            row[REVIEWED] += 1
            row[SMALL_OK] += int(said == known[0])
        if decided_by == "large":
            row[LARGE] += 1
            if known:
                row[LARGE_REVIEWED] += 1
                row[LARGE_OK] += int(label == known[0])
        elif decided_by == "human":
            row[HUMAN] += 1

    facts: dict[str, Any] = {
        "docs": 0, "dead": 0, "paths": dict.fromkeys(PATHS, 0),
        "cpu": {"total": 0.0, **dict.fromkeys(PATHS, 0.0)}, "llm_eur": {"total": 0.0, **dict.fromkeys(PATHS, 0.0)},
        "llm_tokens": {"total": 0.0, **dict.fromkeys(PATHS, 0.0)}, "reviews": {"total": 0, **dict.fromkeys(PATHS, 0)},
    }
    cycle: list[float] = []
    answer: list[float] = []
    for item_id, (_run, status, received, finished) in items.items():
        facts["cpu"]["total"] += cpu[item_id]
        facts["llm_eur"]["total"] += eur[item_id]
        facts["llm_tokens"]["total"] += tokens[item_id]
        facts["reviews"]["total"] += reviews[item_id]
        if status != Item.DONE:
            facts["dead"] += 1
            continue
        facts["docs"] += 1
        path = "human" if item_id in human else "large" if item_id in large else "small"
        facts["paths"][path] += 1
        facts["cpu"][path] += cpu[item_id]
        facts["llm_eur"][path] += eur[item_id]
        facts["llm_tokens"][path] += tokens[item_id]
        facts["reviews"][path] += reviews[item_id]
        cycle.append(max(0.0, (finished - received).total_seconds()))
        if item_id in answered:
            answer.append(max(0.0, (answered[item_id] - received).total_seconds()))
    facts["cycle"] = distribution(cycle)
    facts["answer"] = distribution(answer)
    nodes: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    e2e: dict[int, bool] = {}
    for (item_id, node), (label, predicted) in truth.items():
        if not predicted or item_id not in items:
            continue
        nodes[node][0] += 1
        nodes[node][1] += int(label == predicted)
        e2e[item_id] = e2e.get(item_id, True) and label == predicted
    facts["accuracy"] = {"nodes": dict(nodes), "e2e": [len(e2e), sum(e2e.values())]}
    facts["cascade"] = cascade
    facts["models"] = {node: dict(refs) for node, refs in models.items()}
    return facts


# --- merging --------------------------------------------------------------------------------------

EXACT = ("median", "p95")


def merge(a: Any, b: Any) -> Any:
    """Add two facts trees: numbers add, lists add element-wise, dicts merge by key."""
    if a is None:
        return b
    if b is None:
        return a
    if isinstance(a, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = merge(a.get(key), value) if key not in EXACT else None
        for key in EXACT:
            if key in a and key not in b:
                out[key] = None
        return out
    if isinstance(a, list):
        return [merge(x, y) for x, y in zip(a, b, strict=True)]
    return a + b


def merge_all(parts: list[dict[str, Any]]) -> dict[str, Any] | None:
    if len(parts) == 1:
        return parts[0]
    merged = None
    for part in parts:
        merged = merge(merged, part)
    return merged


# --- keeping KpiWeek rows fresh -------------------------------------------------------------------

def store_week(workflow_id: int, monday: date) -> dict[str, Any] | None:
    from workflows.models import KpiWeek

    facts = compute_week(workflow_id, monday)
    if facts is None:
        KpiWeek.objects.filter(workflow_id=workflow_id, week_start=monday).delete()
        return None
    try:
        with transaction.atomic():
            KpiWeek.objects.update_or_create(workflow_id=workflow_id, week_start=monday,
                                             defaults={"facts": facts, "computed_at": timezone.now()})
    except IntegrityError:
        pass  # a concurrent page view stored the same week a moment ago
    return facts


def _set_mark(workflow_id: int, mark: datetime) -> None:
    from workflows.models import KpiRefresh

    try:
        with transaction.atomic():
            KpiRefresh.objects.update_or_create(workflow_id=workflow_id, defaults={"mark": mark})
    except IntegrityError:
        pass


def _weeks_between(first: datetime, last: datetime) -> list[date]:
    monday, end = week_start_of(first), week_start_of(last)
    out = []
    while monday <= end:
        out.append(monday)
        monday += timedelta(weeks=1)
    return out


def rebuild(workflow_id: int) -> int:
    """Every week of a workflow from scratch; returns the number of weeks with documents."""
    from workflows.models import Item, KpiWeek

    started = timezone.now()
    span = Item.objects.filter(run__workflow_id=workflow_id, finished_at__isnull=False).aggregate(lo=Min("finished_at"), hi=Max("finished_at"))
    weeks = _weeks_between(span["lo"], span["hi"]) if span["lo"] else []
    stored = sum(store_week(workflow_id, monday) is not None for monday in weeks)
    KpiWeek.objects.filter(workflow_id=workflow_id).exclude(week_start__in=weeks).delete()
    _set_mark(workflow_id, started - REFRESH_MARGIN)
    return stored


def ensure_fresh(workflow_ids: list[int]) -> None:
    """Bring the KpiWeek rows of these workflows up to date with the ledger (see module docstring).

    The look-up walks the finish-time and label-time indexes from the oldest mark (a short range once
    the rollups are fresh) and only then asks which workflow each recent item belongs to, so its cost
    does not grow with the ledger.
    """
    from workflows.models import Item, KpiRefresh, Run
    from workflows.models.registry import Label

    marks = dict(KpiRefresh.objects.filter(workflow_id__in=workflow_ids).values_list("workflow_id", "mark"))
    for workflow_id in workflow_ids:
        if workflow_id not in marks:
            rebuild(workflow_id)
    known = [w for w in workflow_ids if w in marks]
    if not known:
        return
    started = timezone.now()
    lowest = min(marks[w] for w in known)
    # (run, moment that made it stale, week-defining finish time)
    changes = [(run, finished, finished) for run, finished in
               Item.objects.filter(finished_at__gt=lowest).values_list("run_id", "finished_at")]
    labelled = dict(Label.objects.filter(created_at__gt=lowest, item__isnull=False).values_list("item_id", "created_at"))
    if labelled:
        for item_id, run, finished in Item.objects.filter(id__in=list(labelled), finished_at__isnull=False).values_list(
                "id", "run_id", "finished_at"):
            changes.append((run, labelled[item_id], finished))
    if not changes:
        return
    workflow_of = dict(Run.objects.filter(id__in={c[0] for c in changes}, workflow_id__in=known).values_list("id", "workflow_id"))
    spans: dict[int, list[datetime]] = defaultdict(list)
    for run, moment, finished in changes:
        w = workflow_of.get(run)
        if w is not None and moment > marks[w]:
            spans[w].append(finished)
    for w, moments in spans.items():
        for monday in _weeks_between(min(moments), max(moments)):
            store_week(w, monday)
        _set_mark(w, started - REFRESH_MARGIN)


def load_weeks(workflow_ids: list[int], mondays: list[date]) -> dict[date, dict[str, Any] | None]:
    """{monday: facts merged over the workflows (None when no document finished that week)}."""
    from workflows.models import KpiWeek

    parts: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for monday, facts in KpiWeek.objects.filter(workflow_id__in=workflow_ids, week_start__in=mondays).values_list("week_start", "facts"):
        parts[monday].append(facts)
    return {m: merge_all(parts[m]) if parts.get(m) else None for m in mondays}


def load_weeks_by_workflow(workflow_ids: list[int], mondays: list[date]) -> dict[tuple[int, date], dict[str, Any]]:
    from workflows.models import KpiWeek

    rows = KpiWeek.objects.filter(workflow_id__in=workflow_ids, week_start__in=mondays)
    return {(w, m): facts for w, m, facts in rows.values_list("workflow_id", "week_start", "facts")}
