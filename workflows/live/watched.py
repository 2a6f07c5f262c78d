"""Push mode: which workflows have a socket open on them right now (a run page or the canvas).

The worker's broadcaster renders a run's fragments for every page kind and language before it sends
them; five times a second that took CPU and the GIL from the model calls in the same process, for
sockets that often do not exist (a batch run at night, an API client polling). So each socket marks
its workflow in the channel layer's Redis for MARK_SECONDS and renews the mark every time it polls
(at least every SAFETY_POLL_SECONDS), and the broadcaster renders a run only while its workflow is
marked. A socket that connects gets its snapshot at once and the updates from the next flush on.

Without a shared layer (in-memory, one process) there is nowhere to mark a watch: every workflow
counts as watched. A Redis error counts as watched too: a lost update costs more than a render.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings

from .groups import SAFETY_POLL_SECONDS

logger = logging.getLogger(__name__)

# A mark outlives two missed renewals, so a socket that polls a little late is not dropped.
MARK_SECONDS = 3 * SAFETY_POLL_SECONDS

_clients: dict[str, Any] = {}
_lock = threading.Lock()


def _layer() -> tuple[str, str] | None:
    """(Redis URL, key prefix) of a channels-redis layer, or None for any other layer."""
    layer = settings.CHANNEL_LAYERS.get("default", {})
    if "redis" not in layer.get("BACKEND", "").lower():
        return None
    config = layer.get("CONFIG") or {}
    hosts = config.get("hosts") or []
    if not hosts or not isinstance(hosts[0], str):
        return None
    return hosts[0], config.get("prefix", "asgi")


def _client(url: str) -> Any:
    with _lock:
        if url not in _clients:
            import redis

            _clients[url] = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        return _clients[url]


def _key(prefix: str, workflow_id: int) -> str:
    return f"{prefix}:watched:workflow:{workflow_id}"


def mark(workflow_id: int | None, seconds: float = MARK_SECONDS) -> None:
    """A socket on this workflow is open (called at connect and at each of its polls)."""
    layer = _layer()
    if layer is None or workflow_id is None:
        return
    try:
        _client(layer[0]).set(_key(layer[1], workflow_id), 1, px=int(seconds * 1000))
    except Exception:
        logger.warning("could not mark workflow %s as watched", workflow_id, exc_info=True)


def forget(workflow_id: int) -> None:
    layer = _layer()
    if layer is not None:
        _client(layer[0]).delete(_key(layer[1], workflow_id))


def anyone(workflow_id: int) -> bool:
    """Whether a socket may be showing this workflow (True when that cannot be known)."""
    layer = _layer()
    if layer is None:
        return True
    try:
        return bool(_client(layer[0]).exists(_key(layer[1], workflow_id)))
    except Exception:
        logger.warning("could not read the watch mark of workflow %s", workflow_id, exc_info=True)
        return True
