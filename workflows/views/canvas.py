"""The canvas page and its server-rendered parts: node side panel, history, import from a file.

The canvas itself (nodes, edges, positions) belongs to static/js/canvas.js; it saves through the
REST API (`POST /api/workflows/<id>/versions/` with `parent`), so conflicts and permissions are
decided in one place. Everything around it is HTML from here, swapped in by htmx.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import trigger_client_event

from workflows.access import get_workflow_for_user, team_for_new, visible_workflows
from workflows.design import gallery, publishing, texts
from workflows.design.config_forms import (
    PREFIX,
    config_from_query,
    config_problems,
    field_views,
    node_type_or_none,
    parse_config,
)
from workflows.design.exchange import EXPORT_FORMAT, ImportSerializer
from workflows.design.versions import import_workflow
from workflows.engine import results
from workflows.engine.intake import json_loads
from workflows.governance.classifiers import step_learning
from workflows.graph import CATALOG, diff
from workflows.graph.catalog import GROUPS
from workflows.live import snapshot
from workflows.live.consumers import current_run_id
from workflows.models import Run, Workflow
from workflows.roles import can, require


def node_ports(graph: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Input and output port names per node id: drawflow numbers its ports, our edges name them."""
    ports = {}
    for node in graph.get("nodes", []):
        node_type = CATALOG.get(node.get("type", ""))
        config = node.get("config") if isinstance(node.get("config"), dict) else {}
        if node_type is None:
            ports[node["id"]] = {"inputs": ["in"], "outputs": ["out"]}
        else:
            ports[node["id"]] = {"inputs": list(node_type.inputs),
                                 "outputs": list(node_type.output_ports(node_type.with_defaults(config)))}
    return ports


def palette() -> list[dict[str, Any]]:
    """The palette's groups and node types, in the reader's language."""
    groups: dict[str, list[Any]] = {key: [] for key in GROUPS}
    for node_type in CATALOG.values():
        groups[node_type.group].append(texts.node_type(node_type))
    return [{"key": key, "title": texts.group_title(key), "types": types} for key, types in groups.items() if types]


def catalog_for_canvas() -> dict[str, dict[str, Any]]:
    return {
        t.type: {"title": texts.translate(t.title), "group": t.group, "inputs": list(t.inputs),
                 "outputs": list(t.output_ports(t.with_defaults({})))}
        for t in CATALOG.values()
    }


def _history_context(request: HttpRequest, workflow: Workflow) -> dict[str, Any]:
    versions = list(workflow.versions.select_related("author").order_by("-number"))
    return {
        "workflow": workflow,
        "versions": versions,
        "can_edit": can(request.user, "workflow.edit", workflow),
        # the pair the radios start on (the previous version and the latest), for the side-by-side link
        "compare_from": versions[1].number if len(versions) > 1 else (versions[0].number if versions else 0),
        "compare_to": versions[0].number if versions else 0,
    }


def _publication_context(request: HttpRequest, workflow: Workflow, errors: list[str] | None = None) -> dict[str, Any]:
    """Draft against live for the canvas: the numbers, what publishing would change (graph/diff.py),
    the open request and whether this user may decide it (the four-eyes rule says why not)."""
    latest, live = workflow.latest, workflow.live
    pending = publishing.open_request(workflow)
    why_not = publishing.why_not_decide(pending, request.user) if pending is not None else ""
    ahead = latest is not None and latest.number != workflow.published
    return {
        "workflow": workflow, "latest": latest, "live": live, "draft_ahead": ahead, "pending": pending,
        "why_not_decide": gettext(why_not) if why_not else "",  # why_not_decide answers in English
        "may_cancel": pending is not None and publishing.may_cancel(pending, request.user),
        "can_publish": can(request.user, "workflow.publish", workflow),
        "can_policy": can(request.user, "workflow.policy", workflow),
        "can_test_run": ahead and latest.is_runnable and can(request.user, "workflow.edit", workflow)
        and can(request.user, "run.start", workflow) and not workflow.archived,
        "live_diff": diff(live.as_graph(), latest.as_graph()) if ahead and live is not None else None,
        "publish_errors": errors or [],
    }


@login_required
def canvas_publication(request: HttpRequest, pk: int) -> HttpResponse:
    """The publication card alone, refreshed by the canvas after each save."""
    workflow = get_workflow_for_user(request.user, pk)
    return render(request, "workflows/_publication.html", _publication_context(request, workflow))


def _publication_refused(request: HttpRequest, workflow: Workflow, errors: list[str]) -> HttpResponse:
    response = workflow_canvas(request, workflow.pk, publish_errors=errors)
    response.status_code = 400
    return response


@login_required
@require_POST
def canvas_publish(request: HttpRequest, pk: int) -> HttpResponse:
    """Publish a version (or ask for its publication where a second person must approve)."""
    workflow = get_workflow_for_user(request.user, pk, "workflow.publish")
    number = request.POST.get("version") or ""
    version = workflow.versions.filter(number=int(number)).first() if number.isdigit() and len(number) < 10 else None
    if version is None:
        return _publication_refused(request, workflow, [gettext("Choose a saved version to publish.")])
    try:
        publishing.publish(workflow, version, user=request.user, reason=request.POST.get("reason") or "")
    except publishing.Unpublishable as exc:
        return _publication_refused(request, workflow, [
            gettext("Version %(number)s cannot be published:") % {"number": version.number}, *exc.problems])
    except ValidationError as exc:
        return _publication_refused(request, workflow, exc.messages)
    return redirect("workflow-detail", pk=workflow.pk)


@login_required
@require_POST
def canvas_publish_decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve, reject or cancel the open request to publish (four eyes: design/publishing.py)."""
    workflow = get_workflow_for_user(request.user, pk)
    pending = publishing.open_request(workflow)
    if pending is None:
        return _publication_refused(request, workflow, [gettext("No request to publish is open any more.")])
    decision, reason = request.POST.get("decision"), request.POST.get("reason") or ""
    try:
        if decision == "approve":
            publishing.approve(pending, user=request.user, reason=reason)
        elif decision == "reject":
            publishing.reject(pending, user=request.user, reason=reason)
        elif decision == "cancel":
            publishing.cancel(pending, user=request.user)
        else:
            return _publication_refused(request, workflow, [gettext("Choose approve, reject or cancel.")])
    except publishing.Unpublishable as exc:
        return _publication_refused(request, workflow, exc.problems)
    except ValidationError as exc:
        return _publication_refused(request, workflow, exc.messages)
    return redirect("workflow-detail", pk=workflow.pk)


@login_required
@require_POST
def canvas_publish_policy(request: HttpRequest, pk: int) -> HttpResponse:
    """Administrators: whether publishing this workflow needs a second person."""
    workflow = get_workflow_for_user(request.user, pk, "workflow.policy")
    publishing.set_policy(workflow, needs_approval=request.POST.get("needs_approval") == "on", user=request.user)
    return redirect("workflow-detail", pk=workflow.pk)


@login_required
def workflow_canvas(request: HttpRequest, pk: int, publish_errors: list[str] | None = None) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk)
    latest = workflow.latest
    graph = latest.graph if latest else {"nodes": [], "edges": []}
    can_edit = can(request.user, "workflow.edit", workflow)
    boot = {
        "workflow": workflow.pk,
        "name": workflow.name,
        "version": latest.number if latest else 0,
        "canEdit": can_edit,
        "graph": graph,
        "ports": node_ports(graph),
        "problems": texts.problems_json(latest.problems if latest else []),  # each with `text`, translated
        "catalog": catalog_for_canvas(),
        "urls": {
            "versions": f"/api/workflows/{workflow.pk}/versions/",
            "validate": "/api/workflows/validate/",
            "create": "/api/workflows/",
            "panel": reverse("canvas-panel", args=[workflow.pk]),
            "history": reverse("canvas-history", args=[workflow.pk]),
            "samples": reverse("canvas-samples", args=[workflow.pk]),
            "run": reverse("canvas-run", args=[workflow.pk]),
            "canvas": reverse("workflow-detail", args=[workflow.pk]),
            "publication": reverse("canvas-publication", args=[workflow.pk]),
        },
    }
    context = {**_publication_context(request, workflow, publish_errors), **_history_context(request, workflow),
               "latest": latest, "palette": palette(), "boot": boot,
               "problems": boot["problems"],
               "export_url": f"/api/workflows/{workflow.pk}/export/?format=json",
               "can_run": can(request.user, "run.start", workflow),
               "sample_count": len(gallery.sample_items(workflow.template)),
               "recent_runs": recent_runs(workflow) if can(request.user, "run.view", workflow) else []}
    return render(request, "workflows/detail.html", context)


@login_required
def canvas_history(request: HttpRequest, pk: int) -> HttpResponse:
    workflow = get_workflow_for_user(request.user, pk)
    return render(request, "workflows/detail.html#history", _history_context(request, workflow))


def _lines(data: Any, width: int = 80) -> list[tuple[str, str]]:
    """A node's data as short `field: value` lines for a narrow side panel (the trace shows it all)."""
    if not isinstance(data, dict):
        return [("", str(data)[:width])]
    lines = []
    for key, value in data.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        lines.append((str(key), text if len(text) <= width else text[: width - 1] + "…"))
    return lines


RUNS_PICKED_FROM = 10


def recent_runs(workflow: Workflow) -> list[dict[str, Any]]:
    """The runs the canvas's picker offers, newest first: number, status in words, when."""
    runs = Run.objects.filter(workflow=workflow).order_by("-id")[:RUNS_PICKED_FROM]
    return [{"run": r, "status": texts.status_label(r.status)} for r in runs]


def _picked_run(request: HttpRequest, workflow: Workflow) -> Run | None:
    """The run asked for (`?run=`, one of this workflow's: else 404), or the one the canvas follows."""
    runs = Run.objects.filter(workflow=workflow).select_related("version", "workflow")
    wanted = request.GET.get("run") or ""
    if wanted:
        if not wanted.isdigit():
            raise Http404
        return get_object_or_404(runs, pk=int(wanted))
    latest = current_run_id(workflow.pk)
    return runs.filter(pk=latest).first() if latest else None


@login_required
def canvas_run(request: HttpRequest, pk: int) -> HttpResponse:
    """One run's badges, edge counts and run line for the canvas, as the live socket sends them (fragments
    swapped out of band): a run picked by hand shows its stats as they stand, without a socket."""
    workflow = get_workflow_for_user(request.user, pk)
    require(request.user, "run.view", workflow)
    run = _picked_run(request, workflow)
    state = snapshot.load(run.pk) if run is not None else None
    frames = snapshot.render(state, "canvas") if state is not None else snapshot.render_empty_canvas(workflow.pk)
    return HttpResponse("".join(frames))


@login_required
def node_samples(request: HttpRequest, pk: int) -> HttpResponse:
    """One node's last items in a run (`?run=`, else the one the canvas follows): what reached it, what it
    gave, its dead letters."""
    workflow = get_workflow_for_user(request.user, pk)
    node = (request.GET.get("node") or "")[:64]
    run = _picked_run(request, workflow)
    samples = results.node_samples(run, node) if run is not None and node else None
    rows = [{"sample": s, "received": _lines(s.received), "output": _lines(s.output)}
            for s in (samples.rows if samples else [])]
    return render(request, "workflows/_samples.html", {"workflow": workflow, "run": run, "node": node,
                                                       "samples": samples, "rows": rows})


@login_required
@require_http_methods(["GET", "POST"])
def node_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the config form of one node (config sent by the canvas). POST: read the form back.

    A POST whose values can all be read tells the canvas the new config (the `cfConfig` event);
    settings that are readable but wrong (missing, out of range) are applied too and shown inline:
    a draft may have problems, and the node keeps its mark until they are fixed.
    """
    posting = request.method == "POST"
    workflow = get_workflow_for_user(request.user, pk, "workflow.edit" if posting else "workflow.view")
    data = request.POST if posting else request.GET
    node_id = (data.get("_node") or data.get("node") or "")[:64]
    node_type = node_type_or_none(data.get("_type") or data.get("type"))
    label = (data.get("_label") if posting else data.get("label")) or ""
    label = label.strip()[:200]
    shown = texts.node_type(node_type) if node_type is not None else None  # title, description, labels translated
    context: dict[str, Any] = {"workflow": workflow, "node_id": node_id, "node_type": shown, "label": label,
                               "can_edit": can(request.user, "workflow.edit", workflow), "applied": False}
    if node_type is None:
        return render(request, "workflows/_panel.html", context)
    if posting:
        config, parse_errors = parse_config(node_type, request.POST)
    else:
        config, parse_errors = config_from_query(request.GET.get("config")), {}
    errors = {**config_problems(node_id, node_type, config), **parse_errors}
    raw = {name: request.POST.get(PREFIX + name) for name in parse_errors} if posting else None
    context.update(fields=field_views(node_type, config, errors, raw), errors=errors,
                   needs=sorted(node_type.needs(node_type.with_defaults(config))),
                   adds=sorted(node_type.adds(node_type.with_defaults(config))),
                   applied=posting and not parse_errors)
    if node_type.type == "classify":
        context["learning"] = step_learning(workflow, node_id, node_type.with_defaults(config), request.user)
    response = render(request, "workflows/_panel.html", context)
    if context["applied"]:
        outputs = list(node_type.output_ports(node_type.with_defaults(config)))
        trigger_client_event(response, "cfConfig", {"node": node_id, "type": node_type.type, "config": config,
                                                    "label": label, "outputs": outputs})
    return response


def _flatten(errors: Any, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        return [m for key, value in errors.items()
                for m in _flatten(value, "" if key == "non_field_errors" else f"{key}: ")]
    if isinstance(errors, list):
        return [m for value in errors for m in _flatten(value, prefix)]
    return [f"{prefix}{errors}"]


@login_required
@require_POST
def workflow_upload(request: HttpRequest) -> HttpResponse:
    """Import an export document from a file (or pasted JSON): validated, then a new workflow."""
    require(request.user, "workflow.edit")
    upload = request.FILES.get("file")
    problems: list[str] = []
    document: Any = None
    raw = upload.read(settings.GRAPH_MAX_BYTES * 2 + 1) if upload else (request.POST.get("document") or "").encode()
    if not raw.strip():
        problems.append(gettext("Choose an exported workflow file (.json) to import."))
    elif len(raw) > settings.GRAPH_MAX_BYTES * 2:
        problems.append(gettext("The file is larger than %(size)s KB; a workflow export is much smaller.")
                        % {"size": settings.GRAPH_MAX_BYTES * 2 // 1024})
    else:
        try:
            document = json_loads(raw.decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError) as exc:
            problems.append(gettext("The file is not JSON (%(error)s). Export a workflow from its canvas page and "
                                    "upload that file.") % {"error": exc})
    if document is not None and not isinstance(document, dict):
        problems.append(gettext("The file must hold one JSON object with \"format\": \"%(format)s\".")
                        % {"format": EXPORT_FORMAT})
    elif document is not None:
        name = (request.POST.get("name") or "").strip() or document.get("name")
        data = ImportSerializer(data={**document, "name": name})
        if data.is_valid():
            try:
                team = team_for_new(request.user, request.POST.get("team"), "workflow.edit")
            except ValueError as exc:
                problems.append(str(exc))
            else:
                workflow, _ = import_workflow(name=data.validated_data["name"], user=request.user, team=team,
                                              description=data.validated_data["description"],
                                              graph=data.validated_data["graph"])
                return redirect("workflow-detail", pk=workflow.pk)
        else:
            problems.extend(_flatten(data.errors))
    workflows = visible_workflows(request.user).listed()
    return render(request, "workflows/list.html", {"workflows": workflows, "import_errors": problems}, status=400)
