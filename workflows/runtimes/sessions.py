"""Per-process cache of ONNX Runtime sessions and tokenizers, keyed by artifact sha256.

A worker loads each model once and reuses it for every micro-batch; the key is the content hash,
so two aliases pointing at the same artifact share one session, and a file swapped on disk under
the same name is refused instead of silently served. onnxruntime and tokenizers are imported
lazily: importing this module costs nothing, so the web process can import the runtimes package
(for config checks) without ever creating a session.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Any

# Two cores shared by a web process and a worker: two intra-op threads keep one batch fast, and
# one inter-op thread avoids oversubscription (BERT-style graphs have no parallel branches).
THREADS_ENV = "CF_ORT_THREADS"
# A worker alternates between sessions (embedder, extractor, head) within one micro-batch, each
# with its own thread pool. Idle pools spinning for work would steal the two cores from the pool
# that has work, so spinning is off unless CF_ORT_SPIN=1 (useful when one model runs alone).
SPIN_ENV = "CF_ORT_SPIN"

_sessions: dict[tuple[str, int], Any] = {}
_tokenizers: dict[str, Any] = {}
_verified: dict[tuple[str, float, int], str] = {}
_lock = threading.Lock()


class ArtifactError(Exception):
    """A model artifact is missing, corrupt, or not the one the registry recorded."""


def default_threads() -> int:
    value = os.environ.get(THREADS_ENV, "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, min(2, os.cpu_count() or 1))


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
    session = _sessions.get(key)
    if session is not None:
        return session
    with _lock:
        session = _sessions.get(key)
        if session is not None:
            return session
        file = verify(path, sha256)
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        spin = "1" if os.environ.get(SPIN_ENV, "0") == "1" else "0"
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        options.add_session_config_entry("session.inter_op.allow_spinning", spin)
        try:
            session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ArtifactError(f"artifact {file} is not a loadable ONNX model: {exc}") from exc
        _sessions[key] = session
        return session


def get_tokenizer(path: str | os.PathLike[str], sha256: str) -> Any:
    """Return the cached `tokenizers.Tokenizer` for this tokenizer.json (verified by sha256)."""
    tokenizer = _tokenizers.get(sha256)
    if tokenizer is not None:
        return tokenizer
    with _lock:
        file = verify(path, sha256)
        from tokenizers import Tokenizer

        try:
            tokenizer = Tokenizer.from_file(str(file))
        except Exception as exc:
            raise ArtifactError(f"tokenizer {file} cannot be loaded: {exc}") from exc
        _tokenizers[sha256] = tokenizer
        return tokenizer


def clear() -> None:
    """Forget every cached session (tests, and a worker told to reload its models)."""
    with _lock:
        _sessions.clear()
        _tokenizers.clear()
        _verified.clear()
