"""Drift per model node: label mix and confidence of a recent window against the reference window
(the first decisions of the version now in production, i.e. right after its promotion), measured
with the population stability index, plus accuracy on reviewed items in each window.

PSI = Σ (recent − reference) · ln(recent / reference) over bins. Rule of thumb: < 0.1 stable,
0.1–0.2 moderate, > 0.2 a real shift. The alert says what changed in words and offers actions:
route everything to review (a new workflow version, so it is versioned and reversible) or roll back
(a promotion request of the previous version, so it still needs a second person).
"""

from __future__ import annotations

import copy
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Max
from django.utils import dateformat, timezone
from django.utils.translation import gettext

from workflows.access import get_workflow_for_user
from workflows.design.publishing import publish
from workflows.design.versions import save_version
from workflows.graph import parse_graph
from workflows.models import Decision, Run, Workflow
from workflows.models.registry import Label, RegisteredModel, parse_ref, resolve
from workflows.notifications import events as notifications

logger = logging.getLogger(__name__)
WINDOW = 200
MIN_ITEMS = 30
PSI_ALERT = 0.2
ACCURACY_ALERT = 0.05
MIN_REVIEWED = 10
EPS = 1e-4


def psi(reference: dict[str, float], recent: dict[str, float]) -> float:
    """PSI of two distributions given as {bin: share}; empty bins count as EPS."""
    total = 0.0
    for key in set(reference) | set(recent):
        r, q = max(recent.get(key, 0.0), EPS), max(reference.get(key, 0.0), EPS)
        total += (r - q) * math.log(r / q)
    return round(total, 4)


def shares(values: list[Any]) -> dict[str, float]:
    counts = Counter(str(v) for v in values)
    n = sum(counts.values())
    return {k: c / n for k, c in counts.items()} if n else {}


def confidence_bins(values: list[float]) -> dict[str, float]:
    return shares([min(int((v or 0.0) * 10), 9) for v in values])


@dataclass
class Window:
    n: int
    start: Any
    end: Any
    mix: dict[str, float]
    mean_confidence: float | None
    reviewed: int
    accuracy: float | None
    confidence_bins: dict[str, float] = field(default_factory=dict)


@dataclass
class NodeDrift:
    workflow_id: int
    workflow: str
    node: str
    model: str
    model_ref: str
    status: str  # "ok" | "alert" | "insufficient"
    reference: Window | None = None
    recent: Window | None = None
    psi_labels: float | None = None
    psi_confidence: float | None = None
    message: str = ""
    reasons: list[str] = field(default_factory=list)

    @property
    def alert(self) -> bool:
        return self.status == "alert"


def _window(decisions: list[tuple], labels: dict[int, str]) -> Window:
    confidences = [c for _, _, c, _ in decisions if c is not None]
    reviewed = [(label, labels[item]) for item, label, _, _ in decisions if item in labels]
    return Window(n=len(decisions), start=decisions[0][3], end=decisions[-1][3], mix=shares([d[1] for d in decisions]),
                  mean_confidence=round(sum(confidences) / len(confidences), 4) if confidences else None,
                  reviewed=len(reviewed),
                  accuracy=round(sum(p == t for p, t in reviewed) / len(reviewed), 4) if reviewed else None,
                  confidence_bins=confidence_bins(confidences))


def _since(moment: Any) -> str:
    """"Monday" within the last six days, else "5 March": day and month names in the reader's language."""
    local = timezone.localtime(moment)
    if timezone.now() - moment < timedelta(days=6):
        return dateformat.format(local, "l")
    return dateformat.format(local, "j F")


def _pct(x: float) -> str:
    return f"{round(x * 100):d} %"


def _configured_ref(workflow: Workflow, node: str) -> str:
    """The model a node is set to use (as a concrete version when it resolves), for a node with no labelled
    decision yet: an extractor or summariser never labels, and its sentence must still name its model."""
    latest = workflow.latest
    configs = [n.get("config") or {} for n in (latest.graph.get("nodes", []) if latest else []) if n.get("id") == node]
    ref = configs[0].get("model") if configs else None
    if not isinstance(ref, str) or not ref:
        return ""
    try:
        return resolve(ref).ref
    except LookupError:
        return ref


def node_drift(workflow: Workflow, node: str, *, window: int = WINDOW, min_items: int = MIN_ITEMS,
               noun: str | None = None) -> NodeDrift:
    """The drift of one model node, its message in the reader's language (it is computed per request)."""
    noun = noun or gettext("documents")
    latest_ref = (Decision.objects.filter(run__workflow=workflow, node=node, label__isnull=False).exclude(model_ref="")
                  .order_by("-id").values_list("model_ref", flat=True).first()) or _configured_ref(workflow, node)
    try:
        model_name = parse_ref(latest_ref)[0]
    except LookupError:
        model_name = ""
    model = RegisteredModel.objects.filter(name=model_name).first()
    production = model.alias("production") if model else None
    ref = production.ref if production else latest_ref
    result = NodeDrift(workflow_id=workflow.pk, workflow=workflow.name, node=node, model=model_name, model_ref=ref,
                       status="insufficient")
    # Only the two windows are read: the first 2×window rows (all of them when there are no more) and
    # the last window; a version with a year of decisions costs the same as one with a week.
    decided = Decision.objects.filter(run__workflow=workflow, node=node, model_ref=ref, label__isnull=False, error="")
    columns = ("item_id", "label", "confidence", "created_at")
    rows = list(decided.order_by("id").values_list(*columns)[:2 * window])
    if len(rows) == 2 * window:
        rows = rows[:window] + list(reversed(decided.order_by("-id").values_list(*columns)[:window]))
    if len(rows) < 2 * min_items and not ref:
        result.message = gettext("Not enough labelled decisions at '%(node)s' yet (%(count)s; drift needs %(needed)s: "
                                 "%(window)s for the reference window after promotion and %(window)s recent).") % {
            "node": node, "count": len(rows), "needed": 2 * min_items, "window": min_items}
        return result
    if len(rows) < 2 * min_items:
        result.message = gettext("Not enough decisions of %(ref)s at '%(node)s' yet (%(count)s; drift needs "
                                 "%(needed)s: %(window)s for the reference window after promotion and %(window)s "
                                 "recent).") % {"ref": ref, "node": node, "count": len(rows),
                                                "needed": 2 * min_items, "window": min_items}
        return result
    size = min(window, len(rows) // 2)
    reference_rows, recent_rows = rows[:size], rows[-size:]
    items = [r[0] for r in reference_rows + recent_rows]
    truth = dict(Label.objects.filter(item_id__in=items, node=node, field="").values_list("item_id", "label"))
    result.reference, result.recent = _window(reference_rows, truth), _window(recent_rows, truth)
    result.psi_labels = psi(result.reference.mix, result.recent.mix)
    result.psi_confidence = psi(result.reference.confidence_bins, result.recent.confidence_bins)
    # Each change is a clause; the message is "Since <day> <clause>; <clause>." (`reasons` stay English:
    # they are the figures' names, for logs and the API, not sentences).
    clauses = []
    if result.psi_labels > PSI_ALERT:
        label, change = max(((k, result.recent.mix.get(k, 0) - result.reference.mix.get(k, 0))
                             for k in set(result.recent.mix) | set(result.reference.mix)), key=lambda kv: abs(kv[1]))
        said = {"share": _pct(abs(change)), "noun": noun, "label": label,
                "recent": _pct(result.recent.mix.get(label, 0)), "reference": _pct(result.reference.mix.get(label, 0))}
        clauses.append((gettext("%(share)s more %(noun)s are classified %(label)s (%(recent)s against %(reference)s "
                                "after promotion)") if change > 0 else
                        gettext("%(share)s fewer %(noun)s are classified %(label)s (%(recent)s against %(reference)s "
                                "after promotion)")) % said)
        result.reasons.append(f"label mix PSI {result.psi_labels} > {PSI_ALERT}")
    if result.psi_confidence > PSI_ALERT and result.recent.mean_confidence is not None:
        said = {"before": f"{result.reference.mean_confidence:.2f}", "after": f"{result.recent.mean_confidence:.2f}"}
        clauses.append((gettext("mean confidence fell from %(before)s to %(after)s")
                        if result.recent.mean_confidence < (result.reference.mean_confidence or 0) else
                        gettext("mean confidence rose from %(before)s to %(after)s")) % said)
        result.reasons.append(f"confidence PSI {result.psi_confidence} > {PSI_ALERT}")
    a, b = result.reference, result.recent
    if (a.accuracy is not None and b.accuracy is not None and a.reviewed >= MIN_REVIEWED and b.reviewed >= MIN_REVIEWED
            and a.accuracy - b.accuracy >= ACCURACY_ALERT):
        clauses.append(gettext("accuracy on reviewed items fell from %(before)s to %(after)s")
                       % {"before": _pct(a.accuracy), "after": _pct(b.accuracy)})
        result.reasons.append(f"reviewed accuracy down {round((a.accuracy - b.accuracy) * 100)} points")
    if clauses:
        result.status = "alert"
        result.message = gettext("Since %(day)s %(changes)s.") % {"day": _since(result.recent.start),
                                                                  "changes": "; ".join(clauses)}
    else:
        result.status = "ok"
        said = {"labels": result.psi_labels, "confidence": result.psi_confidence}
        result.message = (gettext("Stable: label mix PSI %(labels)s, confidence PSI %(confidence)s, reviewed accuracy "
                                  "%(accuracy)s.") % {**said, "accuracy": _pct(b.accuracy)}
                          if b.accuracy is not None else
                          gettext("Stable: label mix PSI %(labels)s, confidence PSI %(confidence)s.") % said)
    return result


def model_nodes() -> list[tuple[Workflow, str]]:
    """Every (workflow, node) that made labelled model decisions in runs of the last DRIFT_ACTIVE_DAYS,
    most recently active first (older steps are not looked at: the check must not scan the whole ledger)."""
    since = timezone.now() - timedelta(days=settings.DRIFT_ACTIVE_DAYS)
    runs = list(Run.objects.filter(created_at__gte=since).values_list("id", flat=True))
    groups = (Decision.objects.filter(run_id__in=runs, label__isnull=False).exclude(model_ref="")
              .values("run__workflow_id", "node").annotate(n=Count("id"), last=Max("id")).order_by("-last"))
    workflows = Workflow.objects.in_bulk({g["run__workflow_id"] for g in groups})
    return [(workflows[g["run__workflow_id"]], g["node"]) for g in groups if g["run__workflow_id"] in workflows]


def report(**kwargs: Any) -> list[NodeDrift]:
    return [node_drift(workflow, node, **kwargs) for workflow, node in model_nodes()]


def notify_alerts(now: Any = None) -> int:
    """The monitor's periodic check (notifications.Duty): tell people of every step whose drift is an
    alert (once per model version at a step: the event's key)."""
    told = 0
    for workflow, node in model_nodes():
        try:
            result = node_drift(workflow, node)
        except Exception:  # one step's odd ledger must not silence the alerts of the others
            logger.exception("drift of %s/%s not computed", workflow.pk, node)
            continue
        if result.alert:
            told += notifications.drift_alert(workflow, node, result.model_ref)
    return told


def _route_to_review(graph: dict[str, Any], node: str) -> list[str]:
    """In `graph`, in place: every route right after `node` whose 'else' branch leads to a review node
    sends everything there. The routes changed."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    review_targets = {e["source"] for e in graph["edges"] if e.get("source_port") == "else"
                      and nodes.get(e["target"], {}).get("type") == "review"}
    changed = []
    for e in graph["edges"]:
        target = nodes.get(e["target"])
        if e["source"] == node and target and target["type"] == "route" and target["id"] in review_targets:
            config = target.setdefault("config", {})
            # min 1 and max 0 together match no item: every item falls through to 'else'.
            config["branches"] = [{**b, "min_confidence": 1, "max_confidence": 0} for b in config.get("branches", [])]
            changed.append(target["id"])
    return changed


def route_all_to_review(workflow_id: int, node: str, *, user: Any) -> Any:
    """Save a new workflow version in which every route right after `node` sends everything to its
    'else' branch (which must lead to a review node): nothing is decided automatically any more. It is
    made from the live version and published at once (a request, where the workflow needs a second
    person to publish): the action is meant to change what runs now, not a draft. A draft in progress
    (newer than the live version) is saved again on top, with the same change, still a draft, so the
    canvas keeps showing it: the version returned carries it as `kept_draft` (None without one)."""
    workflow = get_workflow_for_user(user, workflow_id, "workflow.edit")
    latest = workflow.latest
    live = workflow.live
    graph = copy.deepcopy((live or latest).graph)
    changed = _route_to_review(graph, node)
    if not changed:
        raise ValidationError(gettext("No route after '%(node)s' sends its 'else' branch to a review node; add one "
                                      "on the canvas.") % {"node": node})
    draft = None
    if live is not None and latest.number != live.number:
        draft = copy.deepcopy(latest.graph)
        _route_to_review(draft, node)
    with transaction.atomic():  # a version that cannot be published is not left behind as a draft
        version = save_version(workflow, parse_graph(graph), user=user, parent=latest.number,
                               message=f"Drift: route everything after '{node}' to review",
                               action="drift.route_all_to_review", node=node, routes=changed)
        version.publication = publish(workflow, version, user=user)
        version.kept_draft = None
        if draft is not None:
            version.kept_draft = save_version(
                workflow, parse_graph(draft), user=user, parent=version.number,
                message=f"Draft v{latest.number} again, with the drift change after '{node}'",
                action="drift.keep_draft", node=node, draft=latest.number)
            version.kept_draft.was = latest.number
    return version
