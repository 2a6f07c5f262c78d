"""The one runtime for trained heads: fed what its graph declares ("text", "embedding" or both); a
head that reads only text loads no embedder, the heads trained before text heads still run."""

from __future__ import annotations

import numpy as np
import pytest

from workflows.governance import candidates
from workflows.runtimes.classify import HeadClassifier, head_inputs
from workflows.runtimes.sessions import ArtifactError

TEXTS = ["la fattura è sbagliata", "invoice charged twice", "errore di login", "the app crashes",
         "rimborso del pagamento", "server outage again", "pagamento doppio", "crash al avvio"] * 3
LABELS = ["billing", "billing", "technical", "technical", "billing", "technical", "billing", "technical"] * 3


def _stored(tmp_path, data: bytes) -> dict:
    import hashlib

    path = tmp_path / "head.onnx"
    path.write_bytes(data)
    return {"name": "head", "path": str(path), "sha256": hashlib.sha256(data).hexdigest(), "labels": ["billing",
            "technical"], "params": {"probabilities_output": "probabilities"}}


def test_a_text_only_head_runs_without_an_embedder(tmp_path):
    head = candidates.fit_head("tfidf", 10.0, TEXTS, LABELS, None)
    meta = _stored(tmp_path, candidates.export(head, temperature=1.0))
    assert head_inputs(meta) == ["text"]
    runtime = HeadClassifier(meta, None)
    assert runtime.embedder is None
    out = runtime.run([{"text": "Una FATTURA\n\n sbagliata"}, {"text": "crash   again"}, {"text": ""}])
    assert [o.get("label") for o in out[:2]] == ["billing", "technical"] and "error" in out[2]
    expected = head.probabilities(["Una FATTURA\n\n sbagliata"], None)[0]
    assert abs(out[0]["scores"]["billing"] - float(expected[0])) < 1e-4


def test_a_head_that_reads_embeddings_refuses_to_run_without_its_embedder(tmp_path):
    vectors = np.random.default_rng(0).normal(size=(len(TEXTS), 8)).astype(np.float32)
    head = candidates.fit_head("both", 1.0, TEXTS, LABELS, vectors)
    meta = _stored(tmp_path, candidates.export(head))
    assert head_inputs(meta) == ["text", "embedding"]
    with pytest.raises(ArtifactError, match="embedder"):
        HeadClassifier(meta, None)


@pytest.mark.slow
def test_a_head_trained_before_text_heads_still_runs_on_its_embedder(artifacts):
    runtime = HeadClassifier(artifacts["bbc-head"], artifacts["minilm-int8"])
    assert head_inputs(artifacts["bbc-head"]) == ["embedding"] and runtime.embedder is not None
    out = runtime.run([{"text": "The striker scored twice as the club won the cup final."}])
    assert out[0]["label"] == "sport"
