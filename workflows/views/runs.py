"""Run pages: start (upload + preview + mapping), list, detail (progress, nodes, dead letters, cancel,
retry), results table with paging and filters, per-item trace, CSV/JSONL export. Server-rendered."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from workflows.engine import launch, staging
from workflows.engine.handlers import flat_row
from workflows.engine.intake import IntakeError, load_items, parse
from workflows.exports import csv_lines
from workflows.graph import CATALOG
from workflows.models import Decision, Item, Run
from workflows.roles import can, deny, get_workflow_for_user, require
from workflows.uploads import redirect_after_upload


def get_run_for_user(user: Any, pk: Any, capability: str = "run.view") -> Run:
    """The run, if the user may see it (else 404) and do `capability` on it (else 403)."""
    if not can(user, "run.view"):
        deny(user, "run.view", object_type="workflows.run", object_id=pk)
        raise Http404("No such run.")
    try:
        run = Run.objects.select_related("workflow", "version", "created_by").get(pk=pk)
    except (Run.DoesNotExist, ValueError, TypeError):
        raise Http404("No such run.") from None
    if capability != "run.view" and not can(user, capability):
        raise deny(user, capability, run)
    return run


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
        queryset = queryset.annotate(text=Cast("payload", TextField())).filter(Q(text__icontains=q) | Q(id__in=outputs.values("item_id")))
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
        raise Http404("No such item in this run.") from None
    order = {n["id"]: i for i, n in enumerate(run.version.graph.get("nodes", []))}
    from workflows.graph.plan import plan

    try:
        order = {n: i for i, n in enumerate(plan(run.version.as_graph()).order)}
    except Exception:  # a plan that no longer validates (a retired alias): declaration order will do
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
                       "at": d.created_at.isoformat(), "review": _review(reviews.get(d.node))} for d in decisions],
        "review_tasks": list(item.review_tasks.values("id", "node", "status", "result")),
        "dead_letters": list(item.dead_letters.values("id", "node", "reason", "attempts", "retried_at")),
    }


def _review(task: Any) -> dict[str, Any] | None:
    """A review node's human decision: the reviewer's override of what the models proposed."""
    if task is None:
        return None
    return {"status": task.status, "result": task.result, "proposal": task.proposal,
            "by": task.decided_by.get_username() if task.decided_by else None,
            "at": task.decided_at.isoformat() if task.decided_at else None}


def _result_rows(run: Run, node: str | None) -> Iterator[dict[str, Any]]:
    """Each item's final data (payload + every output), or one export node's recorded rows."""
    if node:
        for seq, output in Decision.objects.filter(run=run, node=node).exclude(port="dead").order_by(
                "item__seq").values_list("item__seq", "output").iterator(chunk_size=2000):
            yield {"seq": seq, **(output.get("row") or output)}
        return
    items = run.items.filter(status=Item.DONE).order_by("seq")
    for start in range(0, run.items_total, 1000):
        chunk = list(items.filter(seq__gte=start, seq__lt=start + 1000).values_list("id", "seq", "payload"))
        outputs: dict[int, dict] = {}
        for item_id, output in Decision.objects.filter(run=run, item_id__in=[c[0] for c in chunk]).exclude(
                port__in=["dead", "parked"]).order_by("id").values_list("item_id", "output"):
            outputs.setdefault(item_id, {}).update(output)
        for item_id, seq, payload in chunk:
            yield {"seq": seq, **payload, **outputs.get(item_id, {})}


def _csv_chunks(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """Rows as CSV under one header that names every column of every row. Items differ in their
    fields (a JSONL upload, route branches), so the rows are spooled once (to disk past 8 MB) while
    the columns are collected; cells are neutralised against formula injection (workflows.exports)."""
    columns: dict[str, None] = {}
    with tempfile.SpooledTemporaryFile(max_size=8 * 2**20, mode="w+", encoding="utf-8", newline="\n") as spool:
        for row in rows:
            flat = flat_row(row)
            columns.update(dict.fromkeys(flat))
            spool.write(json.dumps(flat, default=str) + "\n")  # ASCII: any text survives the round trip
        spool.seek(0)
        yield from csv_lines((json.loads(line) for line in spool), list(columns))


def export_response(run: Run, fmt: str, node: str | None) -> StreamingHttpResponse:
    """The run's results as CSV (spreadsheet-safe, see workflows/exports.py) or JSONL (the data as it
    is: JSONL is read by programs, so nothing is prefixed)."""
    if fmt not in {"csv", "jsonl"}:
        raise Http404("Export as csv or jsonl.")

    def lines() -> Iterator[str]:
        if fmt == "jsonl":
            for row in _result_rows(run, node):
                yield json.dumps(row, ensure_ascii=False, default=str) + "\n"
            return
        yield from _csv_chunks(_result_rows(run, node))

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8" if fmt == "csv" else "application/jsonl")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}{"-" + node if node else ""}.{fmt}"'
    return response


# --- pages ---------------------------------------------------------------------------------------


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "run.view")
    runs = Run.objects.select_related("workflow", "version")
    if request.GET.get("workflow", "").isdigit():
        runs = runs.filter(workflow_id=int(request.GET["workflow"]))
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    return render(request, "runs/list.html", {"page": page})


@login_required
@require_http_methods(["GET", "POST"])
def run_start(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk, "run.start")
    fields = required_fields(workflow)
    context: dict[str, Any] = {"workflow": workflow, "fields": fields, "max_mb": settings.ENGINE_UPLOAD_MAX_BYTES / 1e6}
    if request.method == "POST":
        upload = request.FILES.get("file")
        token = request.POST.get("staged", "")
        try:
            if upload is not None:  # over the cap, UploadCapHandler refused it; intake.parse checks again
                name, data = upload.name, upload.read()
            elif token and (kept := staging.load(request.session, workflow.pk, token)):
                name, data = kept
            elif token:
                raise IntakeError("The previewed file is no longer kept (a day has passed, or you logged out): choose it again.")
            else:
                raise IntakeError("Choose a CSV, JSONL or XLSX file.")
            if "preview" in request.POST:
                context["preview"] = parse(data, name).preview()
                if upload is not None:
                    token = staging.stage(request.session, workflow.pk, name, data)
                context["staged"] = staging.describe(request.session, workflow.pk, token)
                return render(request, "runs/start.html", context)
            mapping = {f: request.POST[f"map_{f}"] for f in fields if request.POST.get(f"map_{f}")} or None
            _, items = load_items(data, name, mapping, fields)
            run = launch.create_run(workflow, user=request.user, items=items, input_name=name, mapping=mapping or {})
        except IntakeError as exc:
            context["error"], context["rows"] = exc.message, exc.rows[:50]
            context["staged"] = staging.describe(request.session, workflow.pk, token) if token and upload is None else None
            return render(request, "runs/start.html", context, status=400)
        except launch.StartError as exc:
            context["error"], context["problems"] = "The run cannot start.", exc.problems
            return render(request, "runs/start.html", context, status=400)
        if token:
            staging.discard(request.session, token)
        messages.success(request, f"Run {run.pk} started with {run.items_total} items.")
        return redirect_after_upload(request, "run-detail", pk=run.pk)
    return render(request, "runs/start.html", context)


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk)
    context = {"run": run, "nodes": node_rows(run), "can_start": can(request.user, "run.start"),
               "dead_letters": run.dead_letters.filter(retried_at__isnull=True).select_related("item")[:100],
               "shards": run.shards.values("status").order_by()}
    return render(request, "runs/detail.html", context)


@login_required
@require_http_methods(["POST"])
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk, "run.start")
    if launch.cancel_run(run, user=request.user):
        messages.success(request, "The run is cancelled.")
    else:
        messages.error(request, "Only a queued or running run can be cancelled.")
    return redirect("run-detail", pk=run.pk)


@login_required
@require_http_methods(["POST"])
def run_retry(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk, "run.start")
    try:
        count = launch.retry_dead_letters(run, user=request.user)
        messages.success(request, f"{count} item{'s' if count != 1 else ''} sent back through the line.")
    except launch.StartError as exc:
        messages.error(request, " ".join(exc.problems))
    return redirect("run-detail", pk=run.pk)


@login_required
def run_results(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk)
    page = Paginator(results_queryset(run, request.GET), 50).get_page(request.GET.get("page"))
    labels = Decision.objects.filter(run=run, label__isnull=False).values_list("label", flat=True).distinct()[:50]
    return render(request, "runs/results.html", {"run": run, "page": page, "labels": labels, "filters": request.GET})


@login_required
def run_item(request: HttpRequest, pk: int, item_id: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk)
    return render(request, "runs/item.html", {"run": run, "trace": item_trace(run, item_id)})


@login_required
def run_download(request: HttpRequest, pk: int, fmt: str) -> StreamingHttpResponse:
    run = get_run_for_user(request.user, pk)
    return export_response(run, fmt, request.GET.get("node") or None)
