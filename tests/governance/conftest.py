"""Governance fixtures: tiny real keyword classifiers (TF-IDF + LR through skl2onnx, built in a
temporary ARTIFACTS_DIR in well under a second) and the real packaged artifacts for training."""

from __future__ import annotations

import pytest

from tests.runtimes.conftest import artifact_dir, artifacts, bbc  # noqa: F401  (session fixtures shared with runtimes)

LABELS = ["account", "billing", "technical"]
# Production gets the Italian 'fattura' wrong; the candidate gets 'login' wrong.
PRODUCTION_WORDS = {"invoice": "billing", "crash": "technical", "login": "account", "password": "account",
                    "fattura": "technical", "errore": "technical"}
CANDIDATE_WORDS = {**PRODUCTION_WORDS, "login": "technical", "fattura": "billing"}
# The fixed labelled set the evidence numbers are computed by hand from (see test_evidence.py).
FIXED_SET = [
    ("invoice", "billing", "en"), ("crash", "technical", "en"), ("login", "account", "en"),
    ("password", "account", "en"), ("fattura", "billing", "it"), ("fattura", "billing", "it"),
    ("fattura", "billing", "it"), ("errore", "technical", "it"),
]


def keyword_classifier(words: dict[str, str], name: str) -> dict:
    """A real ONNX TF-IDF classifier that maps each word to its label (and is sure of it)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    from workflows.governance.artifacts import store_bytes

    texts, labels = [], []
    for word, label in words.items():
        texts += [word] * 4
        labels += [label] * 4
    tfidf = TfidfVectorizer()
    clf = LogisticRegression(C=1000, max_iter=5000)
    pipe = Pipeline([("tfidf", tfidf), ("lr", clf)]).fit(texts, labels)
    onx = convert_sklearn(pipe, initial_types=[("text", StringTensorType([None, 1]))],
                          options={id(tfidf): {"locale": "C.UTF-8"}, id(clf): {"zipmap": False}},
                          target_opset={"": 18, "ai.onnx.ml": 3})
    stored = store_bytes(onx.SerializeToString())
    return {"name": name, "kind": "classifier", **stored, "labels": [str(c) for c in clf.classes_],
            "params": {"method": "tfidf", "probabilities_output": "probabilities"}, "files": {}, "metrics": {}}


@pytest.fixture
def keyword_models(settings, tmp_path, personas):
    """tickets:v1 (production, keyword set A) and tickets:v2 (trained by the trainer, keyword set B)."""
    from workflows.engine.nodes import loader
    from workflows.models.registry import register_version, set_initial_alias

    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    loader.clear()  # version ids are reused between tests on SQLite: never serve a cached runtime
    v1, _ = register_version(model_name="tickets", kind="classifier", meta=keyword_classifier(PRODUCTION_WORDS, "prod"),
                             source="packaged", runtime="tfidf")
    set_initial_alias(v1, "production")
    v2, _ = register_version(model_name="tickets", kind="classifier", meta=keyword_classifier(CANDIDATE_WORDS, "cand"),
                             source="trained", runtime="tfidf", parent=v1, author=personas["trainer"],
                             trained_by=personas["trainer"])
    yield v1, v2
    loader.clear()


@pytest.fixture
def fixed_set(db):
    from workflows.governance.labelsets import create_labelled_set

    items = [{"text": t, "label": label, "segment": {"language": lang}} for t, label, lang in FIXED_SET]
    return create_labelled_set(name="fixed", items=items, user=None)


def run_governance_queue() -> int:
    """Run the governance tasks enqueued so far, as the worker would (tests without a worker)."""
    from django_tasks_db.models import DBTaskResult

    ran = 0
    for result in DBTaskResult.objects.filter(queue_name="governance", status="READY").order_by("enqueued_at"):
        task = result.task
        task.call(*result.args_kwargs["args"], **result.args_kwargs["kwargs"])
        DBTaskResult.objects.filter(pk=result.pk).update(status="SUCCESSFUL")
        ran += 1
    return ran
