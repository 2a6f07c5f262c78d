"""The executor's one outward hook: after each micro-batch commit, the listeners hear which nodes'
stats changed. The live sockets attach their coalesced broadcast here (live/broadcast.py), so the
read side depends on this small module and never on the executor itself."""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

BATCH_LISTENERS: list[Callable[[int, list[str]], None]] = []


def after_batch_commit(run_id: int, nodes: list[str]) -> None:
    """Called (transaction.on_commit) after each micro-batch commit with the nodes whose NodeStats
    changed. A listener that raises is logged and skipped: a broadcast must never fail a committed batch."""
    for listener in BATCH_LISTENERS:
        try:
            listener(run_id, nodes)
        except Exception:
            logger.exception("batch listener failed for run %s", run_id)
