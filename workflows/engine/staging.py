"""Uploads kept between "Preview" and "Start the run", so a large file crosses the network once.

The preview puts the file in the artifact store (models/blobs.py, in the database: the web process that
starts the run may not be the one that previewed it) held for STAGED_MAX_AGE, and remembers it under a
random token in the uploader's session, next to the scope it was previewed for (a workflow's id for run
uploads, a page's name for others): a token is worth nothing in another session or for another scope.
Staged files whose hold has passed are deleted whenever a new one is staged; a started run deletes its
own (unless the same bytes are an original a run names: the store keeps one copy for both).
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any

from workflows.models import blobs

SESSION_KEY = "staged_uploads"
STAGED_MAX_AGE = 24 * 3600
MAX_PER_SESSION = 5


def stage(session: Any, scope: int | str, name: str, data: bytes) -> str:
    """Keep an upload for this session and scope; returns its token."""
    blobs.sweep()
    sha = blobs.put_bytes(data, hold=timedelta(seconds=STAGED_MAX_AGE))
    token = secrets.token_urlsafe(18)
    blobs.hold(sha, token, timedelta(seconds=STAGED_MAX_AGE))  # this preview's own claim on the bytes
    staged = dict(session.get(SESSION_KEY) or {})
    staged[token] = {"scope": scope, "name": name[:200], "size": len(data), "at": time.time(), "sha256": sha}
    for old in sorted(staged, key=lambda t: staged[t]["at"])[:-MAX_PER_SESSION]:
        discard(session, old, staged)
    session[SESSION_KEY] = staged
    return token


def _entry(session: Any, scope: int | str, token: str) -> dict[str, Any] | None:
    """This session's record of a staged file, if it was staged for this scope."""
    entry = (session.get(SESSION_KEY) or {}).get(token)
    return entry if entry and entry.get("scope") == scope else None


def load(session: Any, scope: int | str, token: str) -> tuple[str, bytes] | None:
    """The staged (name, bytes) for this session and scope, or None (unknown, expired, elsewhere)."""
    entry = _entry(session, scope, token)
    if entry is None:
        return None
    try:
        return entry["name"], blobs.read_bytes(entry.get("sha256"))
    except LookupError:
        return None


def describe(session: Any, scope: int | str, token: str) -> dict[str, Any] | None:
    entry = _entry(session, scope, token)
    if entry is None or not blobs.exists(entry.get("sha256")):
        return None
    return {"token": token, "name": entry["name"], "size": entry["size"]}


def discard(session: Any, token: str, staged: dict[str, Any] | None = None) -> None:
    mine = staged if staged is not None else dict(session.get(SESSION_KEY) or {})
    entry = mine.pop(token, None)
    if entry is not None:
        # Only this token's claim ends: another preview of the same bytes (here or in another session) keeps them.
        blobs.unhold(entry.get("sha256"), holder=token)
        blobs.release([entry.get("sha256")])
    if staged is None:
        session[SESSION_KEY] = mine
