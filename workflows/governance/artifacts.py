"""Model files into the artifact store every machine reaches (models/blobs.py), and importing an uploaded
ONNX model.

Whatever a user makes — an import on the web host, a trained head or an int8 copy on a worker — is put in
the store before its version is registered, with "store" in its meta, so any worker runs it through a
verified local copy (registry.localise). Packaged models are built on each machine by setup_models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from workflows.graph.text import _  # an English Text: the refusal is audited in English, shown translated
from workflows.models import blobs
from workflows.models.audit import record
from workflows.models.registry import IN_STORE, KINDS, ModelVersion, RegisteredModel, register_version, with_paths
from workflows.roles import require

from .importer import ModelRejected, ModelReport, inspect


def store_bytes(data: bytes, suffix: str = ".onnx") -> dict[str, Any]:
    """Put a model file in the artifact store: the "path", "sha256", "size" and "store" of its meta (the
    path is a name: each machine reads a local copy, registry.localise)."""
    sha = blobs.put_bytes(data, permanent=True)
    return {"path": f"{sha}{suffix}", "sha256": sha, "size": len(data), "store": IN_STORE}


def store_files(meta: dict[str, Any]) -> dict[str, Any]:
    """`meta` (a build's, with paths to files on this machine) with every file it names — the model and
    its companions (tokenizer, configuration) — put in the artifact store, read a chunk at a time."""

    def put(entry: dict[str, Any]) -> str:
        path = Path(entry["path"])
        sha = blobs.put_file(path, permanent=True)
        if sha != entry["sha256"]:
            raise blobs.BlobMissing(f"{path} does not match the sha256 its build recorded")
        return f"{sha}{path.suffix}"

    return {**with_paths(meta, put), "store": IN_STORE}


def runtime_for(report: ModelReport, kind: str) -> tuple[str, dict[str, Any]]:
    """Which runtime can serve an imported model, from its inputs: raw strings → the TF-IDF runtime,
    a 384-float vector → a head over the production MiniLM; anything else is registered but not runnable."""
    first = report.inputs[0] if report.inputs else {}
    outputs = [o["name"] for o in report.outputs]
    params: dict[str, Any] = {"probabilities_output": "probabilities" if "probabilities" in outputs
                              else outputs[-1] if outputs else ""}
    if kind == "classifier" and first.get("elem_type") == "STRING":
        return "tfidf", params
    if kind == "classifier" and first.get("elem_type") == "FLOAT" and first.get("shape", [None])[-1] == 384:
        minilm = RegisteredModel.objects.filter(name="minilm").first()
        embedder = minilm.alias("production") if minilm else None
        if embedder is not None:
            return "head", {**params, "embedder_sha256": embedder.sha256, "dim": 384, "method": "head"}
    return "onnx", params


def import_model(data: bytes, *, name: str, kind: str, labels: list[str], user: Any, note: str = "",
                 max_bytes: int | None = None) -> tuple[ModelVersion, bool, ModelReport]:
    """Check an upload with importer.inspect (raises ModelRejected with every reason), store and register it."""
    require(user, "model.train")
    if kind not in dict(KINDS):
        raise ValidationError(gettext("'%(kind)s' is not a model kind.") % {"kind": kind})
    existing = RegisteredModel.objects.filter(name=name).first()
    if existing is not None and existing.kind != kind:
        raise ValidationError(gettext("Model '%(name)s' exists as a %(kind)s; pick that kind or another name.")
                              % {"name": name, "kind": existing.get_kind_display().lower()})
    try:
        report = inspect(data, max_bytes=max_bytes or settings.MODEL_IMPORT_MAX_BYTES)
        if kind == "classifier" and not labels:
            raise ModelRejected([_("A classifier needs its labels, in the order of its output columns.")])
    except ModelRejected as exc:
        record("model.import.refused", actor=user, object_type="workflows.registeredmodel", object_id=name,
               reasons=exc.reasons, size=len(data), sha256=hashlib.sha256(data).hexdigest())
        raise
    runtime, params = runtime_for(report, kind)
    stored = store_bytes(data)
    meta = {"name": name, "kind": kind, **stored, "source": "imported", "params": params, "files": {}, "labels": labels,
            "metrics": {}, "import_report": report.to_json()}
    version, created = register_version(model_name=name, kind=kind, meta=meta, source="imported", runtime=runtime,
                                        author=user,
                                        note=note or f"imported ONNX ({report.producer or 'unknown producer'})")
    return version, created, report
