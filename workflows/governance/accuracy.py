"""Live accuracy of model nodes, per workflow, node and model version, measured without bias.

Two kinds of label say whether a model was right, and they answer different questions:
- spot checks (Label.SPOT_CHECK) judge a random sample of the items a model decided ALONE (the
  executor draws it, engine/state.py `spot_sampled`): their share right is an unbiased estimate of
  the accuracy of what ran unattended, and it is THE accuracy pages and KPIs show, with its Wilson
  95 % interval (a small sample says so by a wide one);
- reviews of escalations (Label.REVIEW) judge the items the line sent to a person because the model
  was unsure: a different, harder population. Their accuracy is shown apart, never mixed in.
Class labels only: a corrected output (Label.field "fields.iban", "summary") is not a class, and a
label whose prediction is unknown judges nothing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Count, F, Q
from django.utils import timezone

from workflows.models.registry import Label

Z95 = 1.959963984540054


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval for a proportion; None without observations."""
    if n <= 0:
        return None
    p = correct / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denominator = 1 + z * z / n
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


@dataclass(frozen=True)
class Rate:
    """Judged predictions and how many were right, with the share and its interval (None when n is 0)."""

    n: int
    correct: int

    @property
    def rate(self) -> float | None:
        return self.correct / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.correct, self.n)

    @property
    def low(self) -> float | None:
        interval = self.interval
        return interval[0] if interval else None

    @property
    def high(self) -> float | None:
        interval = self.interval
        return interval[1] if interval else None

    def __add__(self, other: Rate) -> Rate:
        return Rate(self.n + other.n, self.correct + other.correct)

    def as_json(self) -> dict[str, Any]:
        return {"n": self.n, "correct": self.correct, "rate": self.rate, "low": self.low, "high": self.high}


@dataclass(frozen=True)
class NodeAccuracy:
    """One model version at one node of one workflow: spot-checked accuracy, escalation accuracy apart."""

    workflow_id: int | None
    workflow: str
    node: str
    model_ref: str
    spot: Rate
    escalated: Rate

    def as_json(self) -> dict[str, Any]:
        spot, esc = self.spot, self.escalated
        return {"workflow_id": self.workflow_id, "workflow": self.workflow, "node": self.node,
                "model_ref": self.model_ref, "spot_checked": spot.n, "correct": spot.correct,
                "accuracy": spot.rate, "interval": list(spot.interval) if spot.interval else None,
                "escalations": esc.n, "escalation_correct": esc.correct, "escalation_accuracy": esc.rate,
                "escalation_interval": list(esc.interval) if esc.interval else None}


def node_accuracy(workflow_id: int | None = None, *, model_name: str | None = None, since: datetime | None = None,
                  until: datetime | None = None) -> list[NodeAccuracy]:
    """Per (workflow, node, model version), sorted: spot checks and escalation reviews counted apart, in
    one grouped query. `model_name` keeps the versions of one registered model (the model page);
    `since`/`until` bound when the labels were made."""
    labels = Label.objects.filter(field="", source__in=[Label.SPOT_CHECK, Label.REVIEW]).exclude(predicted="")
    if workflow_id is not None:
        labels = labels.filter(run__workflow_id=workflow_id)
    if model_name:
        labels = labels.filter(model_ref__startswith=f"{model_name}:")
    if since is not None:
        labels = labels.filter(created_at__gte=since)
    if until is not None:
        labels = labels.filter(created_at__lt=until)
    rows = (labels.values("run__workflow_id", "run__workflow__name", "node", "model_ref", "source")
            .annotate(n=Count("id"), correct=Count("id", filter=Q(label=F("predicted")))))
    grouped: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = (row["run__workflow_id"], row["node"], row["model_ref"])
        entry = grouped.setdefault(key, {"name": row["run__workflow__name"] or "—", "spot": Rate(0, 0),
                                         "escalated": Rate(0, 0)})
        part = "spot" if row["source"] == Label.SPOT_CHECK else "escalated"
        entry[part] = entry[part] + Rate(row["n"], row["correct"])
    return [NodeAccuracy(key[0], entry["name"], key[1], key[2], entry["spot"], entry["escalated"])
            for key, entry in sorted(grouped.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1], kv[0][2]))]


def live_accuracy(workflow_id: int | None = None) -> list[NodeAccuracy]:
    """What the review page and API show: labels of the last ACCURACY_WINDOW_DAYS only, so the query
    reads a bounded slice of the labels table, not the firm's whole history."""
    since = timezone.now() - timedelta(days=settings.ACCURACY_WINDOW_DAYS)
    return node_accuracy(workflow_id, since=since)
