"""The execution state machine, pure: run statuses, how a run ends, and an item's walk through a plan.

No Django here. The executor (I/O) asks this module what may happen next; tests drive it alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from workflows.statuses import (
    CANCELLED,
    COMPLETED_WITH_ERRORS,
    DEAD,
    ERROR_PORT,
    FAILED,
    PARKED,
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


def apply_decision(data: dict[str, Any], port: str, output: Any, answer: Any = None) -> None:
    """What one recorded decision adds to an item, as the executor's replay adds it: the node's output;
    for an item parked there, the reviewer's answer once decided (nothing before); nothing when dead.
    The read side (results, trace, node samples, the review queue) rebuilds items with this."""
    if port == PARKED:
        if isinstance(answer, Mapping):
            merge_fields(data, answer)
    elif port != DEAD and isinstance(output, Mapping):
        merge_fields(data, output)


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


# --- spot checks: which items a model node's decisions are sampled at --------------------------------
#
# The sample must be the same on every attempt of a shard (a retry draws the same items, and the
# unique (run, item, node) of review tasks makes a repeat a no-op) and cost next to nothing on the
# executor's hot path: one 64-bit key per (run, node), then a few integer operations per item
# (splitmix64's finaliser: every bit of the item id moves every bit of the result, so consecutive
# ids are not sampled in a pattern). Python's hash() would not do: string hashing differs between
# worker processes.

_MASK = (1 << 64) - 1
_SCALE = 1 << 64


def spot_key(run_id: int, node: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{run_id}:{node}".encode(), digest_size=8).digest(), "big")


def spot_threshold(percent: Any) -> int:
    """The share of items to sample, as a bound on the 64-bit hash; 0 for a setting that is not a number."""
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not percent > 0:
        return 0
    return _SCALE if percent >= 100 else int(percent / 100 * _SCALE)


def spot_sampled(key: int, item_id: int, threshold: int) -> bool:
    x = (item_id ^ key) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return (x ^ (x >> 31)) < threshold
