"""Originals: the uploaded files, content-addressed by sha256 in a folder of the artifact store.

A file is written beside its final name and renamed into place, so a crash never leaves a partial file
under a name that claims a hash; reading checks the hash again, so a file changed on disk is never
taken for the original.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")  # \Z: "$" would let a trailing newline through


class OriginalMissing(LookupError):
    pass


def path_of(root: Path, sha256: str) -> Path:
    if not isinstance(sha256, str) or not SHA256.match(sha256):
        raise OriginalMissing(f"'{str(sha256)[:80]}' is not a sha256")
    return root / sha256[:2] / sha256


def _write(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def keep(root: Path, data: bytes, facts: dict[str, Any]) -> str:
    """Store `data` (once: the same bytes are the same file) with `facts` about it beside (its content
    type and page count: properties of the bytes, so the same for every upload of them); its sha256."""
    sha = hashlib.sha256(data).hexdigest()
    target = path_of(root, sha)
    if not (target.is_file() and target.stat().st_size == len(data)):
        _write(target, data)
    side = target.with_suffix(".json")
    if not side.is_file():
        _write(side, json.dumps({**facts, "size": len(data)}, sort_keys=True).encode())
    return sha


def facts_of(root: Path, sha256: str) -> dict[str, Any] | None:
    """What keep() recorded about an original (content type, pages, size), or None if it is not kept."""
    try:
        facts = json.loads(path_of(root, sha256).with_suffix(".json").read_text())
    except (OriginalMissing, FileNotFoundError, ValueError):
        return None
    return facts if isinstance(facts, dict) else None


def fetch(root: Path, sha256: str) -> bytes:
    """The original's bytes, checked against their sha256 (OriginalMissing when absent or altered)."""
    path = path_of(root, sha256)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise OriginalMissing(f"the original {sha256[:12]}… is not in the store ({path.parent})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise OriginalMissing(f"the stored original {sha256[:12]}… no longer matches its sha256")
    return data
