"""From the ledger to weekly facts: one KpiWeek row per workflow and ISO week (weeks.py says
which week; facts.py what is kept).

Which week a document belongs to: the week in which it finished — completed or given up as a dead
letter. A document still waiting for a reviewer counts as waiting (not automated) in the week it was
parked, and as a completed document in the week a person's decision lets it finish.

Freshness: `ensure_fresh` looks for items finished (and labels written) after the workflow's mark
and rebuilds only the weeks they fall in — with an idle ledger it costs one indexed query. The mark
trails the rebuild by REFRESH_MARGIN so a transaction that committed late is still picked up. It
also notices escalations decided since (the week the item waited in; decided_at has no index, so
this is a scan of the review tasks, small beside the ledger) and production aliases moved since
(the label sets documents are judged against: every week of a workflow that used the model is
counted again). What it does not notice: a dead letter retried into a later week is counted in its
old week until `rebuild(workflow)` runs (the signed pack keeps what was signed in any case).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from django.db import IntegrityError, transaction
from django.db.models import Case, Max, Min, Value, When
from django.db.models.fields.json import KT
from django.utils import timezone

from workflows.kpi.facts import (
    HUMAN,
    LARGE,
    LARGE_OK,
    LARGE_REVIEWED,
    PATHS,
    REVIEWED,
    SMALL_OK,
    AccuracyFacts,
    CascadeFacts,
    Distribution,
    Hits,
    LabelSetFacts,
    N,
    WeekFacts,
    merge_all,
)
from workflows.kpi.isoweeks import conf_bin, week_bounds, week_start_of
from workflows.models import Decision, Item, KpiRefresh, KpiWeek, NodeStats, ReviewTask, Run, Workflow
from workflows.models.registry import REF, Alias, Label, ModelVersion

REFRESH_MARGIN = timedelta(seconds=10)  # longer than any micro-batch commit takes
CHUNK = 2000  # item ids per IN (...) query


# --- one week of one workflow, from the ledger ----------------------------------------------------

class _Finished(NamedTuple):
    run_id: int
    status: str
    received: datetime
    finished: datetime


class _Decision(NamedTuple):
    """One ledger row with the parts of its JSON output the facts need (strings, as KT reads them)."""

    item_id: int
    run_id: int
    node: str
    model_ref: str
    label: str | None
    confidence: float | None
    created_at: datetime
    decided_by: str | None  # set by cascade nodes: small, large or human
    small_conf: str | None
    small_label: str | None
    llm_eur: str | None
    llm_in: str | None
    llm_out: str | None
    has_answer: bool
    asked_large: bool


@dataclass
class _Ledger:
    """What one week's facts are counted from."""

    items: dict[int, _Finished]  # the items that finished in the week
    decisions: list[_Decision]
    cpu_share: dict[tuple[int, str], float]  # (run, node) → CPU-seconds per item processed
    per_call: dict[tuple[int, str], tuple[float, float]]  # (run, node) → (euros, tokens) per large-model call
    reviews: dict[int, int]  # item → decided review tasks
    truth: dict[tuple[int, str], tuple[str, str]]  # (item, node) → (reviewed label, predicted label)
    escalated: set[int] = field(default_factory=set)  # items a person decided
    spot: dict[tuple[int, str], tuple[str, str]] = field(default_factory=dict)  # the same, from spot checks
    node_labels: dict[tuple[int, str], frozenset[str]] = field(default_factory=dict)  # (run, node) → its labels


@dataclass
class _PerItem:
    """Totals per item over its decisions, and the path that settled it."""

    cpu: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    eur: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    tokens: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    large: set[int] = field(default_factory=set)
    human: set[int] = field(default_factory=set)
    asked_large: set[int] = field(default_factory=set)  # the large model answered, whoever then settled it
    answered: dict[int, datetime] = field(default_factory=dict)  # item → first decision with an answer

    def path_of(self, item_id: int) -> str:
        return "human" if item_id in self.human else "large" if item_id in self.large else "small"


def _num(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def compute_week(workflow_id: int, monday: date) -> WeekFacts | None:
    """The facts of one workflow's week straight from the ledger; None when nothing finished in it."""
    items = _finished_items(workflow_id, monday)
    waiting = _waiting_items(workflow_id, monday)
    if not items and not waiting:
        return None
    ledger = _read_ledger(items)
    facts = WeekFacts(waiting=waiting)
    per_item = _count_decisions(ledger, facts)
    _count_documents(ledger, per_item, facts)
    facts.accuracy = _count_accuracy(ledger.truth, ledger)
    facts.spot = _count_accuracy(ledger.spot, ledger)
    facts.label_sets = _count_label_sets(ledger, per_item)
    return facts


def _finished_items(workflow_id: int, monday: date) -> dict[int, _Finished]:
    start, end = week_bounds(monday)
    rows = Item.objects.filter(run__workflow_id=workflow_id, finished_at__gte=start, finished_at__lt=end,
                               status__in=[Item.DONE, Item.DEAD]).values_list("id", "run_id", "status", "received_at",
                                                                             "finished_at")
    return {item_id: _Finished(*rest) for item_id, *rest in rows}


def _waiting_items(workflow_id: int, monday: date) -> int:
    """Documents parked for a person in the week (the ledger sets finished_at when it parks an item, and
    clears it when a decision resumes it) and still waiting."""
    start, end = week_bounds(monday)
    return Item.objects.filter(run__workflow_id=workflow_id, status=Item.PARKED, finished_at__gte=start,
                               finished_at__lt=end).count()


def _read_ledger(items: dict[int, _Finished]) -> _Ledger:
    # By (run, item ids), in chunks, along the ledger's unique (run, item, node) index: the same plan
    # on SQLite and PostgreSQL whatever the size of the ledger (a join on the week's range let
    # SQLite scan the decisions).
    by_run: dict[int, list[int]] = {}
    for item_id, item in items.items():
        by_run.setdefault(item.run_id, []).append(item_id)
    chunks = [(run_id, ids[i:i + CHUNK]) for run_id, ids in by_run.items() for i in range(0, len(ids), CHUNK)]
    cpu_share, per_call = _node_costs(set(by_run))
    reviews, escalated, truth, spot = _reviews_and_truth([chunk for _run, chunk in chunks])
    return _Ledger(items, _decisions(chunks), cpu_share, per_call, reviews, truth, escalated, spot,
                   _node_labels(set(by_run)))


def _decisions(chunks: list[tuple[int, list[int]]]) -> list[_Decision]:
    out: list[_Decision] = []
    for run_id, chunk in chunks:
        rows = Decision.objects.filter(run_id=run_id, item_id__in=chunk).annotate(
            decided_by=KT("output__decided_by"), small_conf=KT("output__small__confidence"),
            small_label=KT("output__small__label"), llm_eur=KT("output__llm__cost_eur"),
            llm_in=KT("output__llm__tokens_in"), llm_out=KT("output__llm__tokens_out"),
            has_answer=Case(When(output__has_key="answer", then=Value(True)), default=Value(False)),
            asked_large=Case(When(output__has_key="large_answer", then=Value(True)), default=Value(False)),
        ).values_list(*_Decision._fields)
        out += [_Decision._make(row) for row in rows]
    return out


def _node_costs(run_ids: set[int]) -> tuple[dict[tuple[int, str], float], dict[tuple[int, str], tuple[float, float]]]:
    """Per (run, node): CPU-seconds per item it processed, and euros and tokens per large-model call."""
    cpu_share: dict[tuple[int, str], float] = {}
    per_call: dict[tuple[int, str], tuple[float, float]] = {}
    for run, node, items_in, cpu, extra in NodeStats.objects.filter(run_id__in=run_ids).values_list(
            "run_id", "node", "items_in", "cpu_seconds", "extra"):
        cpu_share[(run, node)] = (cpu / items_in) if items_in else 0.0
        extra = extra or {}
        calls = extra.get("llm_calls") or 0
        if calls:
            per_call[(run, node)] = (float(extra.get("cost_eur", 0.0)) / calls, float(extra.get("tokens", 0)) / calls)
    return cpu_share, per_call


Truth = dict[tuple[int, str], tuple[str, str]]


def _reviews_and_truth(chunks: list[list[int]]) -> tuple[dict[int, int], set[int], Truth, Truth]:
    """Decided review tasks per item (a person's time, spot checks included); the items a person decided
    (escalations: a spot check is the factory measuring itself, its item went on without anyone); and
    per (item, node) the judged label with the prediction it judged, from reviews of escalations and,
    apart, from spot checks. Class labels only."""
    reviews: dict[int, int] = defaultdict(int)
    escalated: set[int] = set()
    truth: Truth = {}
    spot: Truth = {}
    for chunk in chunks:
        for item_id, kind in ReviewTask.objects.filter(item_id__in=chunk, status=ReviewTask.DECIDED).values_list(
                "item_id", "kind"):
            reviews[item_id] += 1
            if kind == ReviewTask.ESCALATION:
                escalated.add(item_id)
        for item_id, node, label, predicted, source in Label.objects.filter(
                item_id__in=chunk, source__in=[Label.REVIEW, Label.SPOT_CHECK], field="").values_list(
                "item_id", "node", "label", "predicted", "source"):
            (spot if source == Label.SPOT_CHECK else truth)[(item_id, node)] = (label, predicted)
    return dict(reviews), escalated, truth, spot


def _node_labels(run_ids: set[int]) -> dict[tuple[int, str], frozenset[str]]:
    """Per (run, node): the labels the node itself names (a zero-shot classify step's, a cascade's), as
    the version the run ran had them."""
    out: dict[tuple[int, str], frozenset[str]] = {}
    for run_id, graph in Run.objects.filter(id__in=run_ids).values_list("id", "version__graph"):
        for n in (graph or {}).get("nodes") or []:
            labels = (n.get("config") or {}).get("labels") if isinstance(n, dict) else None
            if isinstance(labels, dict | list) and labels:
                out[(run_id, str(n.get("id")))] = frozenset(str(x) for x in labels)
    return out


def _count_decisions(ledger: _Ledger, facts: WeekFacts) -> _PerItem:
    """Walk the decisions once: per-item CPU, euros, tokens and first answer; models used; cascade facts."""
    per_item = _PerItem(human=set(ledger.escalated))
    for d in ledger.decisions:
        share = ledger.cpu_share.get((d.run_id, d.node), 0.0)
        per_item.cpu[d.item_id] += share
        if d.model_ref:
            refs = facts.models.setdefault(d.node, {})
            refs[d.model_ref] = refs.get(d.model_ref, 0) + 1
        cost = _num(d.llm_eur)
        own = None
        if cost is not None:  # a large-model answer that recorded its own cost
            own = (cost, (_num(d.llm_in) or 0) + (_num(d.llm_out) or 0))
            per_item.eur[d.item_id] += own[0]
            per_item.tokens[d.item_id] += own[1]
            per_item.large.add(d.item_id)
            per_item.asked_large.add(d.item_id)
        if d.has_answer and (d.item_id not in per_item.answered or d.created_at < per_item.answered[d.item_id]):
            per_item.answered[d.item_id] = d.created_at
        if d.decided_by:
            _count_cascade_decision(facts.cascade.setdefault(d.node, CascadeFacts()), d, share, ledger, per_item, own)
    return per_item


def _count_cascade_decision(c: CascadeFacts, d: _Decision, share: float, ledger: _Ledger, per_item: _PerItem,
                            own: tuple[float, float] | None) -> None:
    """`own`: the (euros, tokens) the decision recorded itself, already added to its item. The cascade
    records its call in its output and in the node's stats alike: the node's average per call stands
    in only for a decision that recorded nothing, or the item would pay for its call twice."""
    c.items += 1
    c.cpu += share
    called = d.decided_by == "large" or bool(d.asked_large)
    if called:
        per_item.asked_large.add(d.item_id)
    if called and own is not None:
        c.llm_eur += own[0]
        c.llm_tokens += own[1]
        c.llm_calls += 1
    elif called and (d.run_id, d.node) in ledger.per_call:
        call_eur, call_tokens = ledger.per_call[(d.run_id, d.node)]
        per_item.eur[d.item_id] += call_eur
        per_item.tokens[d.item_id] += call_tokens
        c.llm_eur += call_eur
        c.llm_tokens += call_tokens
        c.llm_calls += 1
    if d.decided_by == "human":
        per_item.human.add(d.item_id)
    elif d.decided_by == "large":
        per_item.large.add(d.item_id)
    c.funnel.add(d.decided_by if d.decided_by in PATHS else "small")
    _count_confidence_bin(c, d, ledger.truth.get((d.item_id, d.node)))


def _count_confidence_bin(c: CascadeFacts, d: _Decision, known: tuple[str, str] | None) -> None:
    """Count the decision in the bin of the small model's confidence (recorded under `small` when the
    large model decided), with what reviewers said of the small and the large model's labels."""
    by_large = d.decided_by == "large"
    confidence = _num(d.small_conf) if by_large else d.confidence
    if confidence is None:
        return
    row = c.bins[conf_bin(confidence)]
    row[N] += 1
    said = (d.small_label if by_large else d.label) or ""
    if known:
        row[REVIEWED] += 1
        row[SMALL_OK] += int(said == known[0])
    if by_large:
        row[LARGE] += 1
        if known:
            row[LARGE_REVIEWED] += 1
            row[LARGE_OK] += int(d.label == known[0])
    elif d.decided_by == "human":
        row[HUMAN] += 1


def _count_documents(ledger: _Ledger, per_item: _PerItem, facts: WeekFacts) -> None:
    """Documents, paths, per-path sums and the cycle-time and first-answer distributions."""
    cycle: list[float] = []
    answer: list[float] = []
    for item_id, item in ledger.items.items():
        cpu, eur, tokens = per_item.cpu[item_id], per_item.eur[item_id], per_item.tokens[item_id]
        reviews = ledger.reviews.get(item_id, 0)
        if item.status != Item.DONE:
            facts.dead += 1
            path = None  # totals only: a dead letter took no path
        else:
            facts.docs += 1
            path = per_item.path_of(item_id)
            facts.paths.add(path)
            facts.large_used += item_id in per_item.asked_large
            cycle.append(max(0.0, (item.finished - item.received).total_seconds()))
            if item_id in per_item.answered:
                answer.append(max(0.0, (per_item.answered[item_id] - item.received).total_seconds()))
        facts.cpu.count(cpu, path)
        facts.llm_eur.count(eur, path)
        facts.llm_tokens.count(tokens, path)
        facts.reviews.count(reviews, path)
    facts.cycle = Distribution.of(cycle)
    facts.answer = Distribution.of(answer)


def _count_accuracy(truth: Truth, ledger: _Ledger) -> AccuracyFacts:
    """Per node: judged predictions and right ones; end to end: judged documents all of whose judged
    predictions were right."""
    nodes: dict[str, Hits] = {}
    e2e: dict[int, bool] = {}
    for (item_id, node), (label, predicted) in truth.items():
        if not predicted or item_id not in ledger.items:
            continue
        hits = nodes.setdefault(node, Hits())
        hits.n += 1
        hits.correct += int(label == predicted)
        e2e[item_id] = e2e.get(item_id, True) and label == predicted
    return AccuracyFacts(nodes, Hits(len(e2e), sum(e2e.values())))


def _count_label_sets(ledger: _Ledger, per_item: _PerItem) -> LabelSetFacts:
    """Completed documents a model labelled with a label set that no longer matches: a label outside the
    node's own labels ("node"), or a model version whose labels differ from its model's current
    production version ("production": a promotion changed the label set since, or this version was
    the mistake). Read against production as it is now: ensure_fresh rebuilds a workflow's weeks when a
    production alias it used moves."""
    refs = {d.model_ref for d in ledger.decisions if d.label is not None and d.model_ref}
    versions = _version_labels(refs)
    production = _production_labels({name for name, _labels in versions.values()})
    found = LabelSetFacts()
    flagged: dict[int, bool] = {}
    for d in ledger.decisions:
        item = ledger.items.get(d.item_id)
        if d.label is None or item is None or item.status != Item.DONE:
            continue
        own = ledger.node_labels.get((d.run_id, d.node))
        version = versions.get(d.model_ref)
        why = None
        if own and d.label not in own:
            why = "node"
        elif version is not None and version[1] and production.get(version[0]) not in (None, version[1]):
            why = "production"
        if why is None:
            continue
        counts = found.nodes.setdefault(d.node, {}).setdefault(d.model_ref, [0, why])
        counts[0] += 1
        flagged[d.item_id] = True
    found.documents = len(flagged)
    found.automated = sum(per_item.path_of(item_id) != "human" for item_id in flagged)
    return found


def _version_labels(refs: set[str]) -> dict[str, tuple[str, frozenset[str]]]:
    """model ref → (model name, its labels), for references to a registered version ("name:v3")."""
    wanted: dict[tuple[str, int], str] = {}
    for ref in refs:
        match = REF.match(ref)
        if match and match["number"]:
            wanted[(match["name"], int(match["number"]))] = ref
    out: dict[str, tuple[str, frozenset[str]]] = {}
    if not wanted:
        return out
    for name, number, labels in ModelVersion.objects.filter(model__name__in={n for n, _ in wanted}).values_list(
            "model__name", "number", "labels"):
        if (name, number) in wanted:
            out[wanted[(name, number)]] = (name, frozenset(str(x) for x in labels or []))
    return out


def _production_labels(names: set[str]) -> dict[str, frozenset[str]]:
    return {name: frozenset(str(x) for x in labels or []) for name, labels in Alias.objects.filter(
        name="production", model__name__in=names).values_list("model__name", "version__labels")}


# --- keeping KpiWeek rows fresh -------------------------------------------------------------------

def frozen_until(workflow_id: int) -> date | None:
    """The Monday of the last week whose ledger retention purged (in part): such weeks keep the facts
    they had, since counting them again from what is left would lose what was purged."""
    purged = Workflow.objects.filter(pk=workflow_id).values_list("purged_before", flat=True).first()
    return week_start_of(purged) if purged else None


def store_week(workflow_id: int, monday: date) -> WeekFacts | None:
    frozen = frozen_until(workflow_id)
    if frozen is not None and monday <= frozen:
        return None
    facts = compute_week(workflow_id, monday)
    if facts is None:
        KpiWeek.objects.filter(workflow_id=workflow_id, week_start=monday).delete()
        return None
    try:
        with transaction.atomic():
            KpiWeek.objects.update_or_create(workflow_id=workflow_id, week_start=monday,
                                             defaults={"facts": facts.to_json(), "computed_at": timezone.now()})
    except IntegrityError:
        pass  # a concurrent page view stored the same week a moment ago
    return facts


def _set_mark(workflow_id: int, mark: datetime) -> None:
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
    started = timezone.now()
    span = Item.objects.filter(run__workflow_id=workflow_id, finished_at__isnull=False).aggregate(
        lo=Min("finished_at"), hi=Max("finished_at"))
    weeks = _weeks_between(span["lo"], span["hi"]) if span["lo"] else []
    stored = sum(store_week(workflow_id, monday) is not None for monday in weeks)
    frozen = frozen_until(workflow_id)
    KpiWeek.objects.filter(workflow_id=workflow_id).exclude(week_start__in=weeks).exclude(
        week_start__lte=frozen or date.min).delete()
    _set_mark(workflow_id, started - REFRESH_MARGIN)
    return stored


def ensure_fresh(workflow_ids: list[int]) -> None:
    """Bring the KpiWeek rows of these workflows up to date with the ledger (see module docstring).

    The look-up walks the finish-time and label-time indexes from the oldest mark (a short range once
    the rollups are fresh) and only then asks which workflow each recent item belongs to, so its cost
    does not grow with the ledger.
    """
    marks = dict(KpiRefresh.objects.filter(workflow_id__in=workflow_ids).values_list("workflow_id", "mark"))
    for workflow_id in workflow_ids:
        if workflow_id not in marks:
            rebuild(workflow_id)
    known = [w for w in workflow_ids if w in marks]
    if not known:
        return
    started = timezone.now()
    lowest = min(marks[w] for w in known)
    for w in _moved_production(known, marks, lowest):
        rebuild(w)
        known.remove(w)
    changes = _changes_since(lowest)
    if not changes:
        return
    workflow_of = dict(Run.objects.filter(id__in={c[0] for c in changes}, workflow_id__in=known).values_list(
        "id", "workflow_id"))
    spans: dict[int, list[datetime]] = defaultdict(list)
    for run, moment, finished in changes:
        w = workflow_of.get(run)
        if w is not None and moment > marks[w]:
            spans[w].append(finished)
    for w, moments in spans.items():
        for monday in _weeks_between(min(moments), max(moments)):
            store_week(w, monday)
        _set_mark(w, started - REFRESH_MARGIN)


def _moved_production(known: list[int], marks: dict[int, datetime], lowest: datetime) -> list[int]:
    """Workflows whose weeks used a model whose production alias moved after their mark: the label sets
    their documents are judged against changed, so each of their weeks is counted again (promotions
    are rare; a rebuild costs a workflow's weeks once)."""
    moved = dict(Alias.objects.filter(name="production", updated_at__gt=lowest)
                 .values_list("model__name", "updated_at"))
    if not moved:
        return []
    stale = set()
    for w, models in KpiWeek.objects.filter(workflow_id__in=known).values_list("workflow_id", "facts__models"):
        names = {ref.split(":")[0] for refs in (models or {}).values() for ref in refs}
        if any(moved[name] > marks[w] for name in names & set(moved)):
            stale.add(w)
    return sorted(stale)


def _changes_since(lowest: datetime) -> list[tuple[int, datetime, datetime]]:
    """(run, moment that made it stale, week-defining time) of items finished (or parked) or labelled
    since, and of escalations decided since: the item leaves the week it waited in."""
    changes = [(run, finished, finished) for run, finished in
               Item.objects.filter(finished_at__gt=lowest).values_list("run_id", "finished_at")]
    changes += [(run, decided, parked) for run, decided, parked in ReviewTask.objects.filter(
        decided_at__gt=lowest, kind=ReviewTask.ESCALATION).values_list("run_id", "decided_at", "created_at")]
    labels = Label.objects.filter(created_at__gt=lowest, item__isnull=False)
    labelled = dict(labels.values_list("item_id", "created_at"))
    if labelled:
        for item_id, run, finished in Item.objects.filter(id__in=list(labelled), finished_at__isnull=False).values_list(
                "id", "run_id", "finished_at"):
            changes.append((run, labelled[item_id], finished))
    return changes


def load_weeks(workflow_ids: list[int], mondays: list[date]) -> dict[date, WeekFacts | None]:
    """{monday: facts merged over the workflows (None when no document finished that week)}."""
    parts: dict[date, list[WeekFacts]] = defaultdict(list)
    rows = KpiWeek.objects.filter(workflow_id__in=workflow_ids, week_start__in=mondays)
    for monday, facts in rows.values_list("week_start", "facts"):
        parts[monday].append(WeekFacts.from_json(facts))
    return {m: merge_all(parts[m]) if parts.get(m) else None for m in mondays}


def load_weeks_by_workflow(workflow_ids: list[int], mondays: list[date]) -> dict[tuple[int, date], WeekFacts]:
    rows = KpiWeek.objects.filter(workflow_id__in=workflow_ids, week_start__in=mondays)
    return {(w, m): WeekFacts.from_json(facts)
            for w, m, facts in rows.values_list("workflow_id", "week_start", "facts")}
