"""NodeStats arithmetic, pure: what one micro-batch adds to a node's stats (latency histogram, see
workflows/latency.py; confidence deciles; labels, ports, errors), and merging two such deltas."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.latency import latency_bucket


def confidence_bucket(confidence: float) -> int:
    return min(9, max(0, int(confidence * 10)))


def _add(target: dict[str, Any], key: str, amount: float) -> None:
    target[key] = target.get(key, 0) + amount


@dataclass
class StatsDelta:
    """What one micro-batch adds to one node's stats."""

    items_in: int = 0
    errors: int = 0
    retries: int = 0
    ports: dict[str, int] = field(default_factory=dict)
    latency_hist: dict[str, int] = field(default_factory=dict)
    latency_sum_ms: float = 0.0
    labels: dict[str, int] = field(default_factory=dict)
    confidence_hist: dict[str, int] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    extra: dict[str, float] = field(default_factory=dict)

    def observe_many(self, *, ports: list[str], latencies: list[float], labels: list[str], confidences: list[float],
                     errors: int) -> None:
        """What one node made of one micro-batch: one Counter per histogram, not a dict update per item."""
        self.items_in += len(ports)
        self.errors += errors
        _count_into(self.ports, ports)
        buckets: dict[float, str] = {}  # items of a batch usually share one latency (the batch time / size)
        for ms in latencies:
            if ms not in buckets:
                buckets[ms] = str(latency_bucket(ms))
        _count_into(self.latency_hist, [buckets[ms] for ms in latencies])
        self.latency_sum_ms += sum(latencies)
        _count_into(self.labels, labels)
        _count_into(self.confidence_hist, [str(confidence_bucket(float(c))) for c in confidences])

    def add_extra(self, extra: Mapping[str, float] | None) -> None:
        for key, value in (extra or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                _add(self.extra, key, value)


def _count_into(target: dict[str, Any], keys: list[str]) -> None:
    for key, count in Counter(keys).items():
        target[key] = target.get(key, 0) + count


def merge_into(row: Any, delta: StatsDelta) -> None:
    """Add a delta to a NodeStats-like object (attributes named as in StatsDelta)."""
    row.items_in += delta.items_in
    row.errors += delta.errors
    row.retries += delta.retries
    row.latency_sum_ms += delta.latency_sum_ms
    row.cpu_seconds += delta.cpu_seconds
    row.batches += 1
    for name in ("ports", "latency_hist", "labels", "confidence_hist", "extra"):
        merged = dict(getattr(row, name) or {})
        for key, value in getattr(delta, name).items():
            _add(merged, key, value)
        setattr(row, name, merged)
