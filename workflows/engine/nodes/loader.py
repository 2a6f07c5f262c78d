"""From a registry version to a ready runtime, cached per process.

Only workers and set-up code call this (it opens ONNX sessions); the web process never does.
Importing the runtime classes is cheap (numpy): ONNX Runtime and the tokenizers load with the first
session a node opens (runtimes/sessions.py).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from workflows.models import ModelVersion
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
_CACHE: dict[str, Any] = {}
_LOCK = threading.Lock()


def _meta_of(version_id: int) -> tuple[Meta, Any]:
    try:
        version = ModelVersion.objects.select_related("model").get(pk=version_id)
    except ModelVersion.DoesNotExist:
        raise ArtifactError(f"model version #{version_id} is not in the registry") from None
    meta = version.runtime_meta()
    meta.setdefault("labels", version.labels)
    return meta, version


def _embedder_meta(head: Meta) -> Meta:
    sha = (head.get("params") or {}).get("embedder_sha256") or head.get("parent")
    embedder = ModelVersion.objects.filter(sha256=sha).first() if sha else None
    if embedder is None:
        raise ArtifactError(f"the embedder this head was trained on ({str(sha)[:12]}…) is not registered")
    return embedder.runtime_meta()


def load(version_id: int, *, purpose: str = "", **options: Any) -> Any:
    """A runtime for a registered version. `purpose` picks among runtimes an embedder can serve:
    "embed", "zero_shot" (options: labels), "summarise" (options: sentences), "extract" (patterns, entities)."""
    key = json.dumps([version_id, purpose, options], sort_keys=True, default=str)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
    runtime = _build(version_id, purpose, options)
    with _LOCK:
        _CACHE[key] = runtime
    return runtime


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
