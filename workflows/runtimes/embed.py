"""Sentence embeddings on ONNX Runtime (MiniLM, multilingual e5): batched, dynamic padding, mean pool + L2 norm.

The vectors match sentence-transformers' all-MiniLM-L6-v2 and multilingual-e5-small (mean pooling
over real tokens, then unit length), so cosine similarity is a dot product. A model trained with
role prefixes (e5's "query: " / "passage: ") names them in its params; the Embedder adds them, so
callers and users pass plain text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import CHARS_PER_TOKEN_CAP, Item, Meta, Output, chunks, file_ref, split_texts
from .sessions import get_session, get_tokenizer


@dataclass
class Encoded:
    vectors: np.ndarray  # (n, dim) float32, unit length
    tokens: list[int]  # tokens actually seen by the model, specials included
    truncated: list[bool]


class Embedder:
    def __init__(
        self,
        meta: Meta,
        *,
        input_field: str = "text",
        batch_size: int = 32,
        max_tokens: int | None = None,
        threads: int | None = None,
    ) -> None:
        self.meta = meta
        self.input_field = input_field
        self.batch_size = batch_size
        self.max_tokens = int(max_tokens or meta.get("params", {}).get("max_tokens", 256))
        self.session = get_session(meta["path"], meta["sha256"], threads=threads)
        self.tokenizer = get_tokenizer(*file_ref(meta, "tokenizer"))
        self.input_names = {i.name for i in self.session.get_inputs()}
        params = meta.get("params", {})
        self.dim = int(params.get("dim", 384))
        self.prefixes = {"query": params.get("query_prefix", ""), "passage": params.get("passage_prefix", "")}
        self.default_role = params.get("default_role", "query")

    def encode(self, texts: list[str], *, role: str | None = None) -> Encoded:
        """Embed raw strings (no item handling): for classify and summarise to reuse. `role` is
        "query" or "passage" for models trained with role prefixes (the model's default otherwise);
        models without prefixes ignore it."""
        prefix = self.prefixes[role or self.default_role]
        if prefix:
            texts = [prefix + t for t in texts]
        vectors, tokens, truncated = [], [], []
        for group in chunks(texts, self.batch_size):
            v, t, c = self._encode_batch(list(group))
            vectors.append(v)
            tokens += t
            truncated += c
        if not vectors:
            return Encoded(np.zeros((0, self.dim), np.float32), [], [])
        return Encoded(np.concatenate(vectors), tokens, truncated)

    def _encode_batch(self, texts: list[str]) -> tuple[np.ndarray, list[int], list[bool]]:
        cap = self.max_tokens * CHARS_PER_TOKEN_CAP
        cut = [len(t) > cap for t in texts]
        encodings = self.tokenizer.encode_batch([t[:cap] for t in texts])
        # The tokenizer.json was set to pad to the longest in the batch: a 30-token ticket batch
        # costs 30 positions, not the 128 the packaged tokenizer padded to. Truncate here as well
        # so the model's limit holds whatever the tokenizer file says.
        length = min(max(len(e.ids) for e in encodings), self.max_tokens)
        ids = np.zeros((len(texts), length), np.int64)
        mask = np.zeros((len(texts), length), np.int64)
        truncated = []
        for row, (enc, was_cut) in enumerate(zip(encodings, cut, strict=True)):
            real = sum(enc.attention_mask)
            n = min(real, length)
            ids[row, :n] = enc.ids[:n]
            if real > length:
                ids[row, n - 1] = enc.ids[real - 1]  # keep [SEP] last when we cut the tail here
            mask[row, :n] = 1
            truncated.append(was_cut or bool(enc.overflowing) or real > length)
        feed: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        hidden = self.session.run(None, feed)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        vectors = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
        return vectors, [int(m.sum()) for m in mask], truncated

    def run(self, batch: list[Item]) -> list[Output]:
        outputs, texts, where = split_texts(batch, self.input_field)
        encoded = self.encode(texts)
        for row, index in enumerate(where):
            out: Output = {"embedding": encoded.vectors[row].tolist(), "tokens": encoded.tokens[row]}
            if encoded.truncated[row]:
                out["warnings"] = [truncation_warning(self.max_tokens)]
            outputs[index] = out
        return outputs


def truncation_warning(max_tokens: int) -> str:
    return f"text truncated to the model's first {max_tokens} tokens"
