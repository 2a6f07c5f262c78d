"""The execution state machine, pure: run statuses, how a run ends, and an item's walk through a plan.

No Django here. The executor (I/O) asks this module what may happen next; tests drive it alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.statuses import (
    CANCELLED,
    COMPLETED_WITH_ERRORS,
    DEAD,
    ERROR_PORT,
    FAILED,
    SUCCEEDED,
    WAITING,
)


def final_status(*, total: int, done: int, dead: int, parked: int, cancelled: bool = False) -> str:
    """The status a run takes once no shard is left: final, or WAITING while items are parked for
    people (a decision sends the run back to running; the last one lets it finish)."""
    if cancelled:
        return CANCELLED
    if parked:
        return WAITING
    if total and dead >= total:
        return FAILED
    if dead:
        return COMPLETED_WITH_ERRORS
    return SUCCEEDED


def should_retry(attempt: int, retries: int) -> bool:
    """attempt is 1-based: with retries=2 an item is tried three times in all."""
    return attempt <= retries


def backoff_seconds(attempt: int, base: float, cap: float = 30.0) -> float:
    return min(cap, base * (2 ** max(0, attempt - 1)))


def merge_fields(data: dict[str, Any], added: Mapping[str, Any]) -> None:
    """Add a node's output to an item: nested dicts (`fields`) merge, other values replace."""
    for key, value in added.items():
        current = data.get(key)
        if isinstance(current, dict) and isinstance(value, dict):
            data[key] = {**current, **value}
        else:
            data[key] = value


@dataclass
class ItemState:
    """One item on its way through the plan inside a shard."""

    item_id: int
    seq: int
    data: dict[str, Any]
    # Node ids the item has been routed to and not yet processed.
    inbox: set[str] = field(default_factory=set)
    parked: bool = False
    dead: bool = False

    def route(self, targets: Iterable[str]) -> None:
        self.inbox.update(targets)

    @property
    def final_status(self) -> str:
        if self.dead:
            return "dead"
        if self.parked:
            return "parked"
        return "done"


def resolve_port(*, port: str, error: str, routes: Mapping[str, tuple[str, ...]]) -> str:
    """Where an outcome goes: the error port when wired, else dead; a normal port stays as is."""
    if error:
        return ERROR_PORT if routes.get(ERROR_PORT) else DEAD
    return port
