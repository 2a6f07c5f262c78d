"""The artifact store: files every machine reaches, content-addressed in the database, local disk as a cache.

What users create — imported models, trained heads, int8 copies, documents' originals, previewed
uploads — is written here by whoever makes it (the web host or any worker) and read back on any machine
through `ensure_local`, which keeps a copy under ARTIFACTS_DIR/store/ and checks it against its sha256
(a missing or altered copy is fetched again). A model trained on one worker therefore runs on another
that has never seen its disk.

    sha = put_file(path, permanent=True)        # a model version's file (never deleted)
    sha = put_bytes(data, hold=timedelta(...))  # an original or a staged upload (deletable once released)
    path = ensure_local(sha, ".onnx")           # a verified local copy
    release(shas)                               # delete those no one needs any more

Why chunks: a row per CHUNK_BYTES slice, written and read one at a time, so a 100 MB model never sits
whole in Python memory on its way in or out (PostgreSQL bytea and SQLite blobs both take them). A
StoredBlob row is written in the transaction that writes its chunks, so a row means a whole file.

What is not here: packaged models (setup_models builds them from PyPI packages on each machine, ~600
MB of files that every machine makes the same), whose versions carry no "store" marker and are read
from ARTIFACTS_DIR; a missing one is an ArtifactMissing saying to run setup_models on that machine.

Deleting: model files are `permanent` (versions are immutable). Originals and staged uploads carry a
`held_until` (an upload in flight, a preview not yet started) and are deleted by `release` only once
the hold has passed and no Original row names them; the check and the delete are one transaction
holding the row, so a concurrent writer of the same bytes either renews the hold first or writes the
file again after.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from workflows.runtimes.sessions import ArtifactError

from .originals import Original

CHUNK_BYTES = 4 * 1024 * 1024
SHA256 = re.compile(r"\A[0-9a-f]{64}\Z")
SUFFIX = re.compile(r"\A(\.[A-Za-z0-9_-]{1,16}){0,2}\Z")  # ".onnx", ".tar.gz": never a path


class BlobMissing(ArtifactError, LookupError):
    """The store has no such file, or what it holds no longer matches its sha256."""


class ArtifactMissing(ArtifactError):
    """A packaged model's file is not on this machine: setup_models builds them on each machine."""


class StoredBlob(models.Model):
    sha256 = models.CharField(max_length=64, primary_key=True)
    size = models.BigIntegerField()
    chunks = models.PositiveIntegerField()
    # What the writer knew about the bytes (an original's content type and page count): properties
    # of the bytes, so the same whoever stores them.
    facts = models.JSONField(default=dict, blank=True)
    permanent = models.BooleanField(default=False)
    held_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["held_until"], name="blob_held_until")]

    def __str__(self) -> str:
        return f"{self.sha256[:12]}… ({self.size} bytes)"


class BlobChunk(models.Model):
    blob = models.ForeignKey(StoredBlob, on_delete=models.CASCADE, related_name="+")
    index = models.PositiveIntegerField()
    data = models.BinaryField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blob", "index"], name="unique_blob_chunk")]

    def __str__(self) -> str:
        return f"{self.blob_id[:12]}…#{self.index}"


class BlobHold(models.Model):
    """One holder's claim on a stored file: a preview waiting for its run, under its staging token.
    Identical bytes previewed in two sessions are one file with two claims; ending one claim must not
    delete the file the other still shows (`unhold`)."""

    blob = models.ForeignKey(StoredBlob, on_delete=models.CASCADE, related_name="holds")
    holder = models.CharField(max_length=64)
    until = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["blob", "holder"], name="unique_blob_holder")]

    def __str__(self) -> str:
        return f"{self.blob_id[:12]}… held by {self.holder[:8]}…"


def check_sha(sha256: Any) -> str:
    if not isinstance(sha256, str) or not SHA256.match(sha256):
        raise BlobMissing(f"'{str(sha256)[:80]}' is not a sha256")
    return sha256


# --- writing ----------------------------------------------------------------------------------------


def _renew(sha: str, *, permanent: bool, hold: timedelta | None) -> bool:
    """Mark an existing blob as wanted (permanent, or held at least `hold` from now); False if absent."""
    rows = StoredBlob.objects.filter(pk=sha)
    if permanent:
        return rows.update(permanent=True) > 0
    if hold is not None:
        until = timezone.now() + hold
        rows.filter(models.Q(held_until__isnull=True) | models.Q(held_until__lt=until)).update(held_until=until)
    return rows.exists()


def _write(sha: str, size: int, chunks: Iterable[bytes | memoryview], *, facts: dict[str, Any] | None,
           permanent: bool, hold: timedelta | None) -> None:
    held = timezone.now() + hold if hold is not None and not permanent else None
    try:
        with transaction.atomic():
            blob = StoredBlob.objects.create(sha256=sha, size=size, chunks=0, facts=facts or {}, permanent=permanent,
                                             held_until=held)
            count = 0
            for count, chunk in enumerate(chunks, start=1):
                BlobChunk.objects.create(blob=blob, index=count - 1, data=bytes(chunk))
            StoredBlob.objects.filter(pk=sha).update(chunks=count)
    except IntegrityError:
        # Another writer stored the same bytes meanwhile (the primary key waited for its commit).
        if not _renew(sha, permanent=permanent, hold=hold):
            raise


def put_bytes(data: bytes, *, facts: dict[str, Any] | None = None, permanent: bool = False,
              hold: timedelta | None = None) -> str:
    """Store `data` once (the same bytes are the same blob); its sha256."""
    sha = hashlib.sha256(data).hexdigest()
    if not _renew(sha, permanent=permanent, hold=hold):
        view = memoryview(data)
        _write(sha, len(data), (view[i:i + CHUNK_BYTES] for i in range(0, len(data), CHUNK_BYTES)),
               facts=facts, permanent=permanent, hold=hold)
    return sha


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk


def put_file(path: str | os.PathLike[str], *, facts: dict[str, Any] | None = None, permanent: bool = False,
             hold: timedelta | None = None) -> str:
    """Store the file at `path`, read a chunk at a time (hashed first, then written); its sha256."""
    source = Path(path)
    digest, size = hashlib.sha256(), 0
    for chunk in _file_chunks(source):
        digest.update(chunk)
        size += len(chunk)
    sha = digest.hexdigest()
    if not _renew(sha, permanent=permanent, hold=hold):
        _write(sha, size, _file_chunks(source), facts=facts, permanent=permanent, hold=hold)
        written = StoredBlob.objects.filter(pk=sha).values_list("size", flat=True).first()
        if written != size:  # the file changed between hashing and copying
            raise BlobMissing(f"{source} changed while it was stored; store it again")
    return sha


# --- reading ----------------------------------------------------------------------------------------


def exists(sha256: str) -> bool:
    return isinstance(sha256, str) and bool(SHA256.match(sha256)) and StoredBlob.objects.filter(pk=sha256).exists()


def facts_of(sha256: Any) -> dict[str, Any] | None:
    """What the writer recorded about a stored file (with its size), or None when it is not stored."""
    if not isinstance(sha256, str) or not SHA256.match(sha256):
        return None
    row = StoredBlob.objects.filter(pk=sha256).values("facts", "size").first()
    return {**(row["facts"] or {}), "size": row["size"]} if row else None


def chunks_of(sha256: str) -> Iterator[memoryview | bytes]:
    """The stored bytes, one chunk (one query) at a time; BlobMissing if not stored."""
    sha = check_sha(sha256)
    count = StoredBlob.objects.filter(pk=sha).values_list("chunks", flat=True).first()
    if count is None:
        raise BlobMissing(f"the file {sha[:12]}… is not in the artifact store")
    for index in range(count):
        data = BlobChunk.objects.filter(blob_id=sha, index=index).values_list("data", flat=True).first()
        if data is None:
            raise BlobMissing(f"the stored file {sha[:12]}… lacks its part {index + 1} of {count}")
        yield data


def read_bytes(sha256: str) -> bytes:
    """A stored file whole (for files already capped in size: originals, uploads), checked against its sha256."""
    data = b"".join(bytes(chunk) for chunk in chunks_of(sha256))
    if hashlib.sha256(data).hexdigest() != sha256:
        raise BlobMissing(f"the stored file {sha256[:12]}… no longer matches its sha256")
    return data


def cache_root() -> Path:
    return Path(settings.ARTIFACTS_DIR) / "store"


# Local copies this process has hashed, by (size, mtime, inode): a copy is read in full once per
# process, not at every load (a 100 MB model takes a quarter of a second to hash).
_VERIFIED: dict[Path, tuple[int, int, int]] = {}
_LOCK = threading.Lock()


def _stamp(path: Path) -> tuple[int, int, int]:
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    for chunk in _file_chunks(path):
        digest.update(chunk)
    return digest.hexdigest()


# A local copy used within this many seconds is not evicted: a process may be about to open the path
# ensure_local gave it. Copies in use are touched (their mtime moved) at most this often.
RECENT_SECONDS = 600


def _touch(target: Path, stamp: tuple[int, int, int]) -> tuple[int, int, int]:
    """Mark a copy as used now (its mtime), at most every RECENT_SECONDS / 2; the stamp it then has."""
    if time.time() - stamp[1] / 1e9 < RECENT_SECONDS / 2:
        return stamp
    with contextlib.suppress(OSError):
        os.utime(target)
        return _stamp(target)
    return stamp


def trim_cache(keep: Path | None = None) -> int:
    """Delete local copies, least recently used first, until they take no more than ARTIFACT_CACHE_MB
    (0: no cap); copies used in the last RECENT_SECONDS stay. The store keeps every file: a copy that
    goes is fetched again when next needed. The number deleted."""
    cap = settings.ARTIFACT_CACHE_MB * 1_000_000
    root = cache_root()
    if cap <= 0 or not root.is_dir():
        return 0
    copies = []
    for path in root.glob("*/*"):
        if path.name.startswith(".") or path == keep:
            continue
        with contextlib.suppress(OSError):
            stat = path.stat()
            copies.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in copies) + (keep.stat().st_size if keep is not None and keep.exists() else 0)
    removed = 0
    recent = time.time() - RECENT_SECONDS
    for mtime, size, path in sorted(copies, key=lambda c: c[0]):
        if total <= cap or mtime > recent:
            break
        with contextlib.suppress(OSError):
            path.unlink()
            total -= size
            removed += 1
            with _LOCK:
                _VERIFIED.pop(path, None)
    return removed


def ensure_local(sha256: str, suffix: str = "") -> Path:
    """A local copy of a stored file, checked against its sha256: a missing or altered copy is fetched
    again from the store. BlobMissing when the store does not have it."""
    sha = check_sha(sha256)
    if not SUFFIX.match(suffix or ""):
        raise BlobMissing(f"'{suffix[:40]}' is not a file suffix")
    target = cache_root() / sha[:2] / f"{sha}{suffix}"
    try:
        stamp = _stamp(target)
        with _LOCK:
            verified = _VERIFIED.get(target) == stamp
        if verified or _hash_file(target) == sha:
            stamp = _touch(target, stamp)
            with _LOCK:
                _VERIFIED[target] = stamp
            return target
    except FileNotFoundError:
        pass
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed into place: another process reading the same file meanwhile
    # sees the old copy or the whole new one, never a partial one.
    handle, tmp = tempfile.mkstemp(prefix=f".{sha}.", dir=target.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(handle, "wb") as out:
            for chunk in chunks_of(sha):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha:
            raise BlobMissing(f"the stored file {sha[:12]}… no longer matches its sha256")
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    with _LOCK:
        _VERIFIED[target] = _stamp(target)
    trim_cache(keep=target)
    return target


# --- deleting ---------------------------------------------------------------------------------------


def delete(sha256: str) -> bool:
    """Delete a stored file and this machine's copies of it, whoever needs it (callers check: `release`)."""
    sha = check_sha(sha256)
    gone = StoredBlob.objects.filter(pk=sha).delete()[0] > 0
    for copy in (cache_root() / sha[:2]).glob(f"{sha}*"):
        copy.unlink(missing_ok=True)
        with _LOCK:
            _VERIFIED.pop(copy, None)
    return gone


def release(shas: Iterable[str], *, holds: bool = True) -> int:
    """Delete those of `shas` that nothing needs: not permanent, no hold still running (unless `holds` is
    False: an erasure or a purge deletes what its runs held, however recent), no Original row naming
    them. The number deleted."""
    removed = 0
    for sha in sorted({s for s in shas if isinstance(s, str) and SHA256.match(s)}):
        with transaction.atomic():
            blob = StoredBlob.objects.select_for_update().filter(pk=sha).first()
            held = holds and blob is not None and blob.held_until and blob.held_until > timezone.now()
            if blob is None or blob.permanent or held:
                continue
            if Original.objects.filter(sha256=sha).exists():
                continue
            removed += delete(sha)
    return removed


def hold(sha256: str, holder: str, duration: timedelta) -> None:
    """`holder`'s claim on a stored file for `duration` (the file's own hold lasts at least as long)."""
    until = timezone.now() + duration
    with transaction.atomic():
        BlobHold.objects.update_or_create(blob_id=check_sha(sha256), holder=holder[:64], defaults={"until": until})
        StoredBlob.objects.filter(pk=sha256).filter(models.Q(held_until__isnull=True) | models.Q(
            held_until__lt=until)).update(held_until=until)


def unhold(sha256: str, holder: str | None = None) -> None:
    """End a hold now (a staged upload its run took, or its owner discarded): `holder`'s claim, and the
    file's own hold unless another holder's claim still runs; `release` may then delete it."""
    if not (isinstance(sha256, str) and SHA256.match(sha256)):
        return
    now = timezone.now()
    with transaction.atomic():
        if holder is not None:
            BlobHold.objects.filter(blob_id=sha256, holder=holder[:64]).delete()
        if BlobHold.objects.filter(blob_id=sha256, until__gt=now).exists():
            return
        StoredBlob.objects.filter(pk=sha256, held_until__isnull=False).update(held_until=now)


def sweep(limit: int = 500) -> int:
    """Delete files whose hold has passed and that nothing else needs (abandoned previews, uploads never
    run); the number deleted."""
    expired = StoredBlob.objects.filter(permanent=False, held_until__lt=timezone.now()).order_by("held_until")
    return release(expired.values_list("sha256", flat=True)[:limit])
