"""Run pages: start (upload + preview + mapping), list, detail (progress, nodes, dead letters, cancel,
retry), results table with paging and filters, per-item trace, CSV/JSONL export. Server-rendered."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_http_methods

from workflows.access import get_run_for_user, get_workflow_for_user, restrict
from workflows.engine import documents, launch, staging
from workflows.engine import mapping as mapping_guess
from workflows.engine.budgets import budget_rows
from workflows.engine.intake import IntakeError
from workflows.engine.results import (
    FilterError,
    label_values,
    node_rows,
    results_queryset,
    table_page,
    trace_page,
)
from workflows.exports import export_response, original_response
from workflows.models import Run
from workflows.roles import can, require
from workflows.uploads import redirect_after_upload

# --- pages ---------------------------------------------------------------------------------------


@login_required
def run_list(request: HttpRequest) -> HttpResponse:
    require(request.user, "run.view")
    runs = restrict(Run.objects.select_related("workflow", "version"), request.user, "run.view")
    if request.GET.get("workflow", "").isdigit():
        runs = runs.filter(workflow_id=int(request.GET["workflow"]))
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    return render(request, "runs/list.html", {"page": page})


@login_required
@require_http_methods(["GET", "POST"])
def run_start(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk, "run.start")
    try:  # ?version=N: a designer's test run of a draft, from the canvas
        version = launch.test_version(workflow, request.POST.get("version") or request.GET.get("version"),
                                      user=request.user)
    except launch.StartError as exc:
        raise Http404(" ".join(exc.problems)) from None
    fields = launch.source_fields(workflow)
    context: dict[str, Any] = {"workflow": workflow, "fields": fields, "max_mb": settings.ENGINE_UPLOAD_MAX_BYTES / 1e6,
                               "test_version": version if version is not None and version.number != workflow.published
                               else None}
    if request.method == "POST":
        upload = request.FILES.get("file")
        token = request.POST.get("staged", "")
        try:
            if upload is not None:  # over the cap, UploadCapHandler refused it; intake.parse checks again
                name, data = upload.name, upload.read()
            elif token and (kept := staging.load(request.session, workflow.pk, token)):
                name, data = kept
            elif token:
                raise IntakeError(gettext("The previewed file is no longer kept (a day has passed, or you logged "
                                          "out): choose it again."))
            else:
                raise IntakeError(gettext("Choose a CSV, JSONL or XLSX file, or documents (PDF, images, a ZIP of "
                                          "them)."))
            split = documents.pages_per_document(request.POST.get("pages_per_document"))
            context["pages_per_document"] = split or ""
            if "preview" in request.POST:
                read = documents.preview_upload(data, name, pages_per_document=split, required=fields)
                if upload is not None:
                    token = staging.stage(request.session, workflow.pk, name, data)
                context["staged"] = staging.describe(request.session, workflow.pk, token)
                if isinstance(read, documents.Upload):
                    context["documents"] = read.preview()
                    return render(request, "runs/start.html", context)
                parsed = read
                sample = [values for _, values in parsed.rows[:mapping_guess.SAMPLE_ROWS]]
                context["preview"] = parsed.preview()
                context["columns"] = mapping_guess.describe(parsed.columns, sample)
                context["choices"] = mapping_guess.guess(fields, parsed.columns, sample)
                return render(request, "runs/start.html", context)
            mapping = {f: request.POST[f"map_{f}"] for f in fields if request.POST.get(f"map_{f}")} or None
            _, items = documents.load_upload(data, name, mapping, fields, pages_per_document=split)
            run = launch.create_run(workflow, user=request.user, items=items, input_name=name, mapping=mapping or {},
                                    version=version)
        except IntakeError as exc:
            context["error"], context["rows"] = exc.message, exc.rows[:50]
            context["staged"] = (staging.describe(request.session, workflow.pk, token)
                                 if token and upload is None else None)
            return render(request, "runs/start.html", context, status=400)
        except launch.StartError as exc:
            context["error"], context["problems"] = gettext("The run cannot start."), exc.problems
            return render(request, "runs/start.html", context, status=400)
        if token:
            staging.discard(request.session, token)
        messages.success(request, ngettext("Run %(run)s started with %(count)s item.",
                                           "Run %(run)s started with %(count)s items.", run.items_total)
                         % {"run": run.pk, "count": run.items_total})
        return redirect_after_upload(request, "run-detail", pk=run.pk)
    return render(request, "runs/start.html", context)


@login_required
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk)
    context = {"run": run, "nodes": node_rows(run), "can_start": can(request.user, "run.start", run),
               "dead_letters": run.dead_letters.filter(retried_at__isnull=True).select_related("item")[:100],
               "shards": run.shards.values("status").order_by(), "budgets": budget_rows(run)}
    return render(request, "runs/detail.html", context)


@login_required
@require_http_methods(["POST"])
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk, "run.start")
    if launch.cancel_run(run, user=request.user):
        messages.success(request, gettext("The run is cancelled."))
    else:
        messages.error(request, gettext("Only a run that has not finished can be cancelled."))
    return redirect("run-detail", pk=run.pk)


@login_required
@require_http_methods(["POST"])
def run_retry(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk, "run.start")
    try:
        count = launch.retry_dead_letters(run, user=request.user)
        messages.success(request, ngettext("%(count)s item sent back through the line.",
                                           "%(count)s items sent back through the line.", count) % {"count": count})
    except launch.StartError as exc:
        messages.error(request, " ".join(exc.problems))
    return redirect("run-detail", pk=run.pk)


@login_required
def run_results(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk)
    error = ""
    try:
        queryset = results_queryset(run, request.GET)
    except FilterError as exc:
        error, queryset = str(exc), run.items.none()
    page = Paginator(queryset, 50).get_page(request.GET.get("page"))
    filters = request.GET.copy()
    for name in ("page", "sort"):
        filters.pop(name, None)
    sort = request.GET.get("sort", "")
    context = {"run": run, "page": page, "table": table_page(run, list(page)), "labels": label_values(run),
               "filters": request.GET, "query": filters.urlencode(), "sort": sort, "error": error,
               "sorted_query": filters.urlencode() + (f"&sort={quote(sort)}" if sort else "")}
    return render(request, "runs/results.html", context, status=400 if error else 200)


@login_required
def run_item(request: HttpRequest, pk: int, item_id: int) -> HttpResponse:
    run = get_run_for_user(request.user, pk)
    page = trace_page(run, item_id)
    original = documents.item_original(run, page["trace"]["payload"])
    return render(request, "runs/item.html", {"run": run, **page, "original": original})


@login_required
def run_original(request: HttpRequest, pk: int, sha256: str) -> FileResponse:
    """The original file of a run's document, to whoever may see the run."""
    return original_response(get_run_for_user(request.user, pk), sha256)


@login_required
def run_download(request: HttpRequest, pk: int, fmt: str) -> StreamingHttpResponse:
    run = get_run_for_user(request.user, pk)
    return export_response(run, fmt, request.GET.get("node") or None, request.GET.get("dialect") or None)
