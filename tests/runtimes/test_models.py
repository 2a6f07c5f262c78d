from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.metrics import f1_score

from workflows.runtimes import sessions
from workflows.runtimes.build import build_all, embed_cached
from workflows.runtimes.classify import HeadClassifier, TfidfClassifier, ZeroShotClassifier
from workflows.runtimes.embed import Embedder
from workflows.runtimes.extract import Extractor
from workflows.runtimes.sessions import ArtifactError
from workflows.runtimes.summarise import Summariser

TICKETS = Path(__file__).resolve().parents[1] / "data" / "tickets_en_it.jsonl"
BBC_LABELS = {
    "business": "business, the economy, companies, profits, shares and markets",
    "entertainment": "entertainment: films, music, television, actors and awards",
    "politics": "politics: the government, ministers, parliament, parties and elections",
    "sport": "sport: football, rugby, tennis, athletics, players and matches",
    "tech": "technology: computers, software, the internet, phones and games",
}


def test_build_is_idempotent_and_content_addressed(artifacts, artifact_dir):
    again = build_all(artifact_dir, log=lambda message: None)
    for name, meta in artifacts.items():
        assert again[name]["sha256"] == meta["sha256"], name
        assert Path(meta["path"]).name.startswith(meta["sha256"])
        assert sessions.file_sha256(meta["path"]) == meta["sha256"]
        assert meta["licence"] and meta["attribution"] and meta["source"]
    assert artifacts["minilm-int8"]["parent"] == artifacts["minilm-fp32"]["sha256"]
    assert artifacts["minilm-int8"]["params"]["per_channel"] is True


def test_trained_head_reaches_095_macro_f1_on_held_out_bbc(artifacts, artifact_dir, bbc):
    _, _, test_x, test_y = bbc
    head = HeadClassifier(artifacts["bbc-head"], artifacts["minilm-int8"])
    vectors = embed_cached(artifact_dir, artifacts["minilm-int8"], test_x)
    labels = [head.labels[i] for i in head.predict(vectors).argmax(axis=1)]
    f1 = f1_score(test_y, labels, average="macro")
    print(f"\nBBC held-out macro-F1, MiniLM int8 + LR head: {f1:.4f} on {len(test_y)} articles")
    assert f1 >= 0.95
    # The runtime path (tokenise, embed, head) agrees with the cached-embedding path.
    outputs = head.run([{"text": text} for text in test_x[:8]])
    assert [o["label"] for o in outputs] == labels[:8]
    for out in outputs:
        assert set(out["scores"]) == set(BBC_LABELS)
        assert abs(sum(out["scores"].values()) - 1) < 1e-3
        assert out["confidence"] == max(out["scores"].values())


def test_tfidf_head_reaches_095_macro_f1_on_held_out_bbc(artifacts, bbc):
    _, _, test_x, test_y = bbc
    outputs = TfidfClassifier(artifacts["bbc-tfidf"]).run([{"text": text} for text in test_x])
    f1 = f1_score(test_y, [o["label"] for o in outputs], average="macro")
    print(f"\nBBC held-out macro-F1, TF-IDF + LR: {f1:.4f}")
    assert f1 >= 0.95


def test_zero_shot_picks_the_described_label(artifacts):
    classifier = ZeroShotClassifier(artifacts["minilm-int8"], labels=BBC_LABELS)
    outputs = classifier.run(
        [
            {"text": "Arsenal beat Chelsea 2-1 with a late goal from their striker in the Premier League."},
            {"text": "The prime minister faces a vote in parliament on the new immigration bill."},
            {"text": "Apple unveiled a faster laptop chip and new software for its phones."},
        ]
    )
    assert [o["label"] for o in outputs] == ["sport", "politics", "tech"]
    assert all(abs(sum(o["scores"].values()) - 1) < 1e-3 for o in outputs)


def _tickets() -> list[dict]:
    return [json.loads(line) for line in TICKETS.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.mark.parametrize("ticket", _tickets(), ids=lambda t: t["id"])
def test_extractor_finds_the_fields_of_a_ticket(artifacts, ticket):
    extractor = Extractor(artifacts["rampart"])
    [out] = extractor.run([ticket])
    fields = out["fields"]
    for kind, value in ticket["expected"].items():
        values = [f["value"] for f in fields[kind]]
        assert value in values, f"{kind}: expected {value!r}, found {values}"
    for spans in fields.values():
        for span in spans:
            assert ticket["text"][span["start"] : span["end"]] == span["value"]
            assert 0 < span["confidence"] <= 1
            assert span["source"] in {"pattern", "model", "pattern+model"}


def test_extractor_batch_matches_single_items(artifacts):
    extractor = Extractor(artifacts["rampart"])
    tickets = _tickets()
    assert extractor.run(tickets) == [extractor.run([t])[0] for t in tickets]


def test_summariser_returns_sentences_of_the_input(artifacts, bbc):
    _, _, test_x, _ = bbc
    summariser = Summariser(artifacts["minilm-int8"], sentences=3)
    outputs = summariser.run([{"text": text} for text in test_x[:4]])
    for text, out in zip(test_x[:4], outputs, strict=True):
        assert len(out["sentences"]) == 3
        starts = [s["start"] for s in out["sentences"]]
        assert starts == sorted(starts)
        for sentence in out["sentences"]:
            assert text[sentence["start"] : sentence["end"]] == sentence["text"]
            assert sentence["text"] in out["summary"]


def test_embedder_gives_unit_vectors_close_to_fp32(artifacts):
    texts = ["My invoice was charged twice, please refund me.", "La fattura è stata addebitata due volte."]
    int8 = Embedder(artifacts["minilm-int8"]).encode(texts).vectors
    fp32 = Embedder(artifacts["minilm-fp32"]).encode(texts).vectors
    assert int8.shape == (2, 384)
    assert abs(float((int8[0] ** 2).sum()) - 1) < 1e-4
    assert float((int8 * fp32).sum(axis=1).min()) > 0.98


def test_empty_text_is_a_per_item_error_not_an_exception(artifacts):
    batch = [{"text": "Please refund invoice 12 to mario.rossi@example.com."}, {"text": "   "}, {"subject": "x"}]
    runtimes = [
        Embedder(artifacts["minilm-int8"]),
        HeadClassifier(artifacts["bbc-head"], artifacts["minilm-int8"]),
        TfidfClassifier(artifacts["bbc-tfidf"]),
        ZeroShotClassifier(artifacts["minilm-int8"], labels=BBC_LABELS),
        Extractor(artifacts["rampart"]),
        Summariser(artifacts["minilm-int8"]),
    ]
    for runtime in runtimes:
        first, empty, missing = runtime.run(batch)
        assert "error" not in first, type(runtime).__name__
        assert empty["error_code"] == "empty_text"
        assert missing["error_code"] == "missing_field"


def test_long_text_is_truncated_with_a_warning(artifacts):
    text = "Please call Mario Rossi about the refund. " * 25_000  # ~1 MB
    [embedded] = Embedder(artifacts["minilm-int8"]).run([{"text": text}])
    assert embedded["tokens"] == artifacts["minilm-int8"]["params"]["max_tokens"] == 256
    assert "truncated" in embedded["warnings"][0]
    [extracted] = Extractor(artifacts["rampart"], patterns=["email"]).run([{"text": text}])
    assert extracted["fields"]["person"]
    assert "read only the first" in extracted["warnings"][0]


def test_sha256_mismatch_raises_artifact_error(artifacts, tmp_path):
    sessions.clear()
    meta = dict(artifacts["bbc-tfidf"])
    copy = tmp_path / "model.onnx"
    shutil.copyfile(meta["path"], copy)
    with copy.open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(ArtifactError, match="sha256"):
        TfidfClassifier({**meta, "path": str(copy)})
    with pytest.raises(ArtifactError, match="missing"):
        TfidfClassifier({**meta, "path": str(tmp_path / "gone.onnx")})


def test_corrupt_artifact_raises_artifact_error(artifacts, tmp_path):
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"not an onnx model")
    meta = {**artifacts["bbc-tfidf"], "path": str(corrupt), "sha256": sessions.file_sha256(corrupt)}
    with pytest.raises(ArtifactError, match="not a loadable ONNX model"):
        TfidfClassifier(meta)


def test_runtime_modules_import_neither_torch_nor_django():
    code = (
        "import sys; import workflows.runtimes.embed, workflows.runtimes.classify, "
        "workflows.runtimes.extract, workflows.runtimes.summarise, workflows.runtimes.sessions; "
        "bad = [m for m in ('torch', 'django', 'transformers', 'optimum') if m in sys.modules]; "
        "assert not bad, bad"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
