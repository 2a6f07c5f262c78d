"""A micro-batch's commit in a thread of its own, while the shard's next batch is computed.

Committing a batch is mostly waiting: round trips to PostgreSQL and the flush of its WAL, with the
worker's cores idle. On short documents that was about 8 ms of every 200 (bench/line.py, tickets).
So the executor hands each batch's commit to this thread (its own database connection) and goes on
with the next batch; before handing over the next commit, and before the shard is marked done, it
waits for the one in flight, so commits stay in order and at most one batch is computed ahead.

Nothing the next batch computes depends on the previous commit (other items; what a retried shard
replays was read at its start). A failed commit is raised in the executor at that wait: Fenced (the
shard moved on) stops the shard having written nothing more; a dropped connection is closed here,
so the next commit opens a fresh one.

Only on PostgreSQL and outside any transaction of the caller's (a test's): SQLite has one writer,
and a commit from another connection could not see data of an enclosing transaction.
ENGINE_OVERLAP_COMMITS=0 turns it off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()


def _thread() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-commit")
        return _pool


def _run(commit: Callable[[], Any]) -> Any:
    try:
        return commit()
    except (OperationalError, InterfaceError):
        connection.close()  # this thread's connection: the next commit reconnects
        raise


def usable() -> bool:
    """Whether commits may overlap the next batch in this process, now."""
    return settings.ENGINE_OVERLAP_COMMITS and connection.vendor == "postgresql" and not connection.in_atomic_block


class Committer:
    """One shard's commits: each in the commit thread, one at a time, in order."""

    def __init__(self, overlap: bool):
        self.overlap = overlap
        self.pending: Future | None = None

    def submit(self, commit: Callable[[], Any]) -> None:
        """Commit (after the one in flight; raising what that one raised), without waiting for it."""
        self.wait()
        if self.overlap:
            self.pending = _thread().submit(_run, commit)
        else:
            commit()

    def wait(self) -> None:
        """Until the commit in flight is done; raises what it raised."""
        pending, self.pending = self.pending, None
        if pending is not None:
            pending.result()

    def abandon(self) -> None:
        """After an error elsewhere: let the commit in flight end, and drop what it raised."""
        try:
            self.wait()
        except Exception:  # the error being raised already says what went wrong
            pass


def release() -> None:
    """Close the commit thread's connection (tests do, before the test database is flushed)."""
    if _pool is not None:
        # A lambda: `connection` must be looked up in the commit thread (each thread has its own).
        _pool.submit(lambda: connection.close()).result()
