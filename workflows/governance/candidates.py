"""Choosing a classifier head from labels: candidate families compared by stratified k-fold
cross-validation, the winner refit on every label, calibrated by temperature, exported as one ONNX graph.

Pure (numpy, scikit-learn, onnx, onnxruntime; no Django), so the training job, the tests and
bench/learning.py run the same code. Families:

- ``embedding``: logistic regression on sentence embeddings (graph input "embedding", float [N, dim]);
- ``tfidf``: logistic regression on word 1–2-gram and character 2–5-gram TF-IDF (input "text", string
  [N, 1]); characters carry Italian inflections and tweet spellings that whole words miss;
- ``both``: the two feature blocks side by side (both inputs). Each block is L2-normalised, so
  neither drowns the other.

Every fit weighs classes as balanced (a rare class is what reviewers correct most) and C is chosen by
CV. Probabilities are calibrated by one temperature fitted on the winner's out-of-fold logits and
folded into the exported weights, so a confidence threshold means what it says. The graph holds
only default-domain ops except the tokenizer (com.microsoft: ONNX has no regex tokenizer before
opset 20), and one default-domain opset entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import numpy as np

from workflows.runtimes.base import softmax

# The runtime feeds a text head what training fitted on: whitespace runs as one space (scikit-learn's
# character n-grams collapse them; the graph's tokenizer would not). The graph check feeds it the same way.
from workflows.runtimes.classify import head_feed, normalise_text

FAMILIES = ("embedding", "tfidf", "both")
C_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
MAX_FOLDS = 5
CURVE_FRACTIONS = (0.25, 0.5, 1.0)
ECE_BINS = 15
OPSET = 18
# Python's (?u)\w is Unicode letters, numbers and "_": RE2's [\pL\pN_] is the same class, so the
# graph's tokenizer splits "perché" and "l'ho" exactly as scikit-learn does.
WORD_PATTERN_SKLEARN = r"(?u)\b\w\w+\b"
WORD_PATTERN_RE2 = r"[\pL\pN_][\pL\pN_]+"
PAD = "\u0001"  # never a token nor a character of a normalised text


# --- features ------------------------------------------------------------------------------------


@dataclass
class TextFeatures:
    """Word and character TF-IDF, fitted on one set of texts."""

    word: Any
    char: Any

    @classmethod
    def fit(cls, texts: list[str]) -> TextFeatures:
        from sklearn.feature_extraction.text import TfidfVectorizer

        min_df = 2 if len(texts) >= 200 else 1  # with few texts a term seen once may be all a class has
        word = TfidfVectorizer(token_pattern=WORD_PATTERN_SKLEARN, ngram_range=(1, 2), sublinear_tf=True,
                               min_df=min_df, max_features=20_000, dtype=np.float32)
        char = TfidfVectorizer(analyzer="char", ngram_range=(2, 5), sublinear_tf=True, min_df=min_df,
                               max_features=30_000, dtype=np.float32)
        return cls(word.fit(texts), char.fit(texts))

    def transform(self, texts: list[str]) -> Any:
        from scipy.sparse import hstack

        return hstack([self.word.transform(texts), self.char.transform(texts)]).tocsr()


def _matrix(family: str, text: TextFeatures | None, texts: list[str], vectors: np.ndarray | None) -> Any:
    from scipy.sparse import csr_matrix, hstack

    if family == "embedding":
        return vectors
    assert text is not None
    sparse = text.transform(texts)
    return sparse if family == "tfidf" else hstack([sparse, csr_matrix(vectors)]).tocsr()


# --- one linear head -----------------------------------------------------------------------------


@dataclass
class Linear:
    """softmax(x @ W + b) over `classes`, equal to the fitted logistic regression's probabilities."""

    W: np.ndarray
    b: np.ndarray
    classes: list[str]

    @classmethod
    def of(cls, clf: Any) -> Linear:
        coef, intercept = np.asarray(clf.coef_, dtype=np.float64), np.asarray(clf.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:  # binary: p(second) = sigmoid(z) = softmax([0, z])
            coef = np.vstack([np.zeros_like(coef), coef])
            intercept = np.array([0.0, intercept[0]])
        return cls(coef.T, intercept, [str(c) for c in clf.classes_])

    def logits(self, X: Any) -> np.ndarray:
        return np.asarray(X @ self.W) + self.b


def _fit(X: Any, y: np.ndarray, C: float) -> Linear:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=C, class_weight="balanced", max_iter=3000)
    return Linear.of(clf.fit(X, y))


def _full(linear: Linear, logits: np.ndarray, classes: list[str]) -> np.ndarray:
    """Logits over every class: a class missing from a fold's training part cannot win."""
    out = np.full((logits.shape[0], len(classes)), -30.0)
    for j, c in enumerate(linear.classes):
        out[:, classes.index(c)] = logits[:, j]
    return out


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0))


# --- calibration ---------------------------------------------------------------------------------


def ece(probs: np.ndarray, y_idx: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top probability (equal-width bins)."""
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y_idx
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for low, high in pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            total += abs(correct[in_bin].mean() - confidence[in_bin].mean()) * in_bin.mean()
    return float(total)


def fit_temperature(logits: np.ndarray, y_idx: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of softmax(logits / T)."""
    from scipy.optimize import minimize_scalar

    rows = np.arange(len(y_idx))

    def nll(log_t: float) -> float:
        p = softmax(logits / np.exp(log_t))[rows, y_idx]
        return float(-np.log(np.clip(p, 1e-12, None)).mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded").x))


# --- cross-validation ----------------------------------------------------------------------------


@dataclass
class Folds:
    texts: list[str]
    y: np.ndarray
    vectors: np.ndarray | None
    classes: list[str]
    splits: list[tuple[np.ndarray, np.ndarray]]
    _text: dict[int, TextFeatures] = field(default_factory=dict)

    @classmethod
    def make(cls, texts: list[str], labels: list[str], vectors: np.ndarray | None, seed: int = 0) -> Folds:
        import warnings

        from sklearn.model_selection import StratifiedKFold

        y = np.array([str(label) for label in labels])
        classes = sorted(set(y.tolist()))
        smallest = min(int((y == c).sum()) for c in classes)
        k = max(2, min(MAX_FOLDS, smallest))
        with warnings.catch_warnings():  # a class with one example: it is tested once, never trained on then
            warnings.simplefilter("ignore", UserWarning)
            splits = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(texts, y))
        return cls([normalise_text(t) for t in texts], y, vectors, classes, splits)

    def text_of(self, fold: int, train: np.ndarray) -> TextFeatures:
        if fold not in self._text:
            self._text[fold] = TextFeatures.fit([self.texts[i] for i in train])
        return self._text[fold]

    def score(self, test: np.ndarray, scores: np.ndarray) -> float:
        """Macro-F1 on a held-out part, from its scores over every class (`_full`)."""
        return macro_f1(self.y[test], np.array(self.classes)[scores.argmax(axis=1)], self.classes)

    def matrices(self, family: str, fold: int, train: np.ndarray, test: np.ndarray,
                 text: TextFeatures | None = None) -> tuple[Any, Any]:
        if family != "embedding" and text is None:
            text = self.text_of(fold, train)
        vectors = self.vectors
        return (_matrix(family, text, [self.texts[i] for i in train], vectors[train] if vectors is not None else None),
                _matrix(family, text, [self.texts[i] for i in test], vectors[test] if vectors is not None else None))


def families_for(vectors: np.ndarray | None) -> tuple[str, ...]:
    return FAMILIES if vectors is not None else ("tfidf",)


def cross_validate(folds: Folds, *, families: tuple[str, ...], grid: tuple[float, ...] = C_GRID,
                   progress: Callable[[float, str], None] | None = None) -> tuple[list[dict[str, Any]], dict]:
    """The CV table (one row per family and C: macro-F1 mean and std over the folds) and, per
    family and C, the out-of-fold logits (for the winner's calibration)."""
    table, oof = [], {}
    steps, done = len(families) * len(folds.splits), 0
    for family in families:
        scores: dict[float, list[float]] = {C: [] for C in grid}
        logits = {C: np.zeros((len(folds.y), len(folds.classes))) for C in grid}
        for fold, (train, test) in enumerate(folds.splits):
            X_train, X_test = folds.matrices(family, fold, train, test)
            for C in grid:
                linear = _fit(X_train, folds.y[train], C)
                logits[C][test] = _full(linear, linear.logits(X_test), folds.classes)
                scores[C].append(folds.score(test, logits[C][test]))
            done += 1
            if progress:
                progress(done / steps, f"cross-validating {family} (fold {fold + 1}/{len(folds.splits)})")
        for C in grid:
            table.append({"family": family, "C": C, "macro_f1_mean": round(float(np.mean(scores[C])), 4),
                          "macro_f1_std": round(float(np.std(scores[C])), 4)})
            oof[(family, C)] = logits[C]
    return table, oof


def best(table: list[dict[str, Any]], family: str | None = None) -> dict[str, Any]:
    """The highest mean macro-F1; on a tie the steadier, then the simpler family, then the smaller C."""
    rows = [r for r in table if family is None or r["family"] == family]
    return max(rows, key=lambda r: (r["macro_f1_mean"], -r["macro_f1_std"], -FAMILIES.index(r["family"]), -r["C"]))


def calibration(folds: Folds, logits: np.ndarray) -> dict[str, Any]:
    """The temperature fitted on all out-of-fold logits, and ECE before and after. "After" is
    measured honestly: each fold is scaled by a temperature fitted on the other folds only."""
    y_idx = np.array([folds.classes.index(c) for c in folds.y])
    temperature = fit_temperature(logits, y_idx)
    after = np.zeros_like(logits)
    for _, test in folds.splits:
        rest = np.setdiff1d(np.arange(len(y_idx)), test)
        after[test] = softmax(logits[test] / fit_temperature(logits[rest], y_idx[rest]))
    return {"method": "temperature", "temperature": round(temperature, 4),
            "ece_before": round(ece(softmax(logits), y_idx), 4), "ece_after": round(ece(after, y_idx), 4),
            "bins": ECE_BINS, "n": len(y_idx)}


def _subsample(train: np.ndarray, y: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A stratified share of a fold's training part (every class keeps at least one example)."""
    keep = []
    for c in sorted(set(y[train].tolist())):
        members = train[y[train] == c]
        keep.append(rng.choice(members, size=max(1, round(len(members) * fraction)), replace=False))
    return np.sort(np.concatenate(keep))


def learning_curve(folds: Folds, winner: dict[str, Any], fractions: tuple[float, ...] = CURVE_FRACTIONS,
                   seed: int = 0) -> list[dict[str, Any]]:
    """Labels → macro-F1: the winner (its CV table row) refit on a share of each fold's training
    part, scored on the fold's held-out part (the same folds as the CV table). At every label the
    point is the winner's own row: the table measured exactly that fit."""
    family, C = winner["family"], winner["C"]
    rng = np.random.default_rng(seed)
    curve = []
    for fraction in fractions:
        if fraction >= 1.0:
            sizes = [len(train) for train, _ in folds.splits]
            curve.append({"fraction": fraction, "labels": round(float(np.mean(sizes))),
                          "macro_f1_mean": winner["macro_f1_mean"], "macro_f1_std": winner["macro_f1_std"]})
            continue
        scores, sizes = [], []
        for fold, (train, test) in enumerate(folds.splits):
            part = _subsample(train, folds.y, fraction, rng)
            text = TextFeatures.fit([folds.texts[i] for i in part]) if family != "embedding" else None
            X_train, X_test = folds.matrices(family, fold, part, test, text)
            linear = _fit(X_train, folds.y[part], C)
            scores.append(folds.score(test, _full(linear, linear.logits(X_test), folds.classes)))
            sizes.append(len(part))
        curve.append({"fraction": fraction, "labels": round(float(np.mean(sizes))),
                      "macro_f1_mean": round(float(np.mean(scores)), 4),
                      "macro_f1_std": round(float(np.std(scores)), 4)})
    return curve


def choose(texts: list[str], labels: list[str], vectors: np.ndarray | None, *, grid: tuple[float, ...] = C_GRID,
           checks: bool = True, curve: bool = True,
           progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    """Cross-validate every family over the C grid and pick the winner; calibrate it on its
    out-of-fold logits; check each family's exported graph on the held-out folds; draw the winner's
    learning curve. The record a trained version keeps."""
    say = progress or (lambda fraction, message: None)
    folds = Folds.make(texts, labels, vectors)
    families = families_for(vectors)
    table, oof = cross_validate(folds, families=families, grid=grid, progress=lambda f, m: say(0.7 * f, m))
    winner = best(table)
    family, C = winner["family"], winner["C"]
    onnx = []
    for i, name in enumerate(families if checks else ()):
        say(0.7 + 0.2 * i / len(families), f"exporting {name} fold by fold and scoring its graph")
        onnx.append(onnx_check(folds, name, best(table, name)["C"]))
    say(0.9, f"learning curve of {family}")
    logits = oof[(family, C)]
    predicted = [folds.classes[i] for i in logits.argmax(axis=1)]
    return {"family": family, "C": C, "folds": len(folds.splits), "classes": folds.classes, "cv": table,
            "calibration": calibration(folds, logits), "onnx": onnx,
            "learning_curve": learning_curve(folds, winner) if curve else [],
            "truth": folds.y.tolist(), "out_of_fold": predicted}


# --- the head and its ONNX graph -----------------------------------------------------------------


@dataclass
class Head:
    """A fitted candidate: its family, its linear layer and the text features it reads (if any)."""

    family: str
    linear: Linear
    text: TextFeatures | None

    @property
    def inputs(self) -> list[str]:
        return {"embedding": ["embedding"], "tfidf": ["text"], "both": ["text", "embedding"]}[self.family]

    def probabilities(self, texts: list[str], vectors: np.ndarray | None, temperature: float = 1.0) -> np.ndarray:
        X = _matrix(self.family, self.text, [normalise_text(t) for t in texts], vectors)
        return softmax(self.linear.logits(X) / temperature)


def fit_head(family: str, C: float, texts: list[str], labels: list[str], vectors: np.ndarray | None) -> Head:
    normalised = [normalise_text(t) for t in texts]
    text = TextFeatures.fit(normalised) if family != "embedding" else None
    X = _matrix(family, text, normalised, vectors)
    return Head(family, _fit(X, np.array([str(label) for label in labels]), C), text)


def _tfidf_block(vectorizer: Any, source: str, prefix: str, nodes: list, inits: list) -> str:
    """StringNormalizer → Tokenizer → TfIdfVectorizer (counts) → sublinear tf × idf → L2 row norm,
    as scikit-learn's TfidfVectorizer(sublinear_tf=True) computes it."""
    from onnx import helper, numpy_helper

    char = vectorizer.analyzer == "char"
    vocabulary = vectorizer.vocabulary_
    grams = sorted(((list(term) if char else term.split(" ")), column) for term, column in vocabulary.items())
    grams.sort(key=lambda g: len(g[0]))
    longest = max(len(tokens) for tokens, _ in grams)
    counts = [sum(len(tokens) for tokens, _ in grams if len(tokens) < n) for n in range(1, longest + 1)]
    low, high = vectorizer.ngram_range
    name = lambda s: f"{prefix}_{s}"  # noqa: E731
    nodes += [
        helper.make_node("Tokenizer", [source], [name("tokens")], domain="com.microsoft", mark=0, mincharnum=1,
                         pad_value=PAD, tokenexp="." if char else WORD_PATTERN_RE2),
        helper.make_node("TfIdfVectorizer", [name("tokens")], [name("tf")], mode="TF", min_gram_length=low,
                         max_gram_length=min(high, longest), max_skip_count=0,
                         pool_strings=[t for tokens, _ in grams for t in tokens], ngram_counts=counts,
                         ngram_indexes=[column for _, column in grams]),
        # sublinear tf: 1 + log(tf) where tf > 0; counts are whole numbers, so log(max(tf, 1)) + [tf > 0]
        helper.make_node("Max", [name("tf"), "one"], [name("tf1")]),
        helper.make_node("Log", [name("tf1")], [name("logtf")]),
        helper.make_node("Greater", [name("tf"), "zero"], [name("present")]),
        helper.make_node("Cast", [name("present")], [name("presentf")], to=1),
        helper.make_node("Add", [name("logtf"), name("presentf")], [name("sub")]),
        helper.make_node("Mul", [name("sub"), name("idf")], [name("w")]),
        helper.make_node("Mul", [name("w"), name("w")], [name("sq")]),
        helper.make_node("ReduceSum", [name("sq"), "axis1"], [name("ss")], keepdims=1),
        helper.make_node("Sqrt", [name("ss")], [name("norm")]),
        helper.make_node("Max", [name("norm"), "tiny"], [name("safe")]),
        helper.make_node("Div", [name("w"), name("safe")], [name("x")]),
    ]
    width = len(vocabulary)
    idf = np.zeros(width, dtype=np.float32)
    idf[:] = vectorizer.idf_
    inits.append(numpy_helper.from_array(idf, name("idf")))
    return name("x")


def export(head: Head, temperature: float = 1.0) -> bytes:
    """The head as one ONNX graph: inputs "text" (string [N, 1]) and/or "embedding" (float [N, dim]),
    output "probabilities" [N, classes] with the temperature folded into the weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list = []
    inits = [numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one"),
             numpy_helper.from_array(np.array([0.0], dtype=np.float32), "zero"),
             numpy_helper.from_array(np.array([1e-12], dtype=np.float32), "tiny"),
             numpy_helper.from_array(np.array([1], dtype=np.int64), "axis1"),
             numpy_helper.from_array(np.array([-1], dtype=np.int64), "flat_shape")]
    inputs, terms = [], []
    W = head.linear.W / temperature
    row = 0
    if head.text is not None:
        inputs.append(helper.make_tensor_value_info("text", TensorProto.STRING, [None, 1]))
        nodes += [helper.make_node("Reshape", ["text", "flat_shape"], ["text_flat"]),
                  helper.make_node("StringNormalizer", ["text_flat"], ["text_lower"], case_change_action="LOWER",
                                   is_case_sensitive=0, locale="C.UTF-8")]
        for prefix, vectorizer in (("word", head.text.word), ("char", head.text.char)):
            x = _tfidf_block(vectorizer, "text_lower", prefix, nodes, inits)
            width = len(vectorizer.vocabulary_)
            inits.append(numpy_helper.from_array(W[row:row + width].astype(np.float32), f"{prefix}_W"))
            nodes.append(helper.make_node("MatMul", [x, f"{prefix}_W"], [f"{prefix}_logits"]))
            terms.append(f"{prefix}_logits")
            row += width
    if head.family in ("embedding", "both"):
        dim = W.shape[0] - row
        inputs.append(helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, dim]))
        inits.append(numpy_helper.from_array(W[row:].astype(np.float32), "embedding_W"))
        nodes.append(helper.make_node("MatMul", ["embedding", "embedding_W"], ["embedding_logits"]))
        terms.append("embedding_logits")
    inits.append(numpy_helper.from_array((head.linear.b / temperature).astype(np.float32), "bias"))
    total = terms[0]
    for i, term in enumerate(terms[1:]):
        nodes.append(helper.make_node("Add", [total, term], [f"sum{i}"]))
        total = f"sum{i}"
    nodes += [helper.make_node("Add", [total, "bias"], ["logits"]),
              helper.make_node("Softmax", ["logits"], ["probabilities"], axis=-1)]
    used = {name for n in nodes for name in n.input}
    inits = [i for i in inits if i.name in used]  # the shared constants only where a text block reads them
    graph = helper.make_graph(nodes, f"head-{head.family}", inputs,
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT,
                                                             [None, len(head.linear.classes)])], inits)
    opsets = [helper.make_opsetid("", OPSET)] + ([helper.make_opsetid("com.microsoft", 1)] if head.text else [])
    model = helper.make_model(graph, opset_imports=opsets, producer_name="cognitive-factory")
    model.ir_version = 9  # what onnxruntime 1.32 reads for opset 18
    onnx.checker.check_model(model)
    return model.SerializeToString()


def run_onnx(data: bytes, texts: list[str], vectors: np.ndarray | None) -> np.ndarray:
    """The exported graph's probabilities, fed as the runtime feeds it."""
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(["probabilities"], head_feed(session.get_inputs(), texts, vectors))[0])


def onnx_check(folds: Folds, family: str, C: float) -> dict[str, Any]:
    """The candidate exported fold by fold and its graph scored on each held-out fold, as scikit-learn
    was: macro-F1 of the graph, and the largest probability gap to scikit-learn."""
    scores, gap = [], 0.0
    for fold, (train, test) in enumerate(folds.splits):
        X_train, X_test = folds.matrices(family, fold, train, test)
        linear = _fit(X_train, folds.y[train], C)
        head = Head(family, linear, folds.text_of(fold, train) if family != "embedding" else None)
        got = run_onnx(export(head), [folds.texts[i] for i in test],
                       folds.vectors[test] if folds.vectors is not None else None)
        gap = max(gap, float(np.abs(got - softmax(linear.logits(X_test))).max()))
        scores.append(folds.score(test, _full(linear, got, folds.classes)))
    return {"family": family, "C": C, "onnx_macro_f1_mean": round(float(np.mean(scores)), 4),
            "max_abs_diff": float(f"{gap:.3g}")}
