"""Classifiers: zero-shot by label descriptions, a trained head (on embeddings, text or both), TF-IDF.

Each gives every item a label, a confidence (the top probability) and the full distribution
(`scores`, label → probability, in the model's label order) so routing, cascades and drift can
use more than the winner.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .base import Item, Meta, Output, chunks, softmax, split_texts
from .embed import Embedder, truncation_warning
from .sessions import ArtifactError, get_session

TFIDF_MAX_CHARS = 100_000  # bag-of-words saturates long before; beyond this is a pasted dump


def _decide(labels: list[str], probs: np.ndarray) -> Output:
    best = int(np.argmax(probs))
    return {
        "label": labels[best],
        "confidence": round(float(probs[best]), 6),
        "scores": {label: round(float(p), 6) for label, p in zip(labels, probs, strict=True)},
    }


def _decide_all(labels: list[str], probs: np.ndarray, encoded: Any, max_tokens: int) -> list[Output]:
    outputs = []
    for row, p in enumerate(probs):
        out = _decide(labels, p)
        if encoded.truncated[row]:
            out["warnings"] = [truncation_warning(max_tokens)]
        outputs.append(out)
    return outputs


class _TextRuntime:
    """Splits a batch into readable texts and per-item errors, then fills outputs back in order."""

    input_field: str

    def run(self, batch: list[Item]) -> list[Output]:
        outputs, texts, where = split_texts(batch, self.input_field)
        if texts:
            for index, out in zip(where, self.classify(texts), strict=True):
                outputs[index] = out
        return outputs

    def classify(self, texts: list[str]) -> list[Output]:
        raise NotImplementedError


class ZeroShotClassifier(_TextRuntime):
    """Cosine similarity of the text to each label's description, softmaxed with a temperature.

    Cosines of MiniLM embeddings sit in a narrow band (0.0–0.6), so a raw softmax would be nearly
    flat; temperature 0.05 turns a 0.1 cosine lead into ~7× the probability. A model may name its
    own (`zero_shot_temperature`: e5's cosines crowd into 0.7–0.9, and it was trained at 0.01).
    Texts and label descriptions are embedded in the same role (e5's "query: ", the symmetric one).
    """

    def __init__(
        self,
        embedder: Meta,
        *,
        labels: dict[str, str],
        temperature: float | None = None,
        input_field: str = "text",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        if not labels:
            raise ValueError("zero-shot classification needs at least one label with a description")
        self.embedder = Embedder(embedder, batch_size=batch_size, threads=threads)
        self.labels = list(labels)
        self.temperature = temperature or float(embedder.get("params", {}).get("zero_shot_temperature", 0.05))
        self.input_field = input_field
        descriptions = [labels[label] or label for label in self.labels]
        self.label_vectors = self.embedder.encode(descriptions).vectors

    def classify(self, texts: list[str]) -> list[Output]:
        encoded = self.embedder.encode(texts)
        probs = softmax(encoded.vectors @ self.label_vectors.T / self.temperature)
        return _decide_all(self.labels, probs, encoded, self.embedder.max_tokens)


def head_inputs(head: Meta, *, threads: int | None = None) -> list[str]:
    """What a trained head's graph reads: "embedding" (float [N, dim]) and/or "text" (string [N, 1]).
    A head from before text heads has one float input, whatever its name: an embedding."""
    session = get_session(head["path"], head["sha256"], threads=threads)
    return [_input_role(spec) for spec in session.get_inputs()]


def _input_role(spec: Any) -> str:
    return "text" if spec.name == "text" or "string" in str(spec.type) else "embedding"


def normalise_text(text: str) -> str:
    """Whitespace runs as one space: what a text head was trained on (its character n-grams)."""
    return " ".join(text.split())


def head_feed(inputs: list[Any], texts: list[str], vectors: np.ndarray | None) -> dict[str, Any]:
    """What a trained head's graph is fed, input by input (`session.get_inputs()`). Training checks
    its exported graph through this too, so the check feeds it as production does."""
    feed: dict[str, Any] = {}
    for spec in inputs:
        if _input_role(spec) == "text":
            feed[spec.name] = np.array([normalise_text(t) for t in texts], dtype=object).reshape(-1, 1)
        else:
            feed[spec.name] = np.asarray(vectors, dtype=np.float32)
    return feed


def _decide_whole_texts(labels: list[str], texts: list[str], batch_size: int,
                        probabilities: Callable[[list[str]], np.ndarray]) -> list[Output]:
    """For graphs that read the text itself (no tokens to count): decided chunk by chunk, a text
    longer than TFIDF_MAX_CHARS read up to there (`probabilities` cuts it) and warned about."""
    outputs: list[Output] = []
    for group in chunks(texts, batch_size):
        for text, p in zip(group, probabilities(list(group)), strict=True):
            out = _decide(labels, p)
            if len(text) > TFIDF_MAX_CHARS:
                out["warnings"] = [f"text truncated to its first {TFIDF_MAX_CHARS} characters"]
            outputs.append(out)
    return outputs


class HeadClassifier(_TextRuntime):
    """A trained head: one ONNX graph over sentence embeddings, raw text (TF-IDF inside the graph), or
    both. It is fed what its graph declares; a head that reads only text needs no embedder."""

    def __init__(
        self,
        head: Meta,
        embedder: Meta | None,
        *,
        input_field: str = "text",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        self.session = get_session(head["path"], head["sha256"], threads=threads)
        self.labels = list(head.get("labels") or [])
        self.input_field = input_field
        self.batch_size = batch_size
        self.inputs = {_input_role(spec): spec for spec in self.session.get_inputs()}
        self.output_index = _probabilities_index(self.session, head)
        self.embedder: Embedder | None = None
        if "embedding" in self.inputs:
            if embedder is None:
                raise ArtifactError(f"head {head.get('name')} reads embeddings and no embedder was given")
            self.embedder = Embedder(embedder, batch_size=batch_size, threads=threads)
            width = self.inputs["embedding"].shape[-1]
            if isinstance(width, int) and width != self.embedder.dim:
                raise ArtifactError(
                    f"head {head.get('name')} expects {width}-dim embeddings, "
                    f"{embedder.get('name')} gives {self.embedder.dim}"
                )

    def predict(self, vectors: np.ndarray | None, texts: list[str] | None = None) -> np.ndarray:
        feed = head_feed(self.session.get_inputs(), [t[:TFIDF_MAX_CHARS] for t in texts or []], vectors)
        return np.asarray(self.session.run(None, feed)[self.output_index])

    def classify(self, texts: list[str]) -> list[Output]:
        if self.embedder is not None:
            encoded = self.embedder.encode(texts)
            return _decide_all(self.labels, self.predict(encoded.vectors, texts), encoded, self.embedder.max_tokens)
        return _decide_whole_texts(self.labels, texts, self.batch_size, lambda group: self.predict(None, group))


class TfidfClassifier(_TextRuntime):
    """TF-IDF + logistic regression in one ONNX graph that takes raw strings."""

    def __init__(
        self, meta: Meta, *, input_field: str = "text", batch_size: int = 32, threads: int | None = None
    ) -> None:
        self.session = get_session(meta["path"], meta["sha256"], threads=threads)
        self.labels = list(meta.get("labels") or [])
        self.input_field = input_field
        self.batch_size = batch_size
        self.input_name = self.session.get_inputs()[0].name
        self.output_index = _probabilities_index(self.session, meta)

    def predict(self, texts: list[str]) -> np.ndarray:
        feed = np.array([t[:TFIDF_MAX_CHARS] for t in texts], dtype=object).reshape(-1, 1)
        return np.asarray(self.session.run(None, {self.input_name: feed})[self.output_index])

    def classify(self, texts: list[str]) -> list[Output]:
        return _decide_whole_texts(self.labels, texts, self.batch_size, self.predict)


def _probabilities_index(session: Any, meta: Meta) -> int:
    wanted = meta.get("params", {}).get("probabilities_output", "probabilities")
    names = [o.name for o in session.get_outputs()]
    if wanted in names:
        return names.index(wanted)
    if len(names) == 1:
        return 0
    raise ArtifactError(f"classifier {meta.get('name')} has no '{wanted}' output (it has {names})")
