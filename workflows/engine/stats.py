"""NodeStats arithmetic, pure: log-bucket latency histograms, confidence deciles, merging deltas.

Latency bucket k holds latencies in (0.1·2^(k-1), 0.1·2^k] ms: 0.1 ms … ~1.7 min in 20 buckets, so
p50/p95 read off the histogram are within a factor √2 of the truth, and two histograms merge by
adding counts (which is what lets two workers update one row).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BASE_MS = 0.1
MAX_BUCKET = 20


def latency_bucket(ms: float) -> int:
    if ms <= BASE_MS:
        return 0
    return min(MAX_BUCKET, math.ceil(math.log2(ms / BASE_MS)))


def bucket_upper_ms(bucket: int) -> float:
    return BASE_MS * (2**bucket)


def confidence_bucket(confidence: float) -> int:
    return min(9, max(0, int(confidence * 10)))


def quantile(hist: Mapping[str, int], q: float) -> float | None:
    """The upper edge of the bucket holding the q-quantile, or None for an empty histogram."""
    total = sum(hist.values())
    if not total:
        return None
    need = q * total
    seen = 0
    for bucket in sorted(hist, key=int):
        seen += hist[bucket]
        if seen >= need:
            return bucket_upper_ms(int(bucket))
    return bucket_upper_ms(max(int(b) for b in hist))


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
