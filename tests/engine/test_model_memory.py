"""A worker loads only the models its runs use, when they first use them, and drops the least
recently used past WORKER_MODEL_MEMORY_MB; each model reads the sequence length its card gives."""

from __future__ import annotations

import itertools

import pytest

from tests.builders import edge, make_user, make_workflow, node
from tests.engine.test_worker import wait_for
from tests.engine.test_worker import workers as workers  # the fixture, found by its name
from workflows import statuses
from workflows.engine import launch
from workflows.engine.nodes import loader
from workflows.models import Decision, ModelVersion
from workflows.runtimes import sessions
from workflows.runtimes.build import card_max_tokens, minilm_source, trained_max_tokens

PROBE = "workflows.engine.nodes.models,workflows.engine.nodes.llm,tests.engine.model_probe"
ARTICLE = ("The chancellor said on Tuesday that the economy grew faster than expected in the third quarter. "
           "Shares in the largest banks rose after the figures were published. Analysts had expected a slower "
           "quarter because exports fell in the summer. The opposition said the figures hide weak wages.")


def probe_graph():
    """A route node, which the probe answers for in the test's worker (tests/engine/model_probe.py)."""
    return {"nodes": [node("src", "source.upload"),
                      node("probe", "route", label_field="text", branches=[{"name": "never", "labels": ["-"]}]),
                      node("out", "sink.table")],
            "edges": [edge("src", "probe"), edge("probe", "out", source_port="else")]}


def line_graph():
    """Classify (news-topics' head on MiniLM), patterns, extractive summary (MiniLM): two models."""
    nodes = [node("src", "source.upload"), node("cls", "classify", model="news-topics@production"),
             node("ext", "extract", patterns=["email", "amount"], entities=[]),
             node("sum", "summarise", model="minilm@production", sentences=1), node("out", "sink.table")]
    ids = [n["id"] for n in nodes]
    return {"nodes": nodes, "edges": [edge(a, b) for a, b in itertools.pairwise(ids)]}


def probe(workflow, user, started) -> dict:
    run = wait_for(launch.create_run(workflow, user=user, items=[{"text": "ciao"}]), started)
    assert run.status == statuses.SUCCEEDED, (run.error, list(run.dead_letters.values_list("reason", flat=True)),
                                              started.logs())
    return Decision.objects.get(run=run, node="probe").output["probe"]


@pytest.mark.worker
@pytest.mark.slow
def test_a_worker_holds_no_model_until_a_run_uses_one_then_only_those(transactional_db, workers, packaged_models):
    user = make_user("op", "designer", "operator")
    prober = make_workflow(user, probe_graph(), name="Probe")
    line = make_workflow(user, line_graph(), name="Line")
    # The heartbeat renewed often: the first batch loads the models, seconds on a busy machine.
    w = workers(ENGINE_HANDLER_MODULES=PROBE, ENGINE_HEARTBEAT_SECONDS="0.3")
    w.start()

    idle = probe(prober, user, w)
    assert {k: idle[k] for k in ("runtimes", "sessions", "modules")} == {"runtimes": [], "sessions": [], "modules": []}

    run = wait_for(launch.create_run(line, user=user, items=[{"text": ARTICLE}] * 3), w)
    assert run.status == statuses.SUCCEEDED, (run.error, w.logs())
    held = probe(prober, user, w)
    head = packaged_models["bbc-head"]
    embedder = packaged_models["minilm-int8"]
    assert sorted(held["runtimes"]) == sorted([head.pk, embedder.pk])  # the classifier and the summariser
    assert set(held["sessions"]) == {head.sha256, embedder.sha256, embedder.meta["files"]["tokenizer"]["sha256"]}
    others = ModelVersion.objects.exclude(pk__in=[head.pk, embedder.pk]).values_list("sha256", flat=True)
    assert not set(held["sessions"]) & set(others)
    assert "torch" not in held["modules"] and "rapidocr" not in held["modules"]


@pytest.fixture
def fresh_loader():
    loader.clear()
    sessions.clear()
    yield
    loader.clear()
    sessions.clear()


def test_past_the_cap_the_least_recently_used_model_is_dropped_and_reloads_when_used(
        packaged_models, settings, fresh_loader):
    minilm, rampart = packaged_models["minilm-int8"], packaged_models["rampart"]
    items = [{"text": "Please refund Mario Rossi at mario.rossi@example.it"}]
    settings.WORKER_MODEL_MEMORY_MB = 10_000
    first = loader.load(minilm.pk, purpose="embed").run(items)
    loader.load(rampart.pk, purpose="extract", patterns=["email"], entities=["person"])
    assert [e["version_id"] for e in loader.cached()] == [minilm.pk, rampart.pk]  # under the cap: both kept

    loader.load(minilm.pk, purpose="embed")  # used again: rampart is now the least recently used
    settings.WORKER_MODEL_MEMORY_MB = 1  # smaller than either model
    loader.load(packaged_models["bbc-tfidf"].pk)
    assert [e["version_id"] for e in loader.cached()] == [packaged_models["bbc-tfidf"].pk]
    held = {key[0] if isinstance(key, tuple) else key for key in sessions.loaded()}
    assert minilm.sha256 not in held and rampart.sha256 not in held

    again = loader.load(minilm.pk, purpose="embed").run(items)  # loaded anew, the same answer
    assert again[0]["embedding"] == pytest.approx(first[0]["embedding"], abs=1e-6)
    assert [e["version_id"] for e in loader.cached()] == [minilm.pk]


def test_a_model_shared_by_two_runtimes_stays_while_one_of_them_is_kept(packaged_models, settings, fresh_loader):
    minilm = packaged_models["minilm-int8"]
    settings.WORKER_MODEL_MEMORY_MB = 10_000
    loader.load(minilm.pk, purpose="summarise", sentences=1)
    loader.load(minilm.pk, purpose="embed")
    settings.WORKER_MODEL_MEMORY_MB = 1
    loader.load(minilm.pk, purpose="zero_shot", labels={"a": "sport", "b": "politics"})
    assert len(loader.cached()) == 1
    assert minilm.sha256 in {key[0] for key in sessions.loaded() if isinstance(key, tuple)}


def test_minilm_reads_what_its_card_says_and_records_the_length_it_was_trained_at(built_artifacts):
    tokens, source = card_max_tokens(minilm_source())
    assert (tokens, trained_max_tokens(minilm_source())) == (256, 128)
    assert "sentence_bert_config.json" in source
    for name in ("minilm-fp32", "minilm-int8"):
        params = built_artifacts[name]["params"]
        assert (params["max_tokens"], params["max_tokens_source"], params["trained_max_tokens"]) == (256, source, 128)
    assert built_artifacts["e5-int8"]["params"]["max_tokens"] == 512
    assert built_artifacts["rampart"]["params"]["max_tokens"] == 512


def test_a_model_s_length_can_be_overridden_per_model(packaged_models, settings, fresh_loader):
    minilm = packaged_models["minilm-int8"]
    assert loader.load(minilm.pk, purpose="embed").max_tokens == 256
    loader.clear()
    settings.MODEL_MAX_TOKENS = {"minilm": 128}
    runtime = loader.load(minilm.pk, purpose="embed")
    assert runtime.max_tokens == 128
    [out] = runtime.run([{"text": "word " * 1000}])
    assert out["tokens"] == 128 and "128" in out["warnings"][0]
    head = loader.load(packaged_models["bbc-head"].pk)
    assert head.embedder.max_tokens == 128  # a head reads with its embedder's length


def test_card_length_of_a_folder_without_card_comes_from_its_config(tmp_path):
    (tmp_path / "config.json").write_text('{"max_position_embeddings": 512}')
    assert card_max_tokens(tmp_path) == (512, "position table (config.json: max_position_embeddings)")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="sequence length"):
        card_max_tokens(tmp_path)

