"""What a live message says: a run's progress and its nodes' stats, as HTML fragments that
htmx-ext-ws swaps out of band by element id (templates/live/). One function builds both the full
snapshot sent on connect and the updates of a few changed nodes.

Fragment ids (dom_id() makes node ids safe):
  run page  run-<run>-status            status, progress bar, counts (the id runs/detail.html uses)
            live-<run>-<node>-stats     a node card's numbers (data-t, data-rate feed the sparkline)
            live-<run>-<node>-mix       a node card's label-mix bars and confidence histogram
            node-<node>-stats           the node's row in the stations table
            live-<run>-errors           the latest dead letters, linking to each item's trace
  canvas    cf-live-run                 which run the canvas shows, its status and progress
            cf-live-edges               {node: {port: items out}} for the edge counts (data-ports)
            cf-live-<node>              the badge inside the node (processed, items/s, p95, errors)
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from workflows.graph import CATALOG
from workflows.models import NodeStats, Run

from .groups import dom_id
from .window import WINDOWS, Sample

KINDS = ("run", "canvas")
LABELS_SHOWN = 6


@dataclass
class RunState:
    """A run and its NodeStats rows as read together, plus what changed since the last message."""

    run: Any
    rows: list[Any]
    changed: set[str] | None = None  # None: everything (a snapshot)
    nodes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def batches(self) -> dict[str, int]:
        return {r.node: r.batches for r in self.rows}

    @property
    def signature(self) -> tuple:
        return run_signature(self.run)


def run_signature(run: Any) -> tuple:
    return (run.status, run.items_total, run.items_done, run.items_dead, run.items_parked, run.is_live)


def load(run_id: int, changed: Iterable[str] | None = None) -> RunState | None:
    """The run and its stats rows read in one snapshot, so that an update's counts agree: sockets
    order updates by them (consumers.Tracker). PostgreSQL needs REPEATABLE READ for that (each
    statement of a READ COMMITTED transaction sees newer commits); SQLite's read transaction has it."""
    from django.db import connection, transaction

    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        run = Run.objects.select_related("version", "workflow").filter(pk=run_id).first()
        if run is None:
            return None
        rows = list(NodeStats.objects.filter(run_id=run_id).order_by("id"))  # created in plan order
    state = RunState(run=run, rows=rows, changed=None if changed is None else set(changed))
    state.nodes = node_views(run, rows)
    return state


def node_views(run: Any, rows: list[Any]) -> list[dict[str, Any]]:
    graph = run.version.graph or {}
    declared = {n.get("id"): n for n in graph.get("nodes", []) if isinstance(n, dict)}
    out_by_node = {r.node: r.ports or {} for r in rows}
    inflow: dict[str, int] = {}
    for e in graph.get("edges", []):
        inflow[e["target"]] = (inflow.get(e["target"], 0)
                               + int(out_by_node.get(e["source"], {}).get(e["source_port"], 0)))
    inflow[run.source_node] = run.items_total
    started = run.started_at.timestamp() if run.started_at else None
    views = []
    for r in rows:
        spec = declared.get(r.node) or {}
        node_type = CATALOG.get(spec.get("type", ""))
        backlog = max(0, inflow.get(r.node, 0) - r.items_in)
        t = r.updated_at.timestamp()
        trend = WINDOWS.observe(run.pk, r.node, Sample(r.batches, t, r.items_in, r.errors, backlog), started)
        labels = sorted((r.labels or {}).items(), key=lambda kv: (-kv[1], kv[0]))
        labelled = sum(c for _, c in labels) or 1
        shown = [{"label": k, "count": c, "pct": round(100 * c / labelled, 1)} for k, c in labels[:LABELS_SHOWN]]
        rest = sum(c for _, c in labels[LABELS_SHOWN:])
        if rest:
            shown.append({"label": "other", "count": rest, "pct": round(100 * rest / labelled, 1)})
        conf = [int((r.confidence_hist or {}).get(str(b), 0)) for b in range(10)]
        tallest = max(conf) or 1
        error_share = r.errors / r.items_in if r.items_in else 0.0
        if trend.errors_growing or error_share >= 0.05:
            health = "errors"
        elif trend.backlog_growing:
            health = "backlog"
        elif r.errors:
            health = "warn"
        elif not r.items_in:
            health = "idle"
        else:
            health = "ok"
        extra = r.extra or {}
        views.append({
            "node": r.node, "dom": dom_id(r.node), "type": spec.get("type", ""),
            "title": spec.get("label") or (node_type.title if node_type else ""),
            "items_in": r.items_in, "items_out": sum((r.ports or {}).values()), "ports": r.ports or {},
            "errors": r.errors, "retries": r.retries, "p50_ms": r.p50_ms, "p95_ms": r.p95_ms, "labels": r.labels or {},
            "cpu_seconds": round(r.cpu_seconds, 3), "extra": extra, "batches": r.batches, "t": round(t, 3),
            "rate": round(trend.rate, 1), "windowed": trend.windowed, "backlog": backlog, "health": health,
            "label_mix": shown,
            "confidence": [{"bucket": b, "count": c, "pct": round(100 * c / tallest)} for b, c in enumerate(conf)],
            "has_confidence": any(conf), "tokens": extra.get("tokens"), "cost_eur": extra.get("cost_eur"),
            "rate_exact": trend.rate,  # shown through the `short` filter, in each socket's language
        })
    return views


def dead_letters(run: Any, limit: int = 10) -> list[Any]:
    return list(run.dead_letters.filter(retried_at__isnull=True).select_related("item").order_by("-id")[:limit])


def other_languages() -> list[str]:
    return [code for code, _ in settings.LANGUAGES if code != settings.LANGUAGE_CODE]


def render(state: RunState, kind: str, *, oob: bool = True) -> list[str]:
    """The frames of one message for a run page ("run") or a canvas ("canvas"): one frame each.

    The stations table's rows come first in the frame: htmx-ext-ws parses a frame in a <template>,
    whose first tag sets the parser's mode, and a <tr> after a <p> or a <div> would be dropped
    (rows first, then anything else, parses whole)."""
    nodes = [n for n in state.nodes if state.changed is None or n["node"] in state.changed]
    context: dict[str, Any] = {"run": state.run, "nodes": nodes, "oob": oob, "snapshot": state.changed is None}
    if kind == "run":
        context["with_errors"] = state.changed is None or bool(nodes)
        if context["with_errors"]:
            context["dead_letters"] = dead_letters(state.run)
        return [render_to_string("live/_run_update.html", context)]
    context["ports"] = json.dumps({n["node"]: n["ports"] for n in state.nodes}, sort_keys=True)
    return [render_to_string("live/_canvas_update.html", context)]


RUN_LINE = {"run": r'<p id="run-{run}-status"[^>]*>.*?</p>', "canvas": r'<div id="cf-live-run"[^>]*>.*?</div>'}


def without_run_line(frames: list[str], kind: str, run_id: int) -> list[str]:
    """The frames without the run's status line (templates/live/_run_status.html, _canvas_run.html:
    neither nests its own tag), for a socket that already shows a newer one."""
    line = re.compile(RUN_LINE[kind].replace("{run}", str(run_id)), re.DOTALL)
    return [line.sub("", frame, count=1) for frame in frames]


def render_empty_canvas(workflow_id: int) -> list[str]:
    return [render_to_string("live/_canvas_update.html", {"run": None, "nodes": [], "oob": True, "ports": "{}"})]


def message(state: RunState, views: set[tuple[str, str]] | None = None) -> dict[str, Any]:
    """The channel-layer event the broadcaster sends to the run's and the workflow's groups, rendered
    for the (page kind, language) pairs in `views` (None: every pair; live/watched.py says which
    pairs sockets show)."""
    # Stamped before rendering: the time a socket receives it after this includes the renders (one
    # per page kind and language), and two events' stamps are as far apart as their reads.
    at = time.time()

    def kinds(language: str) -> dict[str, list[str]]:
        with translation.override(language):
            return {kind: render(state, kind) for kind in KINDS if views is None or (kind, language) in views}

    html = kinds(settings.LANGUAGE_CODE)
    translated = {language: kinds(language) for language in other_languages()}
    return {
        "type": "live.update",
        "run": state.run.pk,
        "workflow": state.run.workflow_id,
        "nodes": sorted(state.changed or ()),
        "batches": state.batches,
        "signature": list(state.signature),
        # One render per page kind and language serves every socket: the default language's under
        # "html", the others' under "translated" (a socket picks its own; see consumers.Tracker).
        "html": html,
        "translated": translated,
        "at": at,  # when its state was read in the worker (bench/live.py measures the rest)
    }
