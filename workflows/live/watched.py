"""Push mode: which workflows have a socket open on them right now (a run page or the canvas).

The worker's broadcaster renders a run's fragments for every page kind and language before it sends
them; five times a second that took CPU and the GIL from the model calls in the same process, for
sockets that often do not exist (a batch run at night, an API client polling). So each socket marks
its workflow, page kind and language in the channel layer's Redis for MARK_SECONDS and renews the
mark every time it polls (at least every SAFETY_POLL_SECONDS), and the broadcaster renders a run only
in the kinds and languages marked for its workflow, and not at all when none is. A socket that
connects gets its snapshot at once and the updates from the next flush on.

Without a shared layer (in-memory, one process) there is nowhere to mark a watch: every workflow
counts as watched. A Redis error counts as watched too: a lost update costs more than a render.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings

from .groups import SAFETY_POLL_SECONDS
from .snapshot import KINDS

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


def _key(prefix: str, workflow_id: int, kind: str, language: str) -> str:
    return f"{prefix}:watched:workflow:{workflow_id}:{kind}:{language}"


def _views() -> list[tuple[str, str]]:
    """Every (page kind, language) a socket can show: what the broadcaster may have to render."""
    return [(kind, code) for kind in KINDS for code, _ in settings.LANGUAGES]


def mark(workflow_id: int | None, kind: str, language: str, seconds: float = MARK_SECONDS) -> None:
    """A socket showing this workflow's `kind` of page in `language` is open (called at connect and
    at each of its polls)."""
    layer = _layer()
    if layer is None or workflow_id is None:
        return
    try:
        _client(layer[0]).set(_key(layer[1], workflow_id, kind, language), 1, px=int(seconds * 1000))
    except Exception:
        logger.warning("could not mark workflow %s as watched", workflow_id, exc_info=True)


def forget(workflow_id: int) -> None:
    layer = _layer()
    if layer is not None:
        _client(layer[0]).delete(*[_key(layer[1], workflow_id, kind, code) for kind, code in _views()])


def audience(workflow_id: int) -> set[tuple[str, str]] | None:
    """The (page kind, language) pairs some socket shows for this workflow now; None when that cannot
    be known (no shared layer, a Redis error): then everything must be rendered."""
    layer = _layer()
    if layer is None:
        return None
    views = _views()
    try:
        found = _client(layer[0]).mget([_key(layer[1], workflow_id, kind, code) for kind, code in views])
    except Exception:
        logger.warning("could not read the watch marks of workflow %s", workflow_id, exc_info=True)
        return None
    return {view for view, value in zip(views, found, strict=True) if value is not None}


def anyone(workflow_id: int) -> bool:
    """Whether a socket may be showing this workflow."""
    shown = audience(workflow_id)
    return shown is None or bool(shown)
