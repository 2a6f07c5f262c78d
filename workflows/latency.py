"""Latency histograms as NodeStats stores them, pure: bucket k holds latencies in
(0.1·2^(k-1), 0.1·2^k] ms, 0.1 ms … ~1.7 min in 20 buckets, so p50/p95 read off the histogram are
within a factor √2 of the truth, and two histograms merge by adding counts (which is what lets two
workers update one row). The engine fills them (engine/stats.py); the model reads them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

BASE_MS = 0.1
MAX_BUCKET = 20


def latency_bucket(ms: float) -> int:
    if ms <= BASE_MS:
        return 0
    return min(MAX_BUCKET, math.ceil(math.log2(ms / BASE_MS)))


def bucket_upper_ms(bucket: int) -> float:
    return BASE_MS * (2**bucket)


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
