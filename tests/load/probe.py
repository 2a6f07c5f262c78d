"""Loaded into the load test's workers (ENGINE_HANDLER_MODULES=…,tests.load.probe): after every batch
commit, append `run_id time nodes` to $LOAD_PROBE_FILE (bench/live_probe.py's idea, with the nodes,
because two workers share the file and only commits that touch a node move its `batches` counter).

One short write with O_APPEND per line: lines from two processes never interleave."""

from __future__ import annotations

import os
import time

from workflows.engine import observers

_path = os.environ.get("LOAD_PROBE_FILE")


def _probe(run_id: int, nodes: list[str]) -> None:
    if _path:
        line = f"{run_id} {time.time():.6f} {','.join(nodes)}\n".encode()
        fd = os.open(_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


if _path and _probe not in observers.BATCH_LISTENERS:
    observers.BATCH_LISTENERS.append(_probe)
