"""Django Tasks entry points. Arguments are ids only: the database holds the state."""

from __future__ import annotations

from typing import Any

from django_tasks import task


@task(queue_name="runs")
def run_shard_task(shard_id: int, attempt: int) -> dict[str, Any]:
    # deferred: the executor imports launch, which enqueues this task (a cycle at module level)
    from .executor import run_shard

    return run_shard(shard_id, attempt)
