"""The one small interface every model runtime shares, and the per-item error convention.

A runtime is built from artifact metadata (the dicts `build.py` returns and the registry stores)
and exposes `run(batch) -> outputs`: one output dict per input item, in order. A bad item never
raises: it gets `{"error": message, "error_code": code}` so the executor can send it to the node's
error port while its batch companions go on. Anything that is not about one item (a missing or
tampered artifact) raises `ArtifactError`, because no item can succeed without the model.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from .sessions import ArtifactError

Item = dict[str, Any]
Output = dict[str, Any]
Meta = dict[str, Any]

# A 1 MB document must not cost seconds of tokenising only to be truncated to 256 tokens: cut the
# characters first. WordPiece averages well under 8 characters a token, so this never bites early.
CHARS_PER_TOKEN_CAP = 12


class Runtime(Protocol):
    def run(self, batch: list[Item]) -> list[Output]: ...


def item_error(code: str, message: str) -> Output:
    return {"error": message, "error_code": code}


def read_text(item: Item, field: str) -> tuple[str | None, Output | None]:
    """The item's text, or the per-item error explaining why there is none."""
    value: Any = item
    for part in field.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return None, item_error("missing_field", f"the item has no '{field}' field")
    if not isinstance(value, str):
        return None, item_error("not_text", f"'{field}' is {type(value).__name__}, not text")
    if not value.strip():
        return None, item_error("empty_text", f"'{field}' is empty: nothing to process")
    return value, None


def softmax(logits: Any) -> Any:
    """Probabilities along the last axis, numerically stable."""
    import numpy as np

    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def split_texts(batch: list[Item], field: str) -> tuple[list[Output], list[str], list[int]]:
    """Per-item error outputs for unreadable items, and the readable texts with their positions."""
    outputs: list[Output] = [{} for _ in batch]
    texts: list[str] = []
    where: list[int] = []
    for index, item in enumerate(batch):
        text, error = read_text(item, field)
        if error:
            outputs[index] = error
        else:
            texts.append(text)  # type: ignore[arg-type]
            where.append(index)
    return outputs, texts, where


def chunks(values: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def file_ref(meta: Meta, role: str) -> tuple[str, str]:
    """(path, sha256) of a companion file (tokenizer, label map) recorded in the metadata."""
    try:
        entry = meta["files"][role]
        return entry["path"], entry["sha256"]
    except (KeyError, TypeError) as exc:
        raise ArtifactError(f"model {meta.get('name', '?')} has no '{role}' file recorded") from exc
