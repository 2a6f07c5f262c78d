"""The read side of runs: what a run did, per node and per document, for pages, API and exports.

Selectors only: nothing here writes. Pages (views/runs.py), the API (api/runs.py) and exports
(workflows/exports.py) all read results through these functions, so they show the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import Http404
from django.utils.translation import gettext

from workflows.engine import launch
from workflows.graph import CATALOG
from workflows.graph.plan import plan
from workflows.models import Decision, Item, Run


def required_fields(workflow: Any, origin: str = "upload") -> list[str]:
    """The fields the workflow's source node declares (what every item must carry)."""
    latest = workflow.latest
    wanted = launch.ORIGIN_SOURCE[origin]
    for node in (latest.graph.get("nodes", []) if latest else []):
        if node.get("type") == wanted:
            fields = (node.get("config") or {}).get("fields") or ["text"]
            return [f for f in fields if isinstance(f, str)]
    return ["text"]


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
    queryset = run.items.order_by("seq")
    if params.get("status") in {Item.PENDING, Item.DONE, Item.PARKED, Item.DEAD}:
        queryset = queryset.filter(status=params["status"])
    if params.get("label"):
        decided = Decision.objects.filter(run=run, label=params["label"])
        if params.get("node"):
            decided = decided.filter(node=params["node"])
        queryset = queryset.filter(id__in=decided.values("item_id"))
    return search_items(run, queryset, params)


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
    if value and FIELD_PATH.match(field):
        path = field.replace(".", "__")
        outputs = Decision.objects.filter(run=run, **{f"output__{path}__icontains": value})
        queryset = queryset.filter(Q(**{f"payload__{path}__icontains": value}) | Q(id__in=outputs.values("item_id")))
    return queryset


def item_trace(run: Run, item_id: Any) -> dict[str, Any]:
    """An item and every decision about it, in the order the plan ran them."""
    try:
        item = run.items.get(pk=item_id)
    except (Item.DoesNotExist, ValueError):
        raise Http404(gettext("No such item in this run.")) from None
    order = {n["id"]: i for i, n in enumerate(run.version.graph.get("nodes", []))}
    try:
        order = {n: i for i, n in enumerate(plan(run.version.as_graph()).order)}
    except ValueError:
        # PlanError or GraphFormatError: a plan that no longer validates (a retired alias); declaration order will do
        pass
    decisions = sorted(Decision.objects.filter(run=run, item=item), key=lambda d: (order.get(d.node, 0), d.id))
    reviews = {t.node: t for t in item.review_tasks.select_related("decided_by")}
    data = dict(item.payload)
    for d in decisions:
        if d.port not in ("dead", "parked"):
            data.update(d.output)
    return {
        "id": item.pk, "seq": item.seq, "status": item.status, "payload": item.payload, "result": data,
        "decisions": [{"node": d.node, "port": d.port, "label": d.label, "confidence": d.confidence, "output": d.output,
                       "error": d.error, "latency_ms": round(d.latency_ms, 3), "attempt": d.attempt,
                       "model_ref": d.model_ref, "batch_id": d.batch_id, "batch_size": d.batch_size,
                       "at": d.created_at.isoformat(), "review": review_of(reviews.get(d.node))} for d in decisions],
        "review_tasks": list(item.review_tasks.values("id", "node", "status", "result")),
        "dead_letters": list(item.dead_letters.values("id", "node", "reason", "attempts", "retried_at")),
    }


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
        for item_id, port, output, error in Decision.objects.filter(
                run=run, item_id__in=[c[0] for c in chunk]).order_by("id").values_list(
                "item_id", "port", "output", "error"):
            if port == "dead":
                errors[item_id] = error or ""
            elif port != "parked":
                outputs.setdefault(item_id, {}).update(output)
        for item_id, seq, status, payload in chunk:
            # item_status/item_error, not status/error: tickets often carry a "status" column of their own.
            row = {"seq": seq, "item_status": status, **payload, **outputs.get(item_id, {})}
            if item_id in errors:
                row["item_error"] = errors[item_id]
            yield row
