"""MiniLM throughput and int8 quality, measured in one run on this machine.

PyTorch vs ONNX Runtime fp32 vs ONNX Runtime int8 (dynamic, per-channel, fused), batch 32, the
same token ids fed to all three, median of 5 interleaved repetitions (interleaving spreads the
noise of a shared two-core machine over all engines alike). Quality kept: the BBC head, trained on
fp32 embeddings, scored on the held-out split with fp32 vs int8 embeddings. Ends with one line:
ort_vs_torch=… int8_vs_fp32=… int8_quality_kept=… single_item_ms=…

    .venv/bin/python bench/models.py [--artifacts DIR] [--texts articles|tickets] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# torch's OpenMP threads spin after each op by default and would steal the two cores from the ORT
# run that follows them in the interleaved loop; ORT's pools do not spin (sessions.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(ROOT))

BATCH = 32
REPS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=os.environ.get("CF_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")
    parser.add_argument("--texts", choices=("articles", "tickets"), default="articles")
    parser.add_argument("--count", type=int, default=128, help="texts per repetition (a multiple of 32)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import numpy as np
    import torch
    from sklearn.metrics import f1_score

    from workflows.runtimes.build import build_all, embed_cached, minilm_source
    from workflows.runtimes.classify import HeadClassifier
    from workflows.runtimes.corpus import bbc_split
    from workflows.runtimes.embed import Embedder
    from workflows.runtimes.sessions import default_threads
    from workflows.runtimes.summarise import split_sentences

    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    out = Path(args.artifacts)
    metas = build_all(out, log=lambda m: print(f"[build] {m}"))
    _, _, test_x, test_y = bbc_split()
    if args.texts == "articles":
        texts = test_x[: args.count]
    else:
        # Support-ticket-sized pieces (20–60 tokens): the short documents the engine is judged on.
        pieces = [test_x[i][s:e] for i in range(len(test_x)) for s, e in split_sentences(test_x[i])]
        texts = [p for p in pieces if 100 <= len(p) <= 300][: args.count]

    fp32 = Embedder(metas["minilm-fp32"], threads=threads)
    int8 = Embedder(metas["minilm-int8"], threads=threads)
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(minilm_source()), local_files_only=True).eval()

    def torch_encode(batch: list[str]) -> np.ndarray:
        encodings = fp32.tokenizer.encode_batch(batch)
        ids = torch.tensor([e.ids for e in encodings])
        mask = torch.tensor([e.attention_mask for e in encodings])
        with torch.inference_mode():
            hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))[0]
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return torch.nn.functional.normalize(pooled, dim=1).numpy()

    engines = {
        "torch": lambda batch: torch_encode(batch),
        "ort_fp32": lambda batch: fp32.encode(batch).vectors,
        "ort_int8": lambda batch: int8.encode(batch).vectors,
    }
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    tokens = sum(min(len(e.ids), 256) for e in fp32.tokenizer.encode_batch(texts))
    print(
        f"texts={args.texts} n={len(texts)} mean_tokens={tokens / len(texts):.0f} batch={BATCH} "
        f"threads={threads} OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '')!r} "
        f"torch={torch.__version__}"
    )
    reference = torch_encode(batches[0])
    for name, encode in engines.items():  # warm-up, and a check that all three agree
        cosine = float((encode(batches[0]) * reference).sum(1).mean())
        print(f"  {name:9s} mean cosine to torch {cosine:.4f}")
    timings: dict[str, list[float]] = {name: [] for name in engines}
    for rep in range(REPS):
        for name, encode in engines.items():
            start = time.perf_counter()
            for batch in batches:
                encode(batch)
            timings[name].append(len(texts) / (time.perf_counter() - start))
        print(f"  rep {rep + 1}: " + "  ".join(f"{n} {timings[n][-1]:.1f}/s" for n in engines))
    rate = {name: statistics.median(values) for name, values in timings.items()}
    print("median texts/s: " + "  ".join(f"{n} {r:.1f}" for n, r in rate.items()))

    head = HeadClassifier(metas["bbc-head"], metas["minilm-int8"], threads=threads)
    f1 = {}
    for name in ("minilm-fp32", "minilm-int8"):
        vectors = embed_cached(out, metas[name], test_x)
        predicted = [head.labels[i] for i in head.predict(vectors).argmax(axis=1)]
        f1[name] = f1_score(test_y, predicted, average="macro")
    print(
        f"BBC held-out macro-F1 ({len(test_y)} articles, head trained on fp32): "
        f"fp32 {f1['minilm-fp32']:.4f}  int8 {f1['minilm-int8']:.4f}"
    )

    ticket = (
        "Hello, I was charged twice for invoice 4471 and need a refund of EUR 120 to my usual "
        "account before the end of the month. Can you help?"
    )
    latencies = []
    for _ in range(30):
        start = time.perf_counter()
        int8.encode([ticket])
        latencies.append((time.perf_counter() - start) * 1000)
    single = statistics.median(latencies[5:])
    print(f"single ticket ({int8.encode([ticket]).tokens[0]} tokens) int8 latency median {single:.1f} ms")

    print(
        f"ort_vs_torch={rate['ort_fp32'] / rate['torch']:.2f} "
        f"int8_vs_fp32={rate['ort_int8'] / rate['ort_fp32']:.2f} "
        f"int8_quality_kept={f1['minilm-int8'] / f1['minilm-fp32']:.4f} "
        f"single_item_ms={single:.1f}"
    )


if __name__ == "__main__":
    main()
