"""From a registry version to a ready runtime, cached per process, least recently used first out.

Only workers and set-up code call this (it opens ONNX sessions); the web process never does.
Importing the runtime classes is cheap (numpy): ONNX Runtime and the tokenizers load with the first
session a node opens (runtimes/sessions.py), so a worker loads a model when a run's plan first uses
it, and an idle worker holds none.

A worker that served many lines would otherwise keep every model it ever ran (the multilingual
embedder alone is ~120 MB and its vocabulary more): past settings.WORKER_MODEL_MEMORY_MB of models
(what each cost when it loaded), the runtimes used longest ago are dropped, with the sessions and
tokenizers no remaining runtime shares; a later use loads them again.

The sequence length a model reads comes from its version's params (its card, at set-up:
runtimes/build.py); settings.MODEL_MAX_TOKENS overrides it per registered model.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from typing import Any

from django.conf import settings

from workflows.models import ModelVersion
from workflows.runtimes import sessions
from workflows.runtimes.base import Meta
from workflows.runtimes.classify import HeadClassifier, TfidfClassifier, ZeroShotClassifier, head_inputs
from workflows.runtimes.embed import Embedder
from workflows.runtimes.extract import Extractor
from workflows.runtimes.ocr import OcrRuntime
from workflows.runtimes.sessions import ArtifactError
from workflows.runtimes.summarise import Summariser

# Sentence embedders share one runtime: what differs between them (dimension, prefixes, token limit,
# zero-shot temperature) is in the version's params.
EMBEDDER_RUNTIMES = {"minilm", "e5"}


class _Entry:
    __slots__ = ("runtime", "uses", "version_id")

    def __init__(self, runtime: Any, uses: set[Any], version_id: int):
        self.runtime, self.uses, self.version_id = runtime, uses, version_id


_CACHE: OrderedDict[str, _Entry] = OrderedDict()  # least recently used first
_LOCK = threading.Lock()


def _meta_of(version_id: int) -> tuple[Meta, Any]:
    try:
        version = ModelVersion.objects.select_related("model").get(pk=version_id)
    except ModelVersion.DoesNotExist:
        raise ArtifactError(f"model version #{version_id} is not in the registry") from None
    meta = _with_token_limit(version.runtime_meta(), version.model.name)
    meta.setdefault("labels", version.labels)
    return meta, version


def _embedder_meta(head: Meta) -> Meta:
    sha = (head.get("params") or {}).get("embedder_sha256") or head.get("parent")
    embedder = ModelVersion.objects.filter(sha256=sha).select_related("model").first() if sha else None
    if embedder is None:
        raise ArtifactError(f"the embedder this head was trained on ({str(sha)[:12]}…) is not registered")
    return _with_token_limit(embedder.runtime_meta(), embedder.model.name)


def _with_token_limit(meta: Meta, model_name: str) -> Meta:
    """The version's params with settings.MODEL_MAX_TOKENS[model] as its max_tokens, when set."""
    limit = (getattr(settings, "MODEL_MAX_TOKENS", None) or {}).get(model_name)
    if limit:
        meta["params"] = {**(meta.get("params") or {}), "max_tokens": int(limit)}
    return meta


def load(version_id: int, *, purpose: str = "", **options: Any) -> Any:
    """A runtime for a registered version. `purpose` picks among runtimes an embedder can serve:
    "embed", "zero_shot" (options: labels), "summarise" (options: sentences), "extract" (patterns, entities)."""
    key = json.dumps([version_id, purpose, options], sort_keys=True, default=str)
    with _LOCK:
        entry = _CACHE.get(key)
        if entry is not None:
            _CACHE.move_to_end(key)
            return entry.runtime
    with sessions.tracking() as uses:
        runtime = _build(version_id, purpose, options)
    with _LOCK:
        _CACHE[key] = _Entry(runtime, uses, version_id)
        _CACHE.move_to_end(key)
        released = _evict(keep=key)
    if released:
        sessions.release(released)
    return runtime


def memory_cap_bytes() -> int:
    return int(getattr(settings, "WORKER_MODEL_MEMORY_MB", 1024)) * 1024 * 1024


def _evict(*, keep: str) -> set[Any]:
    """Drop least recently used runtimes (never `keep`, the one just asked for) while the models the
    kept ones use are estimated above the cap; return the sessions and tokenizers none of them uses."""
    cap = memory_cap_bytes()
    dropped: set[Any] = set()
    while len(_CACHE) > 1 and sessions.size_of(k for e in _CACHE.values() for k in e.uses) > cap:
        oldest = next(iter(_CACHE))
        if oldest == keep:
            break
        dropped |= _CACHE.pop(oldest).uses
    if not dropped:
        return set()
    return dropped - {k for e in _CACHE.values() for k in e.uses}


def cached() -> list[dict[str, Any]]:
    """What this process holds, least recently used first: each runtime's version and what it costs."""
    with _LOCK:
        return [{"key": key, "version_id": e.version_id, "runtime": type(e.runtime).__name__,
                 "bytes": sessions.size_of(e.uses)} for key, e in _CACHE.items()]


def _build(version_id: int, purpose: str, options: dict[str, Any]) -> Any:
    meta, version = _meta_of(version_id)
    kind = version.runtime
    input_field = options.pop("input_field", "file" if kind == "rapidocr" else "text")
    if kind in EMBEDDER_RUNTIMES:
        if purpose == "zero_shot":
            return ZeroShotClassifier(meta, labels=options["labels"], input_field=input_field)
        if purpose == "summarise":
            return Summariser(meta, sentences=options.get("sentences", 2), input_field=input_field)
        return Embedder(meta, input_field=input_field)
    if kind == "head":  # a head that reads only text needs no embedder: none is looked up or loaded
        embedder = _embedder_meta(meta) if "embedding" in head_inputs(meta) else None
        return HeadClassifier(meta, embedder, input_field=input_field)
    if kind == "tfidf":
        return TfidfClassifier(meta, input_field=input_field)
    if kind == "rampart":
        return Extractor(meta, patterns=options.get("patterns"), entities=options.get("entities"),
                         input_field=input_field)
    if kind == "rapidocr":
        return OcrRuntime({**meta, "ref": version.ref}, input_field=options.get("input_field", input_field))
    raise ArtifactError(f"{version} has runtime '{kind}', which no node can load")


def clear() -> None:
    with _LOCK:
        _CACHE.clear()
