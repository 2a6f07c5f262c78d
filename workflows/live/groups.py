"""Names shared by the broadcaster, the consumers and the templates: channel-layer groups, DOM ids,
and which delivery mode this process uses.

Push: a cross-process channel layer (channels-redis) carries the worker's coalesced updates.
Poll: the in-memory layer lives in one process, and the worker is another one, so each consumer
watches its run's NodeStats rows instead.
"""

from __future__ import annotations

import re

from django.conf import settings

# Per node, at most one update per COALESCE_SECONDS (≤ 5 a second, whatever the item rate).
COALESCE_SECONDS = 0.2
# Poll mode: how often the web process's watcher of a run reads its NodeStats counters.
POLL_SECONDS = 0.25
# The broadcaster (push mode) looks at the rows of runs it announced this often: the final status,
# a cancel or a retry are written outside the batch commits.
STATUS_SECONDS = 0.5
# The canvas's socket looks for a newer run of its workflow this often.
SLOW_POLL_SECONDS = 1.0
# And every socket looks at its run row itself this often, in case nobody announced a change.
SAFETY_POLL_SECONDS = 5.0

# Close codes (the 4000 range is the application's). htmx-ext-ws reconnects only after 1006, 1011,
# 1012 and 1013, so none of these makes the browser retry.
CLOSE_ANONYMOUS = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_READ_ONLY = 4405
CLOSE_TOO_MANY = 4429

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def run_group(run_id: int) -> str:
    return f"live.run.{run_id}"


def workflow_group(workflow_id: int) -> str:
    return f"live.workflow.{workflow_id}"


def user_group(user_id: int) -> str:
    """Every socket of a user: told to check its right again when the user's roles change."""
    return f"live.user.{user_id}"


def session_group(session_key: str) -> str:
    """Every socket opened with one login session: closed when that session logs out."""
    return f"live.session.{_UNSAFE.sub('', session_key)}"


def dom_id(node: str) -> str:
    """A node id made safe for an HTML id; static/js/canvas.js (liveId) encodes the same way."""
    return _UNSAFE.sub(lambda m: f"_{ord(m.group()):x}_", node)


def push_mode() -> bool:
    """True when the channel layer reaches other processes (settings.LIVE_MODE may force it)."""
    mode = getattr(settings, "LIVE_MODE", "auto")
    if mode in {"push", "poll"}:
        return mode == "push"
    backend = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return bool(backend) and not backend.endswith("InMemoryChannelLayer")
