"""Loaded into the bench's worker (ENGINE_HANDLER_MODULES=…,bench.live_probe): after every batch
commit, append `run_id time` to $LIVE_PROBE_FILE, so that bench/live.py knows when the k-th commit
of a run happened (one worker: NodeStats.batches of every node of the batch is then k)."""

from __future__ import annotations

import os
import time

from workflows.engine import observers

_path = os.environ.get("LIVE_PROBE_FILE")


def _probe(run_id: int, nodes: list[str]) -> None:
    if _path:
        with open(_path, "a") as f:
            f.write(f"{run_id} {time.time():.6f}\n")


if _path and _probe not in observers.BATCH_LISTENERS:
    observers.BATCH_LISTENERS.append(_probe)
