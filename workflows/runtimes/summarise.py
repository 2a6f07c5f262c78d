"""Extractive summaries: split into sentences, embed them, keep the most central ones in order.

Centrality is a sentence's mean cosine similarity to the document's other sentences (degree
centrality, LexRank without the iteration): the sentences that say what the rest says. Summary
sentences are exact substrings of the input, with their offsets.
"""

from __future__ import annotations

import re

import numpy as np

from .base import Item, Meta, Output, read_text
from .embed import Embedder

# A sentence ends at . ! ? … (plus closing quotes/brackets) followed by space and a capital,
# digit or opening quote — or at a line break. Common English/Italian abbreviations do not end one.
_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s+[\"'“‘«(\[]?[A-ZÀ-Ý0-9])|\n\s*")
_ABBREVIATIONS = {
    "mr",
    "mrs",
    "ms",
    "dr",
    "prof",
    "sig",
    "sigg",
    "sig.ra",
    "dott",
    "dott.ssa",
    "ing",
    "avv",
    "geom",
    "st",
    "vs",
    "etc",
    "e.g",
    "i.e",
    "no",
    "n",
    "art",
    "pag",
    "tel",
    "fig",
    "co",
    "inc",
    "ltd",
    "spa",
    "s.p.a",
    "s.r.l",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
}
MAX_SENTENCES = 300
MIN_CHARS = 12  # "Hi." or "Grazie." says nothing a summary needs


def split_sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence, trimmed of surrounding whitespace."""
    bounds: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        if m.group().startswith((".",)) and "\n" not in m.group():
            word = re.search(r"([\w.]+)$", text[start : m.start()])
            if word and word.group(1).lower() in _ABBREVIATIONS:
                continue
        end = m.end() if "\n" not in m.group() else m.start()
        bounds.append((start, end))
        start = m.end()
    bounds.append((start, len(text)))
    trimmed = []
    for s, e in bounds:
        chunk = text[s:e]
        left = len(chunk) - len(chunk.lstrip())
        right = len(chunk.rstrip())
        if right > left:
            trimmed.append((s + left, s + right))
    return trimmed


class Summariser:
    def __init__(
        self,
        embedder: Meta,
        *,
        sentences: int = 2,
        input_field: str = "text",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> None:
        self.embedder = Embedder(embedder, batch_size=batch_size, threads=threads)
        self.count = max(1, int(sentences))
        self.input_field = input_field

    def run(self, batch: list[Item]) -> list[Output]:
        outputs: list[Output] = [{} for _ in batch]
        plans: list[tuple[int, str, list[tuple[int, int]], list[str]]] = []
        pieces: list[str] = []
        for index, item in enumerate(batch):
            text, error = read_text(item, self.input_field)
            if error:
                outputs[index] = error
                continue
            bounds = split_sentences(text)
            warnings = []
            if len(bounds) > MAX_SENTENCES:
                warnings.append(f"summarised only the first {MAX_SENTENCES} of {len(bounds)} sentences")
                bounds = bounds[:MAX_SENTENCES]
            substantial = [b for b in bounds if b[1] - b[0] >= MIN_CHARS] or bounds
            plans.append((index, text, substantial, warnings))
            pieces += [text[s:e] for s, e in substantial]
        # One embedding call for every sentence of the micro-batch: batching is the speed.
        vectors = self.embedder.encode(pieces).vectors
        offset = 0
        for index, text, bounds, warnings in plans:
            v = vectors[offset : offset + len(bounds)]
            offset += len(bounds)
            if len(bounds) == 1:
                scores = np.ones(1)
            else:
                similarity = v @ v.T
                scores = (similarity.sum(axis=1) - 1.0) / (len(bounds) - 1)
            top = sorted(np.argsort(-scores, kind="stable")[: self.count])
            chosen = [
                {
                    "text": text[bounds[i][0] : bounds[i][1]],
                    "start": bounds[i][0],
                    "end": bounds[i][1],
                    "score": round(float(scores[i]), 4),
                }
                for i in top
            ]
            out: Output = {"summary": " ".join(c["text"] for c in chosen), "sentences": chosen}
            if warnings:
                out["warnings"] = warnings
            outputs[index] = out
        return outputs
