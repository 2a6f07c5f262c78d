"""Live-metrics panels for the run page and the canvas: `{% load live %}{% live_run run %}`,
`{% live_canvas workflow %}`, and `{% live_assets %}` (head) and `{% live_scripts %}` (after htmx) for their
styles and scripts (templates/live/)."""

from __future__ import annotations

from typing import Any

from django import template

from workflows.live import snapshot
from workflows.live.consumers import current_run_id
from workflows.models import Run

register = template.Library()


@register.inclusion_tag("live/_run_live.html")
def live_run(run: Any) -> dict[str, Any]:
    state = snapshot.load(run.pk)
    return {"run": state.run if state else run, "nodes": state.nodes if state else [], "oob": False,
            "dead_letters": snapshot.dead_letters(run)}


@register.inclusion_tag("live/_canvas_live.html")
def live_canvas(workflow: Any) -> dict[str, Any]:
    """The strip as the socket's first message will fill it: the latest run's line (the page says which
    run it is before the socket connects, and without a socket at all)."""
    run_id = current_run_id(workflow.pk)
    run = Run.objects.filter(pk=run_id).first() if run_id else None
    return {"workflow": workflow, "run": run, "oob": False, "ports": "{}"}


@register.inclusion_tag("live/_assets.html")
def live_assets(charts: bool = False) -> dict[str, Any]:
    return {"charts": charts}


@register.inclusion_tag("live/_scripts.html")
def live_scripts(charts: bool = False) -> dict[str, Any]:
    return {"charts": charts}
