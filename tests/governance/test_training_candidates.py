"""Training that uses the data: candidate families compared by cross-validation, the winner refit on
every label and calibrated, its ONNX graph equal to scikit-learn's; a new classifier (no version
yet) trained from its step's review labels."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from tests.builders import edge, make_workflow, node
from workflows.governance import candidates, classifiers, training
from workflows.governance.labelsets import content_hash
from workflows.governance.tasks import run_model_job
from workflows.models import Label, ModelJob

WORDS = {"billing": ["invoice", "refund", "fattura", "pagamento", "charged"],
         "technical": ["crash", "error", "errore", "bloccato", "outage"],
         "account": ["password", "login", "accesso", "profilo", "username"]}
FILLER = ["please", "today", "again", "per favore", "grazie", "my", "the", "ancora", "hello", "ciao"]


def tickets(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """Short bilingual tickets whose label is said by one of its words."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = sorted(WORDS)[i % 3]
        words = [str(rng.choice(FILLER)) for _ in range(4)] + [str(rng.choice(WORDS[label]))]
        rng.shuffle(words)
        texts.append((" ".join(words)).capitalize() + ("!" if i % 2 else "  ?"))
        labels.append(label)
    return texts, labels


def test_cross_validation_picks_the_family_the_data_favours_and_records_the_table():
    texts, labels = tickets(90)
    noise = np.random.default_rng(1).normal(size=(90, 16)).astype(np.float32)
    noise /= np.linalg.norm(noise, axis=1, keepdims=True)
    folds = candidates.Folds.make(texts, labels, noise)
    table, _ = candidates.cross_validate(folds, families=candidates.FAMILIES)
    assert {(r["family"], r["C"]) for r in table} == {(f, C) for f in candidates.FAMILIES for C in candidates.C_GRID}
    assert all(0 <= r["macro_f1_mean"] <= 1 and r["macro_f1_std"] >= 0 for r in table)
    assert candidates.best(table)["family"] != "embedding"  # the words carry the label, the vectors are noise
    assert candidates.best(table, "tfidf")["macro_f1_mean"] > 0.9 > candidates.best(table, "embedding")["macro_f1_mean"]

    signal = np.eye(3, 16, dtype=np.float32)[[sorted(WORDS).index(label) for label in labels]] + 0.1 * noise
    shuffled = list(np.random.default_rng(2).permutation(texts))  # now the texts say nothing
    folds = candidates.Folds.make(shuffled, labels, signal)
    table, _ = candidates.cross_validate(folds, families=candidates.FAMILIES)
    assert candidates.best(table)["family"] != "tfidf"


def test_temperature_fitted_out_of_fold_makes_overconfident_probabilities_honest():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=600)
    logits = rng.normal(size=(600, 3))
    logits[np.arange(600), y] += 1.0  # right about 60 % of the time …
    logits *= 6  # … and nearly always sure of itself
    folds = candidates.Folds.make([f"t{i}" for i in range(600)], [str(v) for v in y], None)
    result = candidates.calibration(folds, logits)
    assert result["temperature"] > 2 and result["ece_after"] < result["ece_before"] / 2


def test_the_exported_graph_gives_scikit_learns_probabilities_with_standard_ops():
    texts, labels = tickets(60)
    texts[0] = "PERCHÉ la FATTURA è  sbagliata?\n\nL'ho già   pagata"  # case, accents, runs of whitespace
    vectors = np.random.default_rng(3).normal(size=(60, 8)).astype(np.float32)
    for family in candidates.FAMILIES:
        head = candidates.fit_head(family, 3.0, texts, labels, vectors)
        data = candidates.export(head, temperature=0.7)
        used = vectors if family != "tfidf" else None
        unseen = texts + ["", "!!", "Ciao ERRORE   di LOGIN"]
        more = np.vstack([vectors, vectors[:3]]) if used is not None else None
        gap = np.abs(candidates.run_onnx(data, unseen, more) - head.probabilities(unseen, more, 0.7)).max()
        assert gap < 1e-4, (family, gap)
        model = onnx.load_from_string(data)
        defaults = [o for o in model.opset_import if o.domain in ("", "ai.onnx")]
        assert len(defaults) == 1
        assert {n.domain for n in model.graph.node} <= {"", "com.microsoft"}
        assert {n.op_type for n in model.graph.node if n.domain} <= {"Tokenizer"}  # no regex tokenizer in ONNX 18
        assert [i.name for i in model.graph.input] == head.inputs


def test_onnx_check_scores_each_candidate_graph_on_the_held_out_folds():
    texts, labels = tickets(60)
    folds = candidates.Folds.make(texts, labels, None)
    check = candidates.onnx_check(folds, "tfidf", 3.0)
    assert check["max_abs_diff"] < 1e-4 and check["onnx_macro_f1_mean"] > 0.8


# --- the job, on the real registry ---------------------------------------------------------------

LABELS = {"billing": "invoices, payments, refunds", "technical": "errors, crashes, outages",
          "account": "passwords, logins, the user's account"}


def step_graph():
    return {"nodes": [node("src", "source.upload", fields=["text"]),
                      node("cls", "classify", model="minilm@production", method="zero_shot", labels=LABELS),
                      node("out", "sink.table")],
            "edges": [edge("src", "cls"), edge("cls", "out")]}


@pytest.mark.django_db
@pytest.mark.slow
def test_a_new_classifier_with_no_version_trains_from_its_steps_review_labels(personas, packaged_models, client):
    workflow = make_workflow(personas["designer"], step_graph(), name="Learns from reviews")
    model = classifiers.classifier_for_node(workflow, "cls", user=personas["trainer"])
    assert not model.versions.exists()
    texts, labels = tickets(45)
    for text, label in zip(texts, labels, strict=True):
        Label.objects.create(model=model, text=text, label=label, source=Label.REVIEW, node="cls")
    Label.objects.create(model=model, text="IBAN IT60X0542811101000000123456", label="IT60X…", field="fields.iban")

    job = training.start_training(model, user=personas["trainer"])
    assert job.base_version is None and job.params["embedder"].startswith("minilm:")  # the step's own embedder
    assert run_model_job.call(job.pk) == ModelJob.SUCCEEDED, ModelJob.objects.get(pk=job.pk).error
    job.refresh_from_db()
    version = job.result_version
    assert (version.number, version.parent, version.runtime, version.trained_by) == (1, None, "head",
                                                                                    personas["trainer"])
    assert version.labels == sorted(WORDS)  # the labels of the data, not the field correction
    params, trained = version.meta["params"], version.meta["training"]
    assert params["training_hashes"] == sorted({content_hash(t) for t in texts})
    assert trained["family"] in candidates.FAMILIES and params["family"] == trained["family"]
    assert len(trained["cv"]) == 3 * len(candidates.C_GRID) and trained["folds"] == 5
    assert {"temperature", "ece_before", "ece_after"} <= set(trained["calibration"])
    assert [p["fraction"] for p in trained["learning_curve"]] == [0.25, 0.5, 1.0]
    assert {c["family"] for c in trained["onnx"]} == set(candidates.FAMILIES)
    assert all(c["max_abs_diff"] < 1e-4 for c in trained["onnx"]) and trained["final_max_abs_diff"] < 1e-4
    assert job.report["evaluation"]["train_items"] == 45 == version.metrics["train_items"]  # refit on all

    from workflows.engine.nodes import loader

    out = loader.load(version.pk).run([{"text": "Ho un errore, il sistema è bloccato"}])
    assert out[0]["label"] == "technical"
    client.force_login(personas["trainer"])
    for page in (f"/models/jobs/{job.pk}/", f"/models/{model.name}/", f"/models/{model.name}/v1/"):
        html = client.get(page).content.decode()
        assert 'id="learning-curve"' in html, page
    assert "optimise-button" not in client.get(f"/models/{model.name}/v1/").content.decode()


@pytest.mark.django_db
@pytest.mark.slow
def test_a_text_only_head_runs_without_any_embedder(personas, settings, tmp_path):
    """No embedder is registered at all: training falls back to the TF-IDF family, and the runtime
    loads the head without looking one up."""
    from workflows.engine.nodes import loader

    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    loader.clear()
    model = classifiers.create_classifier(name="tickets-new", labels=list(WORDS), user=personas["trainer"])
    texts, labels = tickets(30)
    for text, label in zip(texts, labels, strict=True):
        Label.objects.create(model=model, text=text, label=label, source=Label.REVIEW)
    job = training.start_training(model, user=personas["trainer"])
    assert job.params["embedder_sha256"] is None
    assert run_model_job.call(job.pk) == ModelJob.SUCCEEDED, ModelJob.objects.get(pk=job.pk).error
    version = ModelJob.objects.get(pk=job.pk).result_version
    assert version.meta["params"]["inputs"] == ["text"] and "embedder_sha256" not in version.meta["params"]
    runtime = loader.load(version.pk)
    assert runtime.embedder is None
    assert runtime.run([{"text": "la mia FATTURA   è sbagliata"}])[0]["label"] == "billing"
    loader.clear()
