"""Uploads kept between "Preview" and "Start the run", so a large file crosses the network once.

The preview stores the file under VAR_DIR/uploads with a random name and remembers that name in the
uploader's session, next to the scope it was previewed for (a workflow's id for run uploads, a page's
name for others): a token is worth nothing in another session or for another scope. Staged files
older than STAGED_MAX_AGE are removed whenever a new one is staged; a started run removes its own.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

from django.conf import settings

SESSION_KEY = "staged_uploads"
STAGED_MAX_AGE = 24 * 3600
MAX_PER_SESSION = 5


def _folder() -> Path:
    folder = Path(settings.VAR_DIR) / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _sweep(folder: Path) -> None:
    cutoff = time.time() - STAGED_MAX_AGE
    for path in folder.glob("*.upload"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except FileNotFoundError:
            pass


def stage(session: Any, scope: int | str, name: str, data: bytes) -> str:
    """Keep an upload for this session and scope; returns its token."""
    folder = _folder()
    _sweep(folder)
    token = secrets.token_urlsafe(18)
    (folder / f"{token}.upload").write_bytes(data)
    staged = dict(session.get(SESSION_KEY) or {})
    staged[token] = {"scope": scope, "name": name[:200], "size": len(data), "at": time.time()}
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
        return entry["name"], (_folder() / f"{token}.upload").read_bytes()
    except FileNotFoundError:
        return None


def describe(session: Any, scope: int | str, token: str) -> dict[str, Any] | None:
    entry = _entry(session, scope, token)
    if entry is None or not (_folder() / f"{token}.upload").exists():
        return None
    return {"token": token, "name": entry["name"], "size": entry["size"]}


def discard(session: Any, token: str, staged: dict[str, Any] | None = None) -> None:
    mine = staged if staged is not None else dict(session.get(SESSION_KEY) or {})
    if mine.pop(token, None) is not None:
        (_folder() / f"{token}.upload").unlink(missing_ok=True)
    if staged is None:
        session[SESSION_KEY] = mine
