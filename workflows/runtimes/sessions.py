"""Per-process cache of ONNX Runtime sessions and tokenizers, keyed by artifact sha256.

A worker loads each model once and reuses it for every micro-batch; the key is the content hash,
so two aliases pointing at the same artifact share one session, and a file swapped on disk under
the same name is refused instead of silently served. onnxruntime and tokenizers are imported
lazily: importing this module costs nothing, so the web process can import the runtimes package
(for config checks) without ever creating a session.

What a model costs in memory is noted when it loads (the process's resident size before and after,
at least the file's size), and `tracking()` tells a caller which sessions and tokenizers a runtime
it builds uses: the loader keeps runtimes least-recently-used under a memory cap and `release`s
what none of the runtimes it keeps needs any more.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

# Two cores shared by a web process and a worker: two intra-op threads keep one batch fast, and
# one inter-op thread avoids oversubscription (BERT-style graphs have no parallel branches).
THREADS_ENV = "CF_ORT_THREADS"
# A worker alternates between sessions (embedder, extractor, head) within one micro-batch, each
# with its own thread pool. Idle pools spinning for work would steal the two cores from the pool
# that has work, so spinning is off unless CF_ORT_SPIN=1 (useful when one model runs alone).
SPIN_ENV = "CF_ORT_SPIN"
# ONNX Runtime cuts each operator's work into one share per thread, and the op ends when the last
# share does: when something else takes one of the two cores for a moment (the worker's live-update
# thread, PostgreSQL, the web process) the other thread waits. A dynamic block base (e.g. 4) cuts the
# work into shrinking blocks that a running thread can take over. Off by default: on this shared
# 2-core machine it measured 1.01-1.08x at 256 tokens and 0.95-0.96x at 128 (interleaved per batch),
# no clear win; CF_ORT_DYNAMIC_BLOCK_BASE=4 turns it on to measure it elsewhere (bench/line.py).
DYNAMIC_BLOCK_ENV = "CF_ORT_DYNAMIC_BLOCK_BASE"
DYNAMIC_BLOCK_BASE = 0

_sessions: dict[tuple[str, int], Any] = {}
_tokenizers: dict[str, Any] = {}
_verified: dict[tuple[str, float, int], str] = {}
_sizes: dict[Any, int] = {}  # session key or tokenizer sha256 → bytes it was estimated to cost
_lock = threading.Lock()
_tracking = threading.local()


class ArtifactError(Exception):
    """A model artifact is missing, corrupt, or not the one the registry recorded."""


def default_threads() -> int:
    value = os.environ.get(THREADS_ENV, "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, min(2, os.cpu_count() or 1))


def dynamic_block_base() -> int:
    value = os.environ.get(DYNAMIC_BLOCK_ENV, "")
    return int(value) if value.isdigit() else DYNAMIC_BLOCK_BASE


def file_sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: str | os.PathLike[str], sha256: str) -> Path:
    """Check that the file exists and hashes to `sha256`; raise ArtifactError otherwise.

    The result is remembered per (path, mtime, size) so a hot worker does not rehash 90 MB per
    batch, while a file rewritten in place is hashed again.
    """
    file = Path(path)
    try:
        stat = file.stat()
    except OSError as exc:
        raise ArtifactError(f"artifact {file} is missing: {exc.strerror}") from exc
    key = (str(file), stat.st_mtime, stat.st_size)
    actual = _verified.get(key)
    if actual is None:
        actual = file_sha256(file)
        _verified[key] = actual
    if actual != sha256:
        raise ArtifactError(
            f"artifact {file} has sha256 {actual[:12]}…, the registry expects {sha256[:12]}…; "
            "it was modified or replaced — re-run the model set-up or restore the file"
        )
    return file


def get_session(path: str | os.PathLike[str], sha256: str, *, threads: int | None = None) -> Any:
    """Return the cached InferenceSession for this artifact, creating it on first use."""
    threads = threads or default_threads()
    key = (sha256, threads)
    _note_use(key)
    session = _sessions.get(key)
    if session is not None:
        return session
    with _lock:
        session = _sessions.get(key)
        if session is not None:
            return session
        file = verify(path, sha256)
        before = resident_bytes()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        spin = "1" if os.environ.get(SPIN_ENV, "0") == "1" else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        if dynamic_block_base():
            options.add_session_config_entry("session.dynamic_block_base", str(dynamic_block_base()))
        try:
            session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ArtifactError(f"artifact {file} is not a loadable ONNX model: {exc}") from exc
        _sessions[key] = session
        _sizes[key] = max(file.stat().st_size, resident_bytes() - before)
        return session


def get_tokenizer(path: str | os.PathLike[str], sha256: str) -> Any:
    """Return the cached `tokenizers.Tokenizer` for this tokenizer.json (verified by sha256)."""
    _note_use(sha256)
    tokenizer = _tokenizers.get(sha256)
    if tokenizer is not None:
        return tokenizer
    with _lock:
        tokenizer = _tokenizers.get(sha256)
        if tokenizer is not None:
            return tokenizer
        file = verify(path, sha256)
        before = resident_bytes()
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(file))
        except Exception as exc:
            raise ArtifactError(f"tokenizer {file} cannot be loaded: {exc}") from exc
        _tokenizers[sha256] = tokenizer
        _sizes[sha256] = max(file.stat().st_size, resident_bytes() - before)
        return tokenizer


@contextlib.contextmanager
def tracking() -> Iterator[set[Any]]:
    """`with tracking() as used:` collects the keys of every session and tokenizer asked for in
    this thread meanwhile (cached or new): what a runtime built inside the block keeps alive."""
    outer = getattr(_tracking, "used", None)
    used: set[Any] = set()
    _tracking.used = used
    try:
        yield used
    finally:
        _tracking.used = outer
        if outer is not None:
            outer.update(used)


def _note_use(key: Any) -> None:
    used = getattr(_tracking, "used", None)
    if used is not None:
        used.add(key)


def size_of(keys: Iterable[Any]) -> int:
    """Bytes the sessions and tokenizers named by `keys` were estimated to cost when they loaded."""
    return sum(_sizes.get(key, 0) for key in set(keys))


def loaded() -> list[Any]:
    """Keys of the sessions and tokenizers held now."""
    with _lock:
        return [*_sessions, *_tokenizers]


def release(keys: Iterable[Any]) -> None:
    """Forget these sessions and tokenizers, and hand the freed memory back to the system. Whoever
    still holds one (a shard running with it) keeps it until done; the next `get_*` loads it anew."""
    with _lock:
        for key in keys:
            if isinstance(key, tuple):
                _sessions.pop(key, None)
            else:
                _tokenizers.pop(key, None)
            _sizes.pop(key, None)
    trim()


def resident_bytes() -> int:
    """This process's resident set size (Linux; 0 elsewhere, and the file size is the estimate)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def trim() -> None:
    """glibc keeps freed memory for reuse: a released model's hundreds of MB would stay resident."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def clear() -> None:
    """Forget every cached session (tests, and a worker told to reload its models)."""
    with _lock:
        _sessions.clear()
        _tokenizers.clear()
        _verified.clear()
        _sizes.clear()
