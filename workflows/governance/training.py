"""Training a classifier from labels: candidates compared by cross-validation, the winner refit on
every label, calibrated and exported to ONNX (the method is governance/candidates.py; this is its
Django edge: which data, which embedder, progress, registration).

Runs in the worker (scikit-learn and onnx are imported by candidates.py only). The new version's
parent is the model's production version, or none for a new classifier's first version; it is
registered with its cross-validated evaluation and never moves an alias: it becomes production
through a promotion, with four eyes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from workflows.models.registry import (
    LabelledSet,
    ModelJob,
    ModelVersion,
    RegisteredModel,
    register_version,
    resolve,
)
from workflows.roles import require
from workflows.runtimes.embed import Embedder

from . import candidates, jobs
from .artifacts import store_bytes
from .classifiers import node_config
from .evaluation import classification_metrics
from .labelsets import content_hash, review_items

MIN_ITEMS = 10
EMBED_CHUNK = 64
PARITY = 1e-4  # the exported graph must give scikit-learn's probabilities to this, or nothing is registered


def _embedder_of_ref(ref: Any) -> ModelVersion | None:
    try:
        version = resolve(str(ref or ""))
    except LookupError:
        return None
    return version if version.model.kind == "embedder" else None


def embedder_for(model: RegisteredModel) -> ModelVersion | None:
    """The embedder a new head is trained on: the one its step uses (a classifier made for a
    workflow step), else the production head's own, else the first embedder; None when no embedder
    is registered (then only the TF-IDF family competes)."""
    if model.origin_workflow_id and model.origin_node:
        config = node_config(model.origin_workflow, model.origin_node) or {}
        if found := _embedder_of_ref(config.get("model")):
            return found
    production = model.alias("production")
    sha = ((production.meta if production else {}).get("params") or {}).get("embedder_sha256")
    if sha and (found := ModelVersion.objects.filter(sha256=sha, model__kind="embedder")
                .select_related("model").first()):
        return found
    first = RegisteredModel.objects.filter(kind="embedder").order_by("name").first()
    return (first.alias("production") or first.versions.first()) if first else None


def start_training(model: RegisteredModel, *, user: Any, labelled_set: LabelledSet | None = None,
                   use_reviews: bool = True, C: float | None = None) -> ModelJob:
    """Queue a training job. `C` fixes the regularisation instead of choosing it by cross-validation."""
    require(user, "model.train", model)
    if model.kind != "classifier":
        raise ValidationError(gettext("%(model)s is a %(kind)s; only classifiers get a trained head.")
                              % {"model": model.name, "kind": model.get_kind_display().lower()})
    if labelled_set is None and not use_reviews:
        raise ValidationError(gettext("Choose a labelled set, reviewed items, or both."))
    available = ((len(labelled_set.items) if labelled_set else 0)
                 + (model.truth_labels.filter(field="").count() if use_reviews else 0))
    if available < MIN_ITEMS:
        raise ValidationError(gettext("There are %(count)s labelled documents; training needs at least %(minimum)s.")
                              % {"count": available, "minimum": MIN_ITEMS})
    base = model.alias("production") or model.versions.first()  # None: a new classifier's first version
    embedder = embedder_for(model)
    params: dict[str, Any] = {"C": C, "embedder": embedder.ref if embedder else None,
                              "embedder_sha256": embedder.sha256 if embedder else None}
    return jobs.create_job(kind=ModelJob.TRAIN, model=model, base_version=base, labelled_set=labelled_set,
                           use_reviews=use_reviews, params=params, created_by=user)


def training_items(job: ModelJob) -> list[dict[str, Any]]:
    items = list(job.labelled_set.items) if job.labelled_set else []
    if job.use_reviews:
        items += review_items(job.model)
    seen, unique = set(), []
    for item in items:  # the same document labelled twice counts once (the first: uploads before reviews)
        key = content_hash(item["text"])
        if item["text"].strip() and key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _embed(job: ModelJob, version: ModelVersion, texts: list[str]) -> Any:
    import numpy as np

    embedder = Embedder(version.runtime_meta())
    chunks = []
    for start in range(0, len(texts), EMBED_CHUNK):
        chunks.append(embedder.encode(texts[start:start + EMBED_CHUNK]).vectors)
        done = min(start + EMBED_CHUNK, len(texts))
        jobs.progress(job, 0.3 * done / len(texts), f"embedding {done}/{len(texts)} documents with {version.ref}")
    return np.concatenate(chunks)


def select(job: ModelJob, texts: list[str], labels: list[str], vectors: Any) -> dict[str, Any]:
    fixed = job.params.get("C")
    return candidates.choose(texts, labels, vectors, grid=(float(fixed),) if fixed else candidates.C_GRID,
                             progress=lambda f, m: jobs.progress(job, 0.3 + 0.55 * f, m))


def run_training(job: ModelJob) -> tuple[ModelVersion, bool, dict[str, Any]]:
    import numpy as np

    items = training_items(job)
    counts = Counter(i["label"] for i in items)
    if len(items) < MIN_ITEMS or len(counts) < 2:
        raise ValueError(f"{len(items)} distinct documents with {len(counts)} labels: "
                         f"training needs {MIN_ITEMS}+ and 2+ labels")
    texts, labels = [i["text"] for i in items], [str(i["label"]) for i in items]
    sha = job.params.get("embedder_sha256")
    embedder_version = ModelVersion.objects.select_related("model").get(sha256=sha) if sha else None
    vectors = _embed(job, embedder_version, texts) if embedder_version else None
    chosen = select(job, texts, labels, vectors)
    family, C, temperature = chosen["family"], chosen["C"], chosen["calibration"]["temperature"]
    jobs.progress(job, 0.9, f"refitting {family} (C={C}) on all {len(items)} documents and exporting to ONNX")
    head = candidates.fit_head(family, C, texts, labels, vectors)
    data = candidates.export(head, temperature)
    used = vectors if "embedding" in head.inputs else None
    gap = float(np.abs(candidates.run_onnx(data, texts, used) - head.probabilities(texts, used, temperature)).max())
    if gap > PARITY:
        raise ValueError(f"the exported graph differs from scikit-learn by {gap:.2g} (limit {PARITY})")
    stored = store_bytes(data)
    held_out = classification_metrics(chosen["truth"], chosen["out_of_fold"], chosen["classes"])
    evaluation = {**held_out, "method": f"{chosen['folds']}-fold cross-validation",
                  "train_items": len(items), "label_counts": dict(counts)}
    metrics = {"accuracy": evaluation["accuracy"], "macro_f1": evaluation["macro_f1"], "train_items": len(items),
               "ece": chosen["calibration"]["ece_after"]}
    training = {key: chosen[key] for key in ("family", "C", "folds", "cv", "calibration", "learning_curve", "onnx")}
    training["final_max_abs_diff"] = float(f"{gap:.3g}")
    base = job.base_version
    params: dict[str, Any] = {
        "method": "head", "family": family, "C": C, "inputs": head.inputs, "temperature": temperature,
        "text_normalise": "whitespace" if "text" in head.inputs else None,
        "probabilities_output": "probabilities", "job": job.pk,
        "training_hashes": sorted({content_hash(t) for t in texts})}
    if "embedding" in head.inputs:
        params.update({"embedder_sha256": embedder_version.sha256, "dim": int(vectors.shape[1])})
    meta = {"name": f"{job.model.name}-head", "kind": "classifier", **stored, "source": "trained",
            "licence": base.licence if base else job.model.licence,
            "attribution": f"Trained here by {job.created_by.get_username()} on labelled documents",
            "params": params, "training": training, "files": {}, "labels": chosen["classes"], "metrics": metrics,
            "parent": base.sha256 if base else None}
    on = f" on {embedder_version.ref}" if "embedding" in head.inputs else ""
    version, created = register_version(model_name=job.model.name, kind="classifier", meta=meta, source="trained",
                                        runtime="head", parent=base, author=job.created_by,
                                        trained_by=job.created_by,
                                        note=f"{family} head{on}, C={C}, {len(items)} labelled documents "
                                        f"(job #{job.pk})")
    report = {"evaluation": evaluation, "embedder": embedder_version.ref if embedder_version else None,
              "training": training}
    return version, created, report
