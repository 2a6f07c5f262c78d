"""Throughput over the last few seconds, and whether errors or backlog grow, from NodeStats samples.

NodeStats rows are cumulative; a sample is (batches, updated_at, items_in, errors, backlog) as read
from the database. Samples are keyed by the row's `batches` counter, so two processes (or two
consumers) observing the same row agree, and an observer that sees a row twice adds nothing. Pure
apart from the per-process cache, which forgets runs not seen for a while.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

WINDOW_SECONDS = 5.0
MAX_RUNS = 200


@dataclass(frozen=True)
class Sample:
    batches: int
    t: float  # updated_at, epoch seconds
    items_in: int
    errors: int
    backlog: int


@dataclass(frozen=True)
class Trend:
    rate: float  # items/s over the window (or the average since the run started)
    errors_growing: bool
    backlog_growing: bool
    windowed: bool


class Windows:
    def __init__(self, window: float = WINDOW_SECONDS, max_runs: int = MAX_RUNS):
        self.window = window
        self.max_runs = max_runs
        self.lock = threading.Lock()
        self.runs: OrderedDict[int, dict[str, deque[Sample]]] = OrderedDict()

    def observe(self, run_id: int, node: str, sample: Sample, started_at: float | None) -> Trend:
        with self.lock:
            nodes = self.runs.pop(run_id, None) or {}
            self.runs[run_id] = nodes  # most recently used last
            while len(self.runs) > self.max_runs:
                self.runs.popitem(last=False)
            samples = nodes.setdefault(node, deque(maxlen=256))
            if not samples or sample.batches > samples[-1].batches:
                samples.append(sample)
            while len(samples) > 2 and samples[1].t <= sample.t - self.window:
                samples.popleft()  # keep one sample at or before the window's start
            return trend(list(samples), sample, started_at, self.window)

    def forget(self, run_id: int) -> None:
        with self.lock:
            self.runs.pop(run_id, None)


def trend(samples: list[Sample], now: Sample, started_at: float | None, window: float) -> Trend:
    first = samples[0] if samples else now
    span = now.t - first.t
    if len(samples) >= 2 and span > 0.05 and now.t - first.t <= window * 2:
        return Trend(rate=max(0.0, (now.items_in - first.items_in) / span), errors_growing=now.errors > first.errors,
                     backlog_growing=now.backlog > first.backlog and now.backlog > 0, windowed=True)
    # No history in this process yet: the average since the run started.
    elapsed = (now.t - started_at) if started_at is not None else 0.0
    return Trend(rate=now.items_in / elapsed if elapsed > 0.05 else 0.0, errors_growing=False,
                 backlog_growing=False, windowed=False)


WINDOWS = Windows()
