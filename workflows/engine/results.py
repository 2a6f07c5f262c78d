"""The read side of runs: what a run did, per node and per document, for pages, API and exports.

Selectors only: nothing here writes. Pages (views/runs.py), the API (api/runs.py) and exports
(workflows/exports.py) all read results through these functions, so they show the same thing: the
results table (a column per input field and per node output, flattened as exports flatten them),
its filters and sort orders, all cut into pages in the database, and an item's trace node by node.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import OrderBy, OuterRef, Q, QuerySet, Subquery, TextField
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Cast
from django.http import Http404
from django.utils.translation import gettext

from workflows.engine.state import apply_decision, merge_fields
from workflows.formats import number, parse_decimal
from workflows.graph import CATALOG
from workflows.graph.plan import plan
from workflows.models import Decision, Item, Run
from workflows.models.review import ReviewTask

# --- an item's data as flat columns: one shape for the results table, the trace and every export ----

LONG_LIST = 32  # a list of numbers longer than this is a vector (an embedding), kept as one JSON cell


def _joined(values: list[Any]) -> Any:
    """A list as one cell: extracted spans by their text, scalars joined by "; "."""
    parts = []
    for v in values:
        if isinstance(v, dict):
            if "value" not in v:
                return json.dumps(values, ensure_ascii=False, sort_keys=True, default=str)
            v = v["value"]
        parts.append("" if v is None else str(v))
    return "; ".join(parts)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """An item's data as flat columns: nested dicts under dotted names (`fields.iban`), lists of
    extracted spans or scalars joined into one cell, long numeric vectors kept as one JSON cell."""
    row: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            if value:
                row.update(flatten(value, f"{name}."))
            else:
                row[name] = ""
        elif isinstance(value, list):
            numeric = all(isinstance(v, int | float) for v in value)
            if numeric and len(value) > LONG_LIST:
                row[name] = json.dumps(value)
            else:
                row[name] = _joined(value)
        else:
            row[name] = value
    return row



def node_rows(run: Run) -> list[dict[str, Any]]:
    types = {n["id"]: n.get("type", "") for n in run.version.graph.get("nodes", [])}
    rows = []
    for s in run.node_stats.all():
        node_type = CATALOG.get(types.get(s.node, ""))
        rows.append({"node": s.node, "type": types.get(s.node, ""), "title": node_type.title if node_type else "",
                     "items_in": s.items_in, "ports": s.ports, "errors": s.errors, "retries": s.retries,
                     "p50_ms": s.p50_ms, "p95_ms": s.p95_ms, "labels": s.labels, "cpu_seconds": round(s.cpu_seconds, 3),
                     "extra": s.extra})
    order = {n: i for i, n in enumerate(types)}
    return sorted(rows, key=lambda r: order.get(r["node"], 0))


def results_queryset(run: Run, params: Any) -> QuerySet[Item]:
    """The run's items, filtered and sorted as `params` asks, for paging in the database.

    Filters: `status`; `label` (of `node` when given, else of any node); `conf_min`/`conf_max` (a
    node's confidence, 0 to 1; raises FilterError when not a number); `q`, `field` + `value` (see
    search_items). `sort`: a column key (see Column), "-" first for descending; seq by default."""
    queryset = run.items.order_by("seq")
    if params.get("status") in {Item.PENDING, Item.DONE, Item.PARKED, Item.DEAD}:
        queryset = queryset.filter(status=params["status"])
    node = (params.get("node") or "").strip()
    if params.get("label"):
        decided = Decision.objects.filter(run=run, label=params["label"])
        if node:
            decided = decided.filter(node=node)
        queryset = queryset.filter(id__in=decided.values("item_id"))
    low, high = confidence_bounds(params)
    if low is not None or high is not None:
        scored = Decision.objects.filter(run=run, confidence__isnull=False)
        if node:
            scored = scored.filter(node=node)
        if low is not None:
            scored = scored.filter(confidence__gte=low)
        if high is not None:
            scored = scored.filter(confidence__lte=high)
        queryset = queryset.filter(id__in=scored.values("item_id"))
    return sort_items(run, search_items(run, queryset, params), params.get("sort") or "")


class FilterError(ValueError):
    """A filter a person typed that cannot be read; the message says what to type."""


def confidence_bounds(params: Any) -> tuple[float | None, float | None]:
    bounds = []
    for name in ("conf_min", "conf_max"):
        typed = (params.get(name) or "").strip()[:20]
        if not typed:
            bounds.append(None)
            continue
        try:
            value = float(parse_decimal(typed))
        except ValueError:
            value = -1.0
        if not 0 <= value <= 1:
            raise FilterError(gettext("A confidence is a number from 0 to 1, such as 0,8 or 0.8."))
        bounds.append(value)
    return bounds[0], bounds[1]


FIELD_PATH = re.compile(r"^[A-Za-z0-9_]{1,64}(\.[A-Za-z0-9_]{1,64}){0,4}$")


def search_items(run: Run, queryset: QuerySet[Item], params: Any) -> QuerySet[Item]:
    """`q`: an item number (its row in the input), `id:<item id>` (as intake returns), else text
    anywhere in the item or in a node's output; `field` + `value`: that field (dotted for nested,
    e.g. fields.email) of the item or of any node's output contains the value. Case-insensitive."""
    q = (params.get("q") or "").strip()[:200]
    if q.isdigit():
        queryset = queryset.filter(seq=int(q))
    elif q.lower().startswith("id:") and q[3:].strip().isdigit():
        queryset = queryset.filter(pk=int(q[3:]))
    elif q:
        outputs = Decision.objects.filter(run=run).annotate(text=Cast("output", TextField())).filter(text__icontains=q)
        queryset = (queryset.annotate(text=Cast("payload", TextField()))
                    .filter(Q(text__icontains=q) | Q(id__in=outputs.values("item_id"))))
    field, value = (params.get("field") or "").strip(), (params.get("value") or "").strip()[:200]
    column = Column.parse(field)
    if value and column is not None and column.node:
        if column.path == ROUTE:
            outputs = Decision.objects.filter(run=run, node=column.node, port__icontains=value)
        elif column.path == REVIEWER:
            outputs = ReviewTask.objects.filter(run=run, node=column.node, decided_by__username__icontains=value)
        else:
            outputs = Decision.objects.filter(run=run, node=column.node,
                                              **{f"output__{column.lookup}__icontains": value})
        queryset = queryset.filter(id__in=outputs.values("item_id"))
    elif value and column is not None:
        outputs = Decision.objects.filter(run=run, **{f"output__{column.lookup}__icontains": value})
        queryset = queryset.filter(Q(**{f"payload__{column.lookup}__icontains": value})
                                   | Q(id__in=outputs.values("item_id")))
    return queryset


# --- the results table: one row per document, a column per input field and per node output -------
# Columns are keyed in URLs as "text" (an input field, dotted when nested), "cls:label" (a node's
# output, flattened as exports flatten it: "ext:fields.iban"), "route:@route" (the branch a route node
# took) and "rev:@by" (who decided a review). Outputs that are numbers for machines (embeddings,
# per-class scores, large-model usage, shadow answers, export rows) stay out of the table: the trace
# shows them.

ROUTE, REVIEWER = "@route", "@by"
HIDDEN_OUTPUTS = frozenset({"embedding", "scores", "llm", "shadow", "row", "reviewed"})
NODE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
INPUT_SAMPLE = 100  # items whose input fields name the input columns, with the page's own


@dataclass(frozen=True)
class Column:
    node: str  # "" for an input field
    path: str  # dotted output or input field, or ROUTE / REVIEWER

    @property
    def key(self) -> str:
        return f"{self.node}:{self.path}" if self.node else self.path

    @property
    def lookup(self) -> str:
        return self.path.replace(".", "__")

    @classmethod
    def parse(cls, key: str) -> Column | None:
        node, _, path = key.rpartition(":") if ":" in key else ("", "", key)
        if node and not NODE_ID.match(node):
            return None
        if (node and path in (ROUTE, REVIEWER)) or FIELD_PATH.match(path):
            return cls(node, path)
        return None


def sort_items(run: Run, queryset: QuerySet[Item], sort: str) -> QuerySet[Item]:
    """Order by one column in the database (never in Python: a run can hold 100,000 items).

    An output column is a correlated subquery on the ledger's unique (run, item, node) index, one
    index probe per item that passes the filters, paid only by the person who asks for that order: a
    whole results page of a 10,000-item run took 120-220 ms on PostgreSQL sorted by any column
    (2026-12-05, two cores). JSON values sort as JSON (numbers as numbers), items without one last."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key in ("", "seq", "status"):
        field = key or "seq"
        return queryset.order_by(f"-{field}" if descending else field, "seq")
    column = Column.parse(key)
    if column is None:
        return queryset
    if not column.node:
        value: Any = _json_path("payload", column.path)
    elif column.path == REVIEWER:
        value = Subquery(ReviewTask.objects.filter(run=run, item_id=OuterRef("pk"), node=column.node)
                         .order_by().values("decided_by__username")[:1])
    else:
        decision = Decision.objects.filter(run=run, item_id=OuterRef("pk"), node=column.node).order_by()
        if column.path in ("label", "confidence"):
            value = Subquery(decision.values(column.path)[:1])  # the ledger's own columns: typed, no JSON
        elif column.path == ROUTE:
            value = Subquery(decision.values("port")[:1])
        else:
            value = Subquery(decision.annotate(v=_json_path("output", column.path)).values("v")[:1])
    order = OrderBy(value, descending=descending, nulls_last=True)
    return queryset.order_by(order, "seq")


def _json_path(field: str, path: str) -> Any:
    value: Any = field
    for part in path.split("."):
        value = KeyTransform(part, value)
    return value


def table_columns(run: Run, items: list[Item], decisions: list[Decision]) -> list[dict[str, Any]]:
    """The table's columns, grouped by node in plan order: input fields (the source's declared ones,
    then any other found in the first items or on this page), then each node's outputs (what its
    type declares it adds, and what this page's decisions hold), the route taken and the reviewer."""
    inputs: dict[str, None] = {}
    nodes = planned_nodes(run)
    for n in nodes:
        kind = CATALOG.get(n.get("type", ""))
        if kind is not None and kind.is_source:
            inputs.update(dict.fromkeys(f for f in (n.get("config") or {}).get("fields") or [] if isinstance(f, str)))
    sample = list(run.items.order_by("seq").values_list("payload", flat=True)[:INPUT_SAMPLE])
    for payload in [*sample, *(i.payload for i in items)]:
        if isinstance(payload, dict):
            inputs.update(dict.fromkeys(flatten(payload)))
    columns = [{"column": Column("", k), "node": "", "title": k} for k in inputs if FIELD_PATH.match(k)]
    seen: dict[str, dict[str, None]] = {}
    for d in decisions:
        if d.port != "dead" and isinstance(d.output, dict):
            seen.setdefault(d.node, {}).update(dict.fromkeys(flatten(visible(d.output))))
    for n in nodes:
        kind = CATALOG.get(n.get("type", ""))
        if kind is None or kind.is_source or n["type"].startswith("sink."):
            continue
        declared = sorted(k for k in kind.adds(n.get("config") or {}) if k.split(".")[0] not in HIDDEN_OUTPUTS)
        keys = dict.fromkeys(declared)
        keys.update(seen.get(n["id"], {}))
        # "fields" alone is the empty cell of an item where nothing was found; its sub-fields are the columns
        paths = [k for k in keys if FIELD_PATH.match(k) and not any(o.startswith(k + ".") for o in keys)]
        if n["type"] == "route":
            paths.append(ROUTE)
        if n["type"] == "review":
            paths.append(REVIEWER)
        titles = {ROUTE: gettext("route taken"), REVIEWER: gettext("decided by")}
        columns += [{"column": Column(n["id"], p), "node": n["id"], "title": titles.get(p, p)} for p in paths]
    return columns


def label_values(run: Run, limit: int = 200) -> list[str]:
    """Each label the run's nodes gave, once, in order. Decision's default ordering (item, id) would
    otherwise join the DISTINCT and repeat a label once per item; (run, label) is an index."""
    return list(Decision.objects.filter(run=run, label__isnull=False).order_by("label")
                .values_list("label", flat=True).distinct()[:limit])


def shown(value: Any) -> str:
    """A cell as a person reads it: numbers the locale's way, yes/no, nothing for no value."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return gettext("yes") if value else gettext("no")
    if isinstance(value, float):
        return number(value, 2)
    if isinstance(value, int):
        return number(value)
    return str(value)


def visible(output: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in output.items() if k not in HIDDEN_OUTPUTS}


def table_page(run: Run, items: list[Item]) -> dict[str, Any]:
    """One page of the table: its columns and one row per item, each cell its raw value (for the
    API) under the column's key. Three indexed queries, whatever the size of the run."""
    ids = [i.pk for i in items]
    decisions = list(Decision.objects.filter(run=run, item_id__in=ids).order_by().only(
        "item_id", "node", "port", "output", "label", "confidence", "error"))
    reviews = {(t.item_id, t.node): t for t in ReviewTask.objects.filter(run=run, item_id__in=ids)
               .select_related("decided_by").only("item_id", "node", "status", "decided_by__username")}
    columns = table_columns(run, items, decisions)
    flat = {(d.item_id, d.node): (d, flatten(visible(d.output)) if isinstance(d.output, dict) else {})
            for d in decisions}
    errors = {d.item_id: d.error for d in reversed(decisions) if d.error}
    rows = []
    for item in items:
        payload = flatten(item.payload) if isinstance(item.payload, dict) else {}
        cells: dict[str, Any] = {}
        for c in columns:
            column: Column = c["column"]
            if not column.node:
                cells[column.key] = payload.get(column.path)
            elif column.path == REVIEWER:
                task = reviews.get((item.pk, column.node))
                cells[column.key] = (task.decided_by.get_username() if task and task.decided_by else
                                     gettext("waiting") if task and task.status == ReviewTask.OPEN else None)
            else:
                decision, output = flat.get((item.pk, column.node), (None, {}))
                if decision is None:
                    cells[column.key] = None
                elif column.path == ROUTE:
                    cells[column.key] = decision.port or None
                else:
                    cells[column.key] = output.get(column.path)
        rows.append({"item": item, "cells": cells, "shown": [shown(cells[c["column"].key]) for c in columns],
                     "error": errors.get(item.pk, "")})
    groups: list[dict[str, Any]] = []
    for c in columns:
        if groups and groups[-1]["node"] == c["node"]:
            groups[-1]["span"] += 1
        else:
            groups.append({"node": c["node"], "span": 1})
    return {"columns": columns, "groups": groups, "rows": rows, "column_keys": {c["column"].key for c in columns},
            "fixed": [("seq", "#"), ("status", gettext("Status"))]}


def planned_nodes(run: Run) -> list[dict[str, Any]]:
    """The run's graph nodes in the order the plan ran them."""
    nodes = [n for n in run.version.graph.get("nodes", []) if isinstance(n, dict) and "id" in n]
    try:
        order = {n: i for i, n in enumerate(plan(run.version.as_graph()).order)}
    except ValueError:
        # PlanError or GraphFormatError: a plan that no longer validates (a retired alias); declaration order will do
        return nodes
    return sorted(nodes, key=lambda n: order.get(n["id"], len(order)))


def item_trace(run: Run, item_id: Any) -> dict[str, Any]:
    """An item and every decision about it, in the order the plan ran them: what went into each
    node (the item's data so far, flattened as in the table), what came out, the model version, the
    time and, for a large model, tokens and cost."""
    try:
        item = run.items.get(pk=item_id)
    except (Item.DoesNotExist, ValueError):
        raise Http404(gettext("No such item in this run.")) from None
    nodes = planned_nodes(run)
    order = {n["id"]: i for i, n in enumerate(nodes)}
    types = {n["id"]: n.get("type", "") for n in nodes}
    decisions = sorted(Decision.objects.filter(run=run, item=item), key=lambda d: (order.get(d.node, 0), d.id))
    reviews = {t.node: t for t in item.review_tasks.select_related("decided_by")}
    answers = review_answers([item.pk])
    data = dict(item.payload)
    steps = []
    for d in decisions:
        usage = d.output.get("llm") if isinstance(d.output, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        kind = CATALOG.get(types.get(d.node, ""))
        steps.append({
            "node": d.node, "type": types.get(d.node, ""), "title": str(kind.title) if kind else "",
            "port": d.port, "label": d.label, "confidence": d.confidence,
            "input": flatten(visible(data)), "output": d.output, "error": d.error,
            "latency_ms": round(d.latency_ms, 3), "attempt": d.attempt, "model_ref": d.model_ref,
            "batch_id": d.batch_id, "batch_size": d.batch_size, "at": d.created_at.isoformat(),
            "tokens": (usage.get("tokens_in", 0) + usage.get("tokens_out", 0)) if usage else None,
            "cost_eur": usage.get("cost_eur") if usage else None, "review": review_of(reviews.get(d.node))})
        apply_decision(data, d.port, d.output, answers.get((item.pk, d.node)))
    return {
        "id": item.pk, "seq": item.seq, "status": item.status, "payload": item.payload, "result": data,
        "decisions": steps,
        "review_tasks": list(item.review_tasks.values("id", "node", "status", "result")),
        "dead_letters": list(item.dead_letters.values("id", "node", "reason", "attempts", "retried_at")),
    }


def trace_page(run: Run, item_id: Any) -> dict[str, Any]:
    """The trace as the item page shows it: each node's input and output as rows of (field, value),
    and the raw JSON of each decision and of the whole trace, for the <details> blocks."""
    trace = item_trace(run, item_id)
    steps = []
    for step in trace["decisions"]:
        output = flatten(step["output"]) if isinstance(step["output"], dict) else {}
        review = step["review"] or {}
        review_at, decided = review.get("at"), review.get("result") if isinstance(review.get("result"), dict) else {}
        said = "; ".join(f"{k}: {v}" for k, v in flatten(visible(decided)).items())
        steps.append({**step, "at_time": datetime.fromisoformat(step["at"]),
                      "review_at": datetime.fromisoformat(review_at) if review_at else None, "review_said": said,
                      "input_rows": [(k, shown(v)) for k, v in sorted(step["input"].items())],
                      "output_rows": [(k, shown(v)) for k, v in output.items()],
                      "raw": as_json({k: v for k, v in step.items() if k != "input"})})
    return {"trace": trace, "steps": steps, "raw": as_json(trace),
            "payload_rows": [(k, shown(v)) for k, v in flatten(trace["payload"]).items()],
            "result_rows": [(k, shown(v)) for k, v in flatten(visible(trace["result"])).items()]}


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def review_answers(item_ids: list[int]) -> dict[tuple[int, str], dict[str, Any]]:
    """What each decided escalation of these items resumed its item with (the reviewer's label and
    edits), by (item, review node): what apply_decision merges at a parked decision."""
    return {(item_id, node): result for item_id, node, result in ReviewTask.objects.filter(
        item_id__in=item_ids, status=ReviewTask.DECIDED, kind=ReviewTask.ESCALATION).values_list(
        "item_id", "node", "result") if isinstance(result, dict)}


def review_of(task: Any) -> dict[str, Any] | None:
    """A review node's human decision: the reviewer's override of what the models proposed."""
    if task is None:
        return None
    return {"status": task.status, "result": task.result, "proposal": task.proposal,
            "by": task.decided_by.get_username() if task.decided_by else None,
            "at": task.decided_at.isoformat() if task.decided_at else None}


def result_rows(run: Run, node: str | None) -> Iterator[dict[str, Any]]:
    """Each item's data (payload + every output so far) with its status, or one export node's rows.

    Every item is there, not only the finished ones: an export is how results are joined back to
    the firm's own records, and a row that silently went missing (parked for review, failed) is
    worse than a row that says so. Waiting items carry the outputs they have; failed ones the error.
    """
    if node:
        for seq, output in Decision.objects.filter(run=run, node=node).exclude(port="dead").order_by(
                "item__seq").values_list("item__seq", "output").iterator(chunk_size=2000):
            yield {"seq": seq, **(output.get("row") or output)}
        return
    items = run.items.order_by("seq")
    for start in range(0, run.items_total, 1000):
        chunk = list(items.filter(seq__gte=start, seq__lt=start + 1000).values_list("id", "seq", "status", "payload"))
        outputs: dict[int, dict] = {}
        errors: dict[int, str] = {}
        ids = [c[0] for c in chunk]
        answers = review_answers(ids)
        for item_id, node_id, port, output, error in Decision.objects.filter(
                run=run, item_id__in=ids).order_by("id").values_list("item_id", "node", "port", "output", "error"):
            if port == "dead":
                errors[item_id] = error or ""
            apply_decision(outputs.setdefault(item_id, {}), port, output, answers.get((item_id, node_id)))
        for item_id, seq, status, payload in chunk:
            # item_status/item_error, not status/error: tickets often carry a "status" column of their own.
            row = {"seq": seq, "item_status": status, **payload}
            merge_fields(row, outputs.get(item_id, {}))
            if item_id in errors:
                row["item_error"] = errors[item_id]
            yield row


# --- one node's last items, for the canvas's side panel (as n8n and KNIME show a node's data) ----

SAMPLE_LIMIT = 20


@dataclass(frozen=True)
class NodeSample:
    seq: int
    item_id: int
    received: dict[str, Any]  # the item's fields plus what the node's upstream nodes added
    output: dict[str, Any]
    port: str
    label: str | None
    confidence: float | None
    error: str


@dataclass(frozen=True)
class NodeSamples:
    run: Run
    node: str
    rows: list[NodeSample]
    dead_letters: list[dict[str, Any]]


def node_samples(run: Run, node: str, limit: int = SAMPLE_LIMIT) -> NodeSamples:
    """The node's last `limit` decisions in the run, newest first: what reached it, what it gave.

    What reached it is rebuilt as the executor builds it: the item's fields, then what each node that
    handled the item before this one added (engine/state.py: apply_decision, a reviewer's answer
    included). Three queries for the rows, bounded by `limit` items."""
    decisions = list(Decision.objects.filter(run=run, node=node).select_related("item").order_by("-id")[:limit])
    ids = [d.item_id for d in decisions]
    answers = review_answers(ids)
    before: dict[int, list[tuple[int, str, str, Any]]] = {}
    for item_id, decision_id, node_id, port, output in (
            Decision.objects.filter(run=run, item_id__in=ids).exclude(node=node).exclude(port="dead")
            .order_by("id").values_list("item_id", "id", "node", "port", "output")):
        before.setdefault(item_id, []).append((decision_id, node_id, port, output))
    rows = []
    for d in decisions:
        received = dict(d.item.payload)
        for decision_id, node_id, port, output in before.get(d.item_id, []):
            if decision_id < d.pk:
                apply_decision(received, port, output, answers.get((d.item_id, node_id)))
        rows.append(NodeSample(seq=d.item.seq, item_id=d.item_id, received=received, output=d.output, port=d.port,
                               label=d.label, confidence=d.confidence, error=d.error))
    dead = list(run.dead_letters.filter(node=node).order_by("-id")
                .values("item__seq", "reason", "error_code", "attempts")[:limit])
    return NodeSamples(run=run, node=node, rows=rows, dead_letters=dead)
