"""Training a classifier head from labels: MiniLM embeddings + logistic regression → ONNX (skl2onnx).

Runs in the worker (scikit-learn and skl2onnx are imported here only). The new version's parent is
the model's production version; it is registered with its held-out evaluation and never moves an
alias: it becomes production through a promotion, with four eyes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from workflows.models.registry import LabelledSet, ModelJob, ModelVersion, RegisteredModel, register_version
from workflows.roles import require
from workflows.runtimes.embed import Embedder

from . import jobs
from .artifacts import store_bytes
from .evaluation import classification_metrics
from .labelsets import review_items

MIN_ITEMS = 10
EMBED_CHUNK = 64


def embedder_for(model: RegisteredModel) -> ModelVersion:
    """The embedder a new head is trained on: the production head's own, else minilm@production."""
    production = model.alias("production")
    sha = ((production.meta if production else {}).get("params") or {}).get("embedder_sha256")
    embedder = ModelVersion.objects.filter(sha256=sha).select_related("model").first() if sha else None
    if embedder is None:
        minilm = RegisteredModel.objects.filter(kind="embedder").order_by("name").first()
        embedder = minilm.alias("production") if minilm else None
    if embedder is None:
        raise ValidationError(gettext("No embedder is registered (run `manage.py setup_models`)."))
    return embedder


def start_training(model: RegisteredModel, *, user: Any, labelled_set: LabelledSet | None = None,
                   use_reviews: bool = True, C: float = 10.0) -> ModelJob:
    require(user, "model.train", model)
    if model.kind != "classifier":
        raise ValidationError(gettext("%(model)s is a %(kind)s; only classifiers get a trained head.")
                              % {"model": model.name, "kind": model.get_kind_display().lower()})
    if labelled_set is None and not use_reviews:
        raise ValidationError(gettext("Choose a labelled set, reviewed items, or both."))
    available = (len(labelled_set.items) if labelled_set else 0) + (model.truth_labels.count() if use_reviews else 0)
    if available < MIN_ITEMS:
        raise ValidationError(gettext("There are %(count)s labelled documents; training needs at least %(minimum)s.")
                              % {"count": available, "minimum": MIN_ITEMS})
    base = model.alias("production") or model.versions.first()
    if base is None:
        raise ValidationError(gettext("%(model)s has no version yet.") % {"model": model.name})
    embedder = embedder_for(model)
    return jobs.create_job(kind=ModelJob.TRAIN, model=model, base_version=base, labelled_set=labelled_set,
                           use_reviews=use_reviews,
                           params={"C": C, "embedder": embedder.ref, "embedder_sha256": embedder.sha256},
                           created_by=user)


def training_items(job: ModelJob) -> list[dict[str, Any]]:
    items = list(job.labelled_set.items) if job.labelled_set else []
    if job.use_reviews:
        items += review_items(job.model)
    seen, unique = set(), []
    for item in items:  # the same document labelled twice counts once (the first: uploads before reviews)
        key = item["text"].strip()
        if key and key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def split(items: list[dict[str, Any]], seed: int = 0) -> tuple[list[int], list[int]]:
    """A stratified 80/20 split; classes with fewer than 5 examples stay in training only."""
    import random

    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        by_label.setdefault(item["label"], []).append(i)
    train, test = [], []
    for indices in by_label.values():
        rng.shuffle(indices)
        cut = len(indices) // 5 if len(indices) >= 5 else 0
        test += indices[:cut]
        train += indices[cut:]
    return sorted(train), sorted(test)


def run_training(job: ModelJob) -> tuple[ModelVersion, bool, dict[str, Any]]:
    import numpy as np
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    items = training_items(job)
    counts = Counter(i["label"] for i in items)
    if len(items) < MIN_ITEMS or len(counts) < 2:
        raise ValueError(f"{len(items)} distinct documents with {len(counts)} labels: "
                         f"training needs {MIN_ITEMS}+ and 2+ labels")
    embedder_version = ModelVersion.objects.get(sha256=job.params["embedder_sha256"])
    embedder = Embedder(embedder_version.runtime_meta())
    texts = [i["text"] for i in items]
    chunks = []
    for start in range(0, len(texts), EMBED_CHUNK):
        chunks.append(embedder.encode(texts[start:start + EMBED_CHUNK]).vectors)
        jobs.progress(job, 0.8 * min(1.0, (start + EMBED_CHUNK) / len(texts)),
                      f"embedding {min(start + EMBED_CHUNK, len(texts))}/{len(texts)} documents "
                      f"with {embedder_version.ref}")
    vectors = np.concatenate(chunks)
    labels = np.array([i["label"] for i in items])
    train, test = split(items)
    jobs.progress(job, 0.85, f"fitting logistic regression on {len(train)} documents")
    C = float(job.params.get("C", 10.0))
    clf = LogisticRegression(C=C, max_iter=5000).fit(vectors[train], labels[train])
    classes = [str(c) for c in clf.classes_]
    evaluation: dict[str, Any] = {"train_items": len(train), "test_items": len(test), "label_counts": dict(counts)}
    if test:
        predicted = [str(p) for p in clf.predict(vectors[test])]
        evaluation.update(classification_metrics([items[i]["label"] for i in test], predicted, classes))
    jobs.progress(job, 0.92, "exporting to ONNX")
    dim = int(vectors.shape[1])
    onx = convert_sklearn(clf, initial_types=[("embedding", FloatTensorType([None, dim]))],
                          options={id(clf): {"zipmap": False}}, target_opset={"": 18, "ai.onnx.ml": 3})
    stored = store_bytes(onx.SerializeToString())
    metrics = {k: evaluation[k] for k in ("accuracy", "macro_f1", "train_items", "test_items") if k in evaluation}
    meta = {"name": f"{job.model.name}-head", "kind": "classifier", **stored, "source": "trained",
            "licence": job.base_version.licence,
            "attribution": f"Trained here by {job.created_by.get_username()} on labelled documents",
            "params": {"method": "head", "embedder_sha256": embedder_version.sha256, "C": C, "dim": dim,
                       "probabilities_output": "probabilities", "job": job.pk},
            "files": {}, "labels": classes, "metrics": metrics, "parent": job.base_version.sha256}
    version, created = register_version(model_name=job.model.name, kind="classifier", meta=meta, source="trained",
                                        runtime="head", parent=job.base_version, author=job.created_by,
                                        trained_by=job.created_by,
                                        note=f"head on {embedder_version.ref}, {len(items)} labelled documents "
                                        f"(job #{job.pk})")
    return version, created, {"evaluation": evaluation, "embedder": embedder_version.ref}
