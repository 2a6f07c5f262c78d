"""The templates gallery: complete workflows to start from; "Use template" copies one into a new workflow.

The page shows each template in the reader's language (its Italian variant for an Italian reader) and
links to the same gallery in the other languages the templates are written in; "Use template" copies
what the page showed."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language, gettext
from django.views.decorators.http import require_POST

from workflows.access import get_workflow_for_user, team_for_new
from workflows.design import gallery as templates_gallery
from workflows.design import texts
from workflows.design.versions import create_workflow
from workflows.engine.launch import StartError, append_to_live_run, create_run
from workflows.graph import CATALOG, errors, parse_graph, validate
from workflows.models.audit import record
from workflows.roles import can, require


def _summary(template: dict[str, Any]) -> dict[str, Any]:
    graph = parse_graph(template["graph"])
    titles = [texts.translate(CATALOG[n.type].title) if n.type in CATALOG else n.type for n in graph.nodes]
    return {
        **template,
        "steps": [n.label or title for n, title in zip(graph.nodes, titles, strict=True)],
        "node_count": len(graph.nodes),
        "edge_count": len(graph.edges),
        "error_count": len(errors(validate(graph))),
    }


def _language(asked: str | None) -> str:
    """The language the gallery shows its templates in: the one asked for when the site has it, else the
    reader's."""
    available = {code for code, _ in settings.LANGUAGES}
    asked = templates_gallery.base_language(asked) if asked else ""
    return asked if asked in available else templates_gallery.base_language(get_language())


@login_required
def gallery(request: HttpRequest) -> HttpResponse:
    require(request.user, "workflow.view")
    language = _language(request.GET.get("language"))
    found = templates_gallery.templates()
    items = [_summary(templates_gallery.in_language(t, language)) for t in found]
    written = {code for t in found for code in templates_gallery.languages(t)}
    others = [(code, name) for code, name in settings.LANGUAGES if code in written and code != language]
    return render(request, "workflows/gallery.html",
                  {"templates": items, "can_edit": can(request.user, "workflow.edit"), "language": language,
                   "other_languages": others})


@login_required
@require_POST
def use_template(request: HttpRequest, slug: str) -> HttpResponse:
    require(request.user, "workflow.edit")
    template = templates_gallery.get(slug)
    if template is None:
        raise Http404(gettext("No such template."))
    # The copy is the one the gallery showed: its language came with the form, else the reader's.
    template = templates_gallery.in_language(template, _language(request.POST.get("language")))
    try:
        team = team_for_new(request.user, request.POST.get("team"), "workflow.edit")
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("gallery")
    workflow, _ = create_workflow(name=template["name"], description=template.get("description", ""),
                                  graph=parse_graph(template["graph"]), user=request.user,
                                  message=f"From template {slug} ({template['language']})", template=slug, team=team)
    record("workflow.template.use", actor=request.user, obj=workflow, template=slug, language=template["language"])
    return redirect("workflow-detail", pk=workflow.pk)


@login_required
@require_POST
def run_sample(request: HttpRequest, pk: int) -> HttpResponse:
    """Send a template's demo documents through the workflow: into its live run (REST intake
    source) or as a batch run (upload source). The demo path of `make run`."""
    workflow = get_workflow_for_user(request.user, pk, "run.start")
    items = templates_gallery.sample_items(workflow.template)
    if not items:
        raise Http404(gettext("This workflow has no sample documents."))
    live = workflow.live  # what the run will use, not a draft
    sources = {n.type for n in live.as_graph().nodes} if live else set()
    try:
        if "source.rest" in sources:
            run, _ = append_to_live_run(workflow, items, user=request.user)
        else:
            run = create_run(workflow, user=request.user, items=items, origin="upload",
                             input_name=gettext("sample documents"))
    except StartError as exc:
        messages.error(request, " ".join(exc.problems))  # StartError's problems are in the request's language
        return redirect("workflow-detail", pk=workflow.pk)
    record("run.sample", actor=request.user, obj=workflow, run=run.pk, items=len(items))
    return redirect("run-detail", pk=run.pk)
