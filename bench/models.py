"""MiniLM throughput and int8 quality, every int8 recipe side by side, measured in one run on this machine.

PyTorch vs ONNX Runtime fp32 vs ONNX Runtime int8, batch 32, the same texts fed to all, with the
session settings the product uses (workflows/runtimes/sessions.py). int8 comes in every recipe of
workflows/runtimes/quantise.py (the build's is `fused-per-channel`; the others are built beside it
under <artifacts>/recipes/, never over it). Each repetition measures fp32, then each recipe followed
by fp32 again (the recipes' order rotates between repetitions): a recipe's ratio is its rate over
the mean of the fp32 turns on either side of it, so a neighbour's load that comes and goes on a
shared machine shifts both sides of a ratio alike. Ratios are medians over REPS repetitions, by the
wall clock (what a worker gets) and by the process's CPU time (less sensitive to other processes:
the lead's quieter re-run should agree with the wall figure). The load average is printed with each
repetition.

Quality kept: the BBC head, trained on fp32 embeddings, scored on the held-out split with fp32 vs each
recipe's embeddings (macro-F1 ratio), and the cosine of each recipe's embedding to fp32's on the
same articles. A recipe qualifies at ≥ 0.99 of both (mean cosine). Ends with one line:
ort_vs_torch=… int8_vs_fp32=… int8_cpu_vs_fp32=… int8_quality_kept=… int8_cosine_mean=…
best_recipe=… best_int8_vs_fp32=… best_quality_kept=… single_item_ms=… load=…
(int8_* is the build's recipe; best_* the fastest qualifying recipe.)

    .venv/bin/python bench/models.py [--artifacts DIR] [--texts articles|tickets] [--threads N]
                                     [--recipes all|NAME,NAME] [--reps 5] [--count 128]
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
QUALIFIES = 0.99
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def machine() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    have = [f for f in CPU_FLAGS if f in flags]
    return f"{model}, {os.cpu_count()} CPUs, flags {' '.join(have) or 'none of ' + ' '.join(CPU_FLAGS)}"


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=os.environ.get("CF_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")
    parser.add_argument("--texts", choices=("articles", "tickets"), default="articles")
    parser.add_argument("--count", type=int, default=128, help="texts per turn (a multiple of 32)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--recipes", default="all", help="'all' or names from workflows/runtimes/quantise.py")
    args = parser.parse_args()

    import numpy as np
    import onnxruntime
    import torch
    from sklearn.metrics import f1_score

    from workflows.runtimes.build import build_all, embed_cached, minilm_source, quantise_minilm
    from workflows.runtimes.classify import HeadClassifier
    from workflows.runtimes.corpus import bbc_split
    from workflows.runtimes.embed import Embedder
    from workflows.runtimes.quantise import DEFAULT, RECIPES, recipe_named
    from workflows.runtimes.sessions import default_threads
    from workflows.runtimes.summarise import split_sentences

    names = list(RECIPES) if args.recipes == "all" else [n.strip() for n in args.recipes.split(",") if n.strip()]
    for name in names:
        recipe_named(name)  # an unknown name stops here, before minutes of building
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    out = Path(args.artifacts)
    metas = build_all(out, log=lambda m: print(f"[build] {m}"))
    fp32_meta = metas["minilm-fp32"]
    recipe_metas = {name: metas["minilm-int8"] if name == DEFAULT else
                    quantise_minilm(out / "recipes", fp32_meta, recipe=name, log=lambda m: print(f"[build] {m}"))
                    for name in names}
    _, _, test_x, test_y = bbc_split()
    if args.texts == "articles":
        texts = test_x[: args.count]
    else:
        # Support-ticket-sized pieces (20–60 tokens): the short documents the engine is judged on.
        pieces = [test_x[i][s:e] for i in range(len(test_x)) for s, e in split_sentences(test_x[i])]
        texts = [p for p in pieces if 100 <= len(p) <= 300][: args.count]

    fp32 = Embedder(fp32_meta, threads=threads)
    int8 = {name: Embedder(meta, threads=threads) for name, meta in recipe_metas.items()}
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(minilm_source()), local_files_only=True).eval()

    def torch_encode(batch: list[str]) -> np.ndarray:
        # The same cut as the ONNX sessions read (params.max_tokens), so all engines see the same ids.
        encodings = fp32.tokenizer.encode_batch(batch)
        length = min(max(len(e.ids) for e in encodings), fp32.max_tokens)
        # Cut as the Embedder cuts: [SEP] stays last.
        real = [sum(e.attention_mask) for e in encodings]
        rows = [e.ids[:length] if n <= length else [*e.ids[: length - 1], e.ids[n - 1]]
                for e, n in zip(encodings, real, strict=True)]
        ids = torch.tensor(rows)
        mask = torch.tensor([e.attention_mask[:length] for e in encodings])
        with torch.inference_mode():
            hidden = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))[0]
        pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        return torch.nn.functional.normalize(pooled, dim=1).numpy()

    engines = {"torch": torch_encode, "fp32": lambda batch: fp32.encode(batch).vectors}
    engines.update({name: (lambda batch, e=e: e.encode(batch).vectors) for name, e in int8.items()})
    batches = [texts[i : i + BATCH] for i in range(0, len(texts), BATCH)]
    tokens = sum(min(len(e.ids), fp32.max_tokens) for e in fp32.tokenizer.encode_batch(texts))
    print(f"machine: {machine()}; onnxruntime {onnxruntime.__version__}, torch {torch.__version__}; load {load()}")
    print(f"texts={args.texts} n={len(texts)} mean_tokens={tokens / len(texts):.0f} max_tokens={fp32.max_tokens} "
          f"batch={BATCH} threads={threads} reps={args.reps} recipes={len(names)}")
    reference = torch_encode(batches[0])
    for name, encode in engines.items():  # warm-up, and a check that all agree
        cosine = float((encode(batches[0]) * reference).sum(1).mean())
        print(f"  {name:20s} mean cosine to torch {cosine:.4f}")

    def turn(name: str) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for batch in batches:
            engines[name](batch)
        return len(texts) / (time.perf_counter() - wall), len(texts) / max(time.process_time() - cpu, 1e-9)

    rates: dict[str, list[float]] = {"torch": [], "fp32": []}
    ratios = {name: {"wall": [], "cpu": []} for name in names}
    loads = []
    for rep in range(args.reps):
        rates["torch"].append(turn("torch")[0])
        before = turn("fp32")
        rates["fp32"].append(before[0])
        order = names[rep % len(names):] + names[: rep % len(names)]
        for name in order:
            rate = turn(name)
            after = turn("fp32")
            rates["fp32"].append(after[0])
            rates.setdefault(name, []).append(rate[0])
            for clock, i in (("wall", 0), ("cpu", 1)):
                ratios[name][clock].append(rate[i] / ((before[i] + after[i]) / 2))
            before = after
        loads.append(os.getloadavg()[0])
        print(f"  rep {rep + 1} (load {loads[-1]:.1f}): torch {rates['torch'][-1]:.1f}/s fp32 {before[0]:.1f}/s  "
              + "  ".join(f"{n} {ratios[n]['wall'][-1]:.2f}×" for n in names))
    median = {name: {clock: statistics.median(v) for clock, v in r.items()} for name, r in ratios.items()}

    head = HeadClassifier(metas["bbc-head"], metas["minilm-int8"], threads=threads)
    reference_vectors = embed_cached(out, fp32_meta, test_x)

    def f1_with(vectors: np.ndarray) -> float:
        predicted = [head.labels[i] for i in head.predict(vectors).argmax(axis=1)]
        return float(f1_score(test_y, predicted, average="macro"))

    f1_fp32 = f1_with(reference_vectors)
    quality = {}
    for name, meta in recipe_metas.items():
        vectors = embed_cached(out, meta, test_x)
        cosine = (vectors * reference_vectors).sum(1)
        quality[name] = {"kept": f1_with(vectors) / f1_fp32, "cos_mean": float(cosine.mean()),
                         "cos_min": float(cosine.min()), "mb": meta["size"] / 2**20}
    print(f"BBC held-out ({len(test_y)} articles, head trained on fp32 embeddings): fp32 macro-F1 {f1_fp32:.4f}; "
          f"median ratios over {args.reps} reps (load {min(loads):.1f}–{max(loads):.1f}):")
    print(f"  {'recipe':20s} {'wall':>6s} {'(min–max)':>11s} {'cpu':>6s} {'F1 kept':>8s} {'cos mean':>8s} "
          f"{'cos min':>8s} {'MB':>5s}")
    for name in sorted(names, key=lambda n: -median[n]["wall"]):
        q, walls = quality[name], ratios[name]["wall"]
        mark = " (build)" if name == DEFAULT else ""
        print(f"  {name:20s} {median[name]['wall']:6.2f} {min(walls):5.2f}–{max(walls):<5.2f} "
              f"{median[name]['cpu']:6.2f} {q['kept']:8.4f} {q['cos_mean']:8.4f} {q['cos_min']:8.4f} "
              f"{q['mb']:5.1f}{mark}")
    qualifying = [n for n in names if quality[n]["kept"] >= QUALIFIES and quality[n]["cos_mean"] >= QUALIFIES]
    best = max(qualifying, key=lambda n: median[n]["wall"], default=None)

    ticket = (
        "Hello, I was charged twice for invoice 4471 and need a refund of EUR 120 to my usual "
        "account before the end of the month. Can you help?"
    )
    served = int8.get(DEFAULT) or Embedder(metas["minilm-int8"], threads=threads)
    latencies = []
    for _ in range(30):
        start = time.perf_counter()
        served.encode([ticket])
        latencies.append((time.perf_counter() - start) * 1000)
    single = statistics.median(latencies[5:])
    print(f"single ticket ({served.encode([ticket]).tokens[0]} tokens) int8 latency median {single:.1f} ms")

    build = median.get(DEFAULT, {"wall": float("nan"), "cpu": float("nan")})
    build_q = quality.get(DEFAULT, {"kept": float("nan"), "cos_mean": float("nan")})
    print(
        f"ort_vs_torch={statistics.median(rates['fp32']) / statistics.median(rates['torch']):.2f} "
        f"int8_vs_fp32={build['wall']:.2f} int8_cpu_vs_fp32={build['cpu']:.2f} "
        f"int8_quality_kept={build_q['kept']:.4f} int8_cosine_mean={build_q['cos_mean']:.4f} "
        f"best_recipe={best or 'none'} best_int8_vs_fp32={median[best]['wall'] if best else float('nan'):.2f} "
        f"best_quality_kept={quality[best]['kept'] if best else float('nan'):.4f} "
        f"single_item_ms={single:.1f} load={load()}"
    )


if __name__ == "__main__":
    main()
