"""Optimising a model: dynamic int8 quantisation (per-channel) into a new version, with its deltas.

MiniLM goes through the set-up builder (`build.quantise_minilm`: optimum fusion, then ORT
`quantize_dynamic` per channel); any other ONNX model through `quantize_dynamic` directly. The page
shows size, throughput and quality against the parent measured on a labelled set, in the
executor's micro-batches. The new version is only registered: it moves to an alias by promotion.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from workflows.engine.nodes import loader
from workflows.models.registry import LabelledSet, ModelJob, ModelVersion, register_version
from workflows.roles import require
from workflows.runtimes.build import quantise_minilm

from . import jobs
from .artifacts import store_bytes, store_files
from .evaluation import compare_embedders, evaluate_classifier, run_runtime

SAMPLE = [
    "I was charged twice for my subscription this month, please refund the second payment.",
    "The app crashes every time I open the settings page on my phone.",
    "How do I change the email address on my account?",
    "Ho ricevuto due fatture per lo stesso ordine, potete annullarne una?",
    "Il login non funziona da ieri sera, la password è corretta.",
    "Please close my account and delete my personal data.",
    "The invoice total does not match the price on your website.",
    "Our VPN drops the connection every few minutes since the last update.",
]


# Trained heads: a linear layer over embeddings or TF-IDF, a few kilobytes to a megabyte. int8 makes
# them neither measurably faster (their time goes to the embedder or the tokenizer) nor smaller in a
# way that counts, and the quantiser reads only graphs with default-domain MatMul/Gemm weights.
HEAD_RUNTIMES = {"head", "tfidf"}


def can_optimise(version: ModelVersion) -> str:
    """'' when `version` can be quantised, else why not (asked before any job is queued, and the
    pages offer the button only when this is '')."""
    precision = (version.meta.get("params") or {}).get("precision")
    if version.source == "quantised" or precision == "int8":
        return gettext("%(ref)s is already int8.") % {"ref": version.ref}
    if version.runtime in HEAD_RUNTIMES:
        return gettext("%(ref)s is a trained head: a small linear layer over its features. int8 would make it "
                       "neither faster nor smaller in any way that counts (its time goes to the embedder or the "
                       "tokenizer); optimise the embedder it reads instead.") % {"ref": version.ref}
    if version.runtime not in {"minilm", "onnx"}:
        return gettext("%(ref)s has runtime '%(runtime)s', which this optimiser does not handle.") % {
            "ref": version.ref, "runtime": version.runtime}
    return ""


def start_optimise(version: ModelVersion, *, user: Any, labelled_set: LabelledSet | None = None,
                   per_channel: bool = True, fuse: bool = True) -> ModelJob:
    require(user, "model.train", version)
    why = can_optimise(version)
    if why:
        raise ValidationError(why)
    return jobs.create_job(kind=ModelJob.OPTIMISE, model=version.model, base_version=version, labelled_set=labelled_set,
                           params={"per_channel": per_channel, "fuse": fuse and version.runtime == "minilm"},
                           created_by=user)


def _quantise_file(source: str, per_channel: bool) -> bytes:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "model_int8.onnx"
        quantize_dynamic(source, str(target), per_channel=per_channel, reduce_range=False, weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
        return target.read_bytes()


def run_optimise(job: ModelJob) -> tuple[ModelVersion, bool, dict[str, Any]]:
    parent = job.base_version
    meta = parent.runtime_meta()
    per_channel = bool(job.params.get("per_channel", True))
    fuse = bool(job.params.get("fuse", False))
    jobs.progress(job, 0.1, f"quantising {parent.ref} to int8 (per_channel={per_channel}, fuse={fuse})")
    if parent.runtime == "minilm":
        out = Path(settings.ARTIFACTS_DIR) / "optimised"
        built = quantise_minilm(out, meta, fuse=fuse, per_channel=per_channel, log=lambda m: jobs.progress(job, 0.2, m))
        # The int8 file and the tokenizer it reads go into the artifact store: any worker runs the copy.
        new_meta = store_files({**built, "name": f"{parent.model.name}-int8"})
    else:
        stored = store_bytes(_quantise_file(meta["path"], per_channel))
        params = {**(meta.get("params") or {}), "precision": "int8", "quantisation": "dynamic",
                  "per_channel": per_channel}
        companions = store_files({"files": meta.get("files") or {}})["files"]
        new_meta = {**meta, **stored, "files": companions, "params": params, "source": "quantised",
                    "parent": parent.sha256, "name": f"{parent.model.name}-int8"}
    new_meta.pop("build_key", None)
    jobs.progress(job, 0.6, "registering the new version")
    version, created = register_version(model_name=parent.model.name, kind=parent.model.kind, meta=new_meta,
                                        source="quantised", runtime=parent.runtime, parent=parent,
                                        author=job.created_by, trained_by=job.created_by,
                                        note=f"int8 dynamic, per_channel={per_channel}, fuse={fuse} (job #{job.pk})")
    jobs.progress(job, 0.7, "measuring size, throughput and quality against the parent")
    report = compare(version, parent, job.labelled_set)
    return version, created, report


def compare(candidate: ModelVersion, parent: ModelVersion, labelled: LabelledSet | None) -> dict[str, Any]:
    """Size, throughput (items/s in the executor's micro-batches) and quality of `candidate` vs `parent`."""
    items = list(labelled.items) if labelled else []
    report: dict[str, Any] = {
        "size": {"candidate": candidate.size, "parent": parent.size,
                 "ratio": round(candidate.size / parent.size, 4) if parent.size else None},
        "labelled_set": labelled.name if labelled else None,
    }
    if candidate.model.kind == "embedder":
        texts = [i["text"] for i in items[:256]] or SAMPLE * 8
        agreement = compare_embedders(candidate.pk, parent.pk, texts)
        ms = agreement["latency_ms_per_item"]
        # compare_embedders calls the second "production"
        report["throughput"] = _throughput(ms["candidate"], ms["production"])
        report["quality"] = {"cosine_mean": agreement["cosine_mean"], "cosine_min": agreement["cosine_min"],
                             "n": agreement["n"]}
        if items:
            a, b = centroid_accuracy(candidate.pk, items[:1000]), centroid_accuracy(parent.pk, items[:1000])
            report["quality"].update({"centroid_accuracy": {
                "candidate": a, "parent": b, "delta": round(a - b, 4) if a is not None and b is not None else None}})
    elif items:
        labels = labelled.labels or sorted({i["label"] for i in items})
        a = evaluate_classifier(candidate.pk, items, labels)
        b = evaluate_classifier(parent.pk, items, labels)
        report["throughput"] = _throughput(a["latency_ms_per_item"], b["latency_ms_per_item"])
        report["quality"] = {k: {"candidate": a[k], "parent": b[k], "delta": round(a[k] - b[k], 4)
                                 if a[k] is not None and b[k] is not None else None} for k in ("accuracy", "macro_f1")}
        agreeing = sum(x == y for x, y in zip(a["predictions"], b["predictions"], strict=True))
        report["quality"]["agreement"] = round(agreeing / len(items), 4)
    return report


def _throughput(ms_candidate: float, ms_parent: float) -> dict[str, Any]:
    def per_second(ms: float) -> float | None:
        return round(1000 / ms, 1) if ms else None

    a, b = per_second(ms_candidate), per_second(ms_parent)
    return {"candidate_items_per_s": a, "parent_items_per_s": b, "speedup": round(a / b, 3) if a and b else None}


def centroid_accuracy(version_id: int, items: list[dict[str, Any]]) -> float | None:
    """How well an embedder separates the labels: nearest class centroid, leave-one-out."""
    import numpy as np

    outputs, _ = run_runtime(loader.load(version_id, purpose="embed"), [{"text": i["text"]} for i in items])
    keep = [(o["embedding"], i["label"]) for o, i in zip(outputs, items, strict=True) if "embedding" in o]
    if len({label for _, label in keep}) < 2:
        return None
    vectors = np.array([v for v, _ in keep], dtype=np.float32)
    labels = np.array([label for _, label in keep])
    classes = sorted(set(labels))
    sums = {c: vectors[labels == c].sum(axis=0) for c in classes}
    counts = {c: int((labels == c).sum()) for c in classes}
    correct = 0
    for v, label in zip(vectors, labels, strict=True):
        best, best_score = None, -2.0
        for c in classes:
            n = counts[c] - (1 if c == label else 0)
            if n == 0:
                continue
            centroid = (sums[c] - (v if c == label else 0)) / n
            score = float(v @ centroid / (np.linalg.norm(centroid) or 1.0))
            if score > best_score:
                best, best_score = c, score
        correct += int(best == label)
    return round(correct / len(keep), 4)
