"""Field extraction: the Rampart token classifier stitched into spans, backed by patterns.

Output per item: `{"fields": {kind: [{value, start, end, confidence, source, normalized?}]}}` with
character offsets into the item's text, kinds from the catalogue: person, address, bank_account,
id_number (model) and email, phone, iban, vat, codice_fiscale, amount, date, url (patterns; the
model's own email/phone/url spans are merged into those). Rampart learnt English, so Italian names and
addresses also come from gazetteers (`italian.py`, source "gazetteer"); where both find one, the
spans become one, and it keeps source "model".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .base import Item, Meta, Output, file_ref, softmax, split_texts
from .italian import find_entities
from .patterns import PRIORITY, Span, find_patterns_all
from .sessions import get_session, get_tokenizer

# Rampart's 17 types folded into the catalogue's kinds. Adjacent parts of one kind (a given name
# then a surname; street, number, city) are one person or one address.
MODEL_KINDS = {
    "GIVEN_NAME": "person",
    "SURNAME": "person",
    "BUILDING_NUMBER": "address",
    "STREET_NAME": "address",
    "SECONDARY_ADDRESS": "address",
    "CITY": "address",
    "STATE": "address",
    "ZIP_CODE": "address",
    "BANK_ACCOUNT": "bank_account",
    "ROUTING_NUMBER": "bank_account",
    "TAX_ID": "id_number",
    "GOVERNMENT_ID": "id_number",
    "PASSPORT": "id_number",
    "DRIVERS_LICENSE": "id_number",
    "SSN": "id_number",
    "EMAIL": "email",
    "PHONE": "phone",
    "URL": "url",
}
ENTITY_KINDS = ("person", "address", "bank_account", "id_number")
GAZETTEER_KINDS = ("person", "address")
PATTERN_KINDS = tuple(PRIORITY)
# What may sit between two parts of one entity: a space for "Mario Rossi", ", " in addresses.
JOINERS = {"person": {" ", "\t"}, "address": {" ", ",", "\n", "\t"}}
MAX_CHARS_FOR_PATTERNS = 2_000_000


@dataclass
class _Token:
    start: int
    end: int
    type: str | None  # Rampart type without B-/I-, None for O or below threshold
    begin: bool
    score: float


WORDED_KINDS = frozenset({"person", "address", "organisation"})


@dataclass
class _Run:
    type: str
    start: int
    end: int
    scores: list[float] = field(default_factory=list)


class Extractor:
    def __init__(
        self,
        meta: Meta,
        *,
        patterns: list[str] | tuple[str, ...] | None = None,
        entities: list[str] | tuple[str, ...] | None = None,
        input_field: str = "text",
        threshold: float | None = None,
        batch_size: int = 16,
        max_windows: int = 8,
        overlap: int = 64,
        threads: int | None = None,
    ) -> None:
        self.meta = meta
        self.patterns = tuple(PATTERN_KINDS if patterns is None else patterns)
        self.entities = tuple(ENTITY_KINDS if entities is None else entities)
        self.input_field = input_field
        params = meta.get("params", {})
        self.threshold = float(threshold if threshold is not None else params.get("threshold", 0.5))
        self.batch_size = batch_size
        self.max_windows = max_windows
        self.overlap = overlap
        self.session = get_session(meta["path"], meta["sha256"], threads=threads)
        self.tokenizer = get_tokenizer(*file_ref(meta, "tokenizer"))
        self.labels: list[str] = list(meta.get("labels") or [])
        self.max_tokens = int(params.get("max_tokens", 512))
        self.window = self.max_tokens - 2  # room for [CLS] and [SEP]
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")
        self.input_names = {i.name for i in self.session.get_inputs()}
        # The model is only worth running for the kinds it can add.
        self.use_model = bool(set(self.entities) | ({"email", "phone", "url"} & set(self.patterns)))

    # -- public ------------------------------------------------------------------------------

    def run(self, batch: list[Item]) -> list[Output]:
        outputs, texts, where = split_texts(batch, self.input_field)
        model_spans, warnings = (
            self._model_spans(texts) if self.use_model else ([[] for _ in texts], [[] for _ in texts])
        )
        for row, index in enumerate(where):
            text = texts[row]
            # The model sometimes tags an order or invoice number ("L'ordine 55821") as an address:
            # a person, an address or an organisation has letters in it.
            model_spans[row] = [s for s in model_spans[row]
                                if s.kind not in WORDED_KINDS or any(c.isalpha() for c in s.value)]
            claimed = find_patterns_all(text[:MAX_CHARS_FOR_PATTERNS])
            found = [s for s in claimed if s.kind in self.patterns]
            kinds = [k for k in GAZETTEER_KINDS if k in self.entities]
            listed = find_entities(text[:MAX_CHARS_FOR_PATTERNS], kinds) if kinds else []
            if len(text) > MAX_CHARS_FOR_PATTERNS:
                warnings[row].append(f"patterns read only the first {MAX_CHARS_FOR_PATTERNS} characters")
            model = _union(text, model_spans[row], listed, claimed)
            out: Output = {"fields": _merge(found, claimed, model, self.patterns, self.entities, self.threshold)}
            if warnings[row]:
                out["warnings"] = warnings[row]
            outputs[index] = out
        return outputs

    # -- model ---------------------------------------------------------------------------------

    def _model_spans(self, texts: list[str]) -> tuple[list[list[Span]], list[list[str]]]:
        # Long documents are read in overlapping windows of the model's 512 positions, up to
        # max_windows of them; beyond that the rest is not read by the model, and we say so.
        cap = self.max_windows * self.window * 12
        encodings = self.tokenizer.encode_batch([t[:cap] for t in texts], add_special_tokens=False)
        windows: list[tuple[int, int, int]] = []  # (text row, first token, end token)
        warnings: list[list[str]] = [[] for _ in texts]
        for row, enc in enumerate(encodings):
            count = len(enc.ids)
            start = 0
            while True:
                end = min(start + self.window, count)
                windows.append((row, start, end))
                if end >= count:
                    break
                if len([w for w in windows if w[0] == row]) >= self.max_windows:
                    warnings[row].append(
                        f"the extraction model read only the first {enc.offsets[end - 1][1]} characters "
                        f"({self.max_windows} windows of {self.max_tokens} tokens)"
                    )
                    break
                start = end - self.overlap
            if len(texts[row]) > cap and not warnings[row]:
                warnings[row].append(f"the extraction model read only the first {cap} characters")
        tokens: list[list[_Token]] = [[] for _ in texts]
        for first in range(0, len(windows), self.batch_size):
            group = windows[first : first + self.batch_size]
            probs = self._infer([encodings[r].ids[s:e] for r, s, e in group])
            for (row, start, end), p in zip(group, probs, strict=True):
                offsets = encodings[row].offsets
                # In an overlap, trust the window in which the token sits further from an edge:
                # the earlier window up to the middle of the overlap, the later one after it.
                keep_from = 0 if start == 0 else self.overlap // 2
                kept = [t for t in tokens[row] if t.start < offsets[start + keep_from][0]] if start else []
                for i in range(start + keep_from, end):
                    token_start, token_end = offsets[i]
                    if token_end <= token_start:
                        continue
                    label = self.labels[int(p[i - start + 1].argmax())]
                    score = float(p[i - start + 1].max())
                    kind = label[2:] if label[:2] in ("B-", "I-") else None
                    if kind is not None and score < self.threshold:
                        kind = None
                    kept.append(_Token(token_start, token_end, kind, label.startswith("B-"), score))
                tokens[row] = kept
        return [_stitch(texts[row], tokens[row]) for row in range(len(texts))], warnings

    def _infer(self, sequences: list[list[int]]) -> list[np.ndarray]:
        length = max(len(s) for s in sequences) + 2
        ids = np.zeros((len(sequences), length), np.int64)
        mask = np.zeros((len(sequences), length), np.int64)
        for row, seq in enumerate(sequences):
            ids[row, : len(seq) + 2] = [self.cls_id, *seq, self.sep_id]
            mask[row, : len(seq) + 2] = 1
        feed: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        logits = self.session.run(None, feed)[0]
        probs = softmax(logits)
        return [probs[row, : len(seq) + 2] for row, seq in enumerate(sequences)]


def _is_inside_word(text: str, position: int) -> bool:
    return 0 < position < len(text) and text[position - 1].isalnum() and text[position].isalnum()


def _stitch(text: str, tokens: list[_Token]) -> list[Span]:
    """Per-token BIO labels → character spans.

    Rules, in order: a sub-word piece belongs to the entity of its word whatever its own label
    (the model often labels "##i" of "Rossi" O); a token of the same type with no gap continues the
    span even if tagged B- ("mario" "." "rossi" in an email); an I- token of the same type after
    allowed joiners continues it; anything else closes it. Spans are then widened to whole words.
    """
    runs: list[_Run] = []
    current: _Run | None = None
    for token in tokens:
        if current is not None and token.start == current.end and _is_inside_word(text, token.start):
            current.end = token.end  # sub-word continuation
            current.scores.append(token.score if token.type == current.type else 1 - token.score)
            continue
        if token.type is None:
            current = None
            continue
        gap = text[current.end : token.start] if current is not None else None
        if (
            current is not None
            and current.type == token.type
            and (gap == "" or (not token.begin and gap is not None and gap.strip() == "" and len(gap) <= 2))
        ):
            current.end = token.end
            current.scores.append(token.score)
            continue
        current = _Run(token.type, token.start, token.end, [token.score])
        runs.append(current)
    return _group(text, runs)


def _group(text: str, runs: list[_Run]) -> list[Span]:
    """Adjacent runs of one catalogue kind (given name + surname; street + number + city) → one span."""
    spans: list[Span] = []
    previous: Span | None = None
    for run in runs:
        kind = MODEL_KINDS.get(run.type)
        if kind is None:
            continue
        start, end = run.start, run.end
        while start > 0 and text[start - 1].isalnum():
            start -= 1
        while end < len(text) and text[end].isalnum():
            end += 1
        confidence = float(np.mean(run.scores))
        joiners = JOINERS.get(kind)
        if previous is not None and previous.kind == kind and joiners:
            gap = text[previous.end : start]
            if 0 < len(gap) <= 3 and set(gap) <= joiners:
                count = previous.extra["parts"]
                previous.confidence = (previous.confidence * count + confidence) / (count + 1)
                previous.extra["parts"] = count + 1
                previous.end = end
                previous.value = text[previous.start : end]
                continue
        previous = Span(kind, start, end, text[start:end], confidence, source="model", extra={"parts": 1})
        spans.append(previous)
    return spans


# Strict patterns veto a gazetteer span they overlap (a name inside an e-mail address); the loose ones
# (phone, date, amount) do not: "Via Roma 123 20121" reads as a phone number and is still an address.
VETO = {"iban", "codice_fiscale", "vat", "email", "url"}


def _union(text: str, model: list[Span], listed: list[Span], claimed: list[Span]) -> list[Span]:
    """The model's spans with the gazetteers' added: one span per stretch of text that either found,
    of one kind. A model span that the gazetteers widen ("Luca" → "Luca Esposito") keeps source "model";
    what only the gazetteers found has source "gazetteer"."""
    # One byte per character, as in find_patterns_all: linear however many spans a long text has.
    strict = bytearray(len(text))
    for s in claimed:
        if s.kind in VETO:
            strict[s.start : s.end] = b"\x01" * (s.end - s.start)
    listed = [g for g in listed if strict.find(1, g.start, g.end) == -1]
    if not listed:
        return model
    # Model spans overlapping any pattern stay as they are, for _merge to snap or drop (the model's
    # spans are few: at most max_windows windows of text).
    kept = {id(m) for m in model if any(s.start < m.end and m.start < s.end for s in claimed)}
    others = [s for s in model if s.kind not in GAZETTEER_KINDS or id(s) in kept]
    merged: list[Span] = []
    for kind in GAZETTEER_KINDS:
        spans = [s for s in (*model, *listed) if s.kind == kind and id(s) not in kept]
        spans.sort(key=lambda s: (s.start, -s.end))
        for span in spans:
            last = merged[-1] if merged and merged[-1].kind == kind else None
            if last is not None and span.start < last.end:
                if span.source == "model":
                    last.source = "model"
                last.end = max(last.end, span.end)
                last.value = text[last.start : last.end]
                last.confidence = max(last.confidence, span.confidence)
                continue
            merged.append(
                Span(
                    kind,
                    span.start,
                    span.end,
                    span.value,
                    span.confidence,
                    source=span.source,
                    extra={**span.extra, "checked": True},
                )
            )
    return sorted([*others, *merged], key=lambda s: s.start)


# A model entity overlapping a pattern span is a fragment of it (the model split "GB82 WEST …"),
# unless the pattern is a more precise reading of the same thing: then it takes the pattern's span.
SNAP = {"bank_account": {"iban"}, "id_number": {"codice_fiscale", "vat"}}


def _merge(
    found: list[Span],
    claimed: list[Span],
    model: list[Span],
    patterns: tuple[str, ...],
    entities: tuple[str, ...],
    threshold: float,
) -> dict[str, list[dict[str, Any]]]:
    """Patterns and model spans into one `fields` dict.

    A model email/phone/url overlapping a pattern of the same kind confirms it (source
    "pattern+model"); overlapping another pattern it is dropped; otherwise it is kept as "model".
    Model entities are snapped to or dropped by the patterns they overlap (see SNAP).
    """
    fields: dict[str, list[Span]] = {kind: [] for kind in (*entities, *patterns)}
    for span in found:
        fields.setdefault(span.kind, []).append(span)
    # Every pattern match (`claimed`), wanted or not, may veto model fragments inside it.
    for span in model:
        if span.confidence < threshold:
            continue
        # Gazetteer spans were checked against the strict patterns already (see _union).
        overlapping = (
            [] if span.extra.get("checked") else [s for s in claimed if s.start < span.end and span.start < s.end]
        )
        if span.kind in ("email", "phone", "url"):
            if span.kind not in patterns:
                continue
            same = [s for s in fields[span.kind] if s.start < span.end and span.start < s.end]
            for s in same:
                s.source = "pattern+model"
                s.confidence = max(s.confidence, span.confidence)
            if not same and not overlapping:
                fields[span.kind].append(span)
            continue
        if span.kind not in entities:
            continue
        if overlapping:
            snap = [s for s in overlapping if s.kind in SNAP.get(span.kind, ())]
            if not snap:
                continue
            target = snap[0]
            if any(s.start == target.start and s.end == target.end for s in fields[span.kind]):
                continue
            span = Span(
                span.kind,
                target.start,
                target.end,
                target.value,
                max(span.confidence, target.confidence),
                source="pattern+model",
                normalized=target.normalized,
            )
        fields[span.kind].append(span)
    return {kind: [s.to_json() for s in sorted(spans, key=lambda s: s.start)] for kind, spans in fields.items()}
