"""How pattern extraction grows on adversarial text, measured in one run on this machine.

For each input shape (a short unit repeated: runs a pattern starts and never completes, like
`a%a%a%…` with no "@", and random units over the patterns' characters), find_patterns_all runs on
the unit repeated to n characters and to 4n characters; growth = time(4n) / time(n), the median of
interleaved repetitions. Linear scanning gives about 4, quadratic about 16. n is sized per shape so
the short input takes at least 20 ms (a too-fast input would only measure noise). Ends with one line:
worst_growth_4x=… worst_shape=… inputs_tried=…

    .venv/bin/python bench/patterns.py [--random 40] [--reps 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workflows.runtimes.patterns import find_patterns_all

SHAPES = ["a%", "a.", "a-b", "a@b-", "a@b.", "1 ", "1.", "1,", "+39 ", "€1", "€ 1.", "1 €", "EUR 1", "12/", "1/1/",
          "2025-", "12 marzo ", "March 1", "IT1", "IT12 ", "DE89 ", "RSSMRA", "AB1", "www.", "http://a", "(1", "x "]
ALPHABET = "aAzZ09%._+-@ /,:€$£()ITEURe"
MIN_SECONDS = 0.02


def timed(text: str) -> float:
    started = time.perf_counter()
    find_patterns_all(text)
    return time.perf_counter() - started


def sized(unit: str) -> int:
    """Characters needed for the short input to take MIN_SECONDS (doubling from 4,000)."""
    n = 4000
    while timed(unit * (n // len(unit))) < MIN_SECONDS and n < 4_000_000:
        n *= 2
    return n


def growth(unit: str, reps: int) -> float:
    n = sized(unit)
    small, large = unit * (n // len(unit)), unit * (4 * n // len(unit))
    ratios = [timed(large) / timed(small) for _ in range(reps)]  # interleaved: small, large, small, …
    return statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--random", type=int, default=40, help="random shapes besides the listed ones")
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    rnd = random.Random(2026)
    shapes = SHAPES + ["".join(rnd.choice(ALPHABET) for _ in range(rnd.randint(1, 6))) for _ in range(args.random)]
    results = []
    for unit in shapes:
        ratio = growth(unit, args.reps)
        results.append((ratio, unit))
        print(f"{unit!r:14} growth over 4x size: {ratio:5.2f}", flush=True)
    worst, shape = max(results)
    print(f"worst_growth_4x={worst:.2f} worst_shape={shape!r} inputs_tried={len(shapes)}")


if __name__ == "__main__":
    main()
