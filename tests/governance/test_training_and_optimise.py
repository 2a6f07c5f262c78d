"""Training a head from labels and optimising MiniLM to int8 (and refusing heads), in the worker task, on the
real artifacts."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from workflows.governance import optimise, training
from workflows.governance.labelsets import create_labelled_set
from workflows.governance.tasks import run_model_job
from workflows.models import ModelJob

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def packaged(artifacts, artifact_dir, settings):
    """The packaged models registered as `setup_models` does, against the cached test artifacts."""
    from workflows.engine.nodes import loader
    from workflows.management.commands.setup_models import register_metas

    settings.ARTIFACTS_DIR = artifact_dir
    loader.clear()
    versions = register_metas(artifacts, log=lambda line: None)
    yield versions
    loader.clear()


@pytest.fixture
def bbc_set(packaged, bbc, personas):
    train_x, train_y, _test_x, _test_y = bbc
    per_label: dict[str, int] = {}
    items = []
    for text, label in zip(train_x, train_y, strict=True):
        if per_label.get(label, 0) < 12:
            per_label[label] = per_label.get(label, 0) + 1
            items.append({"text": text[:600], "label": label,
                          "segment": {"length": "long" if len(text) > 2000 else "short"}})
    return create_labelled_set(name="bbc-60", items=items, user=personas["trainer"], model=packaged["bbc-head"].model)


def test_a_trainer_trains_a_head_from_labels_into_a_new_version(personas, packaged, bbc_set, client):
    model = packaged["bbc-head"].model
    with pytest.raises(PermissionDenied):
        training.start_training(model, user=personas["operator"], labelled_set=bbc_set)
    job = training.start_training(model, user=personas["trainer"], labelled_set=bbc_set, use_reviews=False)
    assert run_model_job.call(job.pk) == ModelJob.SUCCEEDED
    job.refresh_from_db()
    version = job.result_version
    assert (version.source == "trained" and version.parent == packaged["bbc-head"]
            and version.trained_by == personas["trainer"])
    assert (version.runtime == "head"
            and sorted(version.labels) == ["business", "entertainment", "politics", "sport", "tech"])
    # refit on every label; the numbers are the cross-validated ones (each document held out once)
    assert job.progress == 1.0 and job.report["evaluation"]["train_items"] == 60 and version.metrics["accuracy"] >= 0.6
    assert version.meta["training"]["family"] in {"embedding", "tfidf", "both"}
    from workflows.engine.nodes import loader

    out = loader.load(version.pk).run([{"text": "The striker scored twice as the club won the cup final."}])
    assert out[0]["label"] == "sport"
    client.force_login(personas["trainer"])
    page = client.get(f"/models/jobs/{job.pk}/").content.decode()
    assert version.ref in page and "Cross-validated evaluation" in page and 'id="learning-curve"' in page


def test_a_trainer_optimises_minilm_to_int8_with_size_throughput_and_quality(personas, packaged, bbc_set, client):
    fp32 = packaged["minilm-fp32"]
    assert optimise.can_optimise(packaged["minilm-int8"])  # already int8: refused
    client.force_login(personas["trainer"])
    response = client.post(f"/models/minilm/v{fp32.number}/optimise/",
                           {"labelled_set": bbc_set.pk, "per_channel": "on"})
    job = ModelJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/models/jobs/{job.pk}/"
    assert run_model_job.call(job.pk) == ModelJob.SUCCEEDED
    job.refresh_from_db()
    version, report = job.result_version, job.report
    assert version.source == "quantised" and version.parent == fp32 and version.meta["params"]["precision"] == "int8"
    assert report["size"]["ratio"] < 0.5
    assert report["quality"]["cosine_mean"] > 0.95 and report["quality"]["centroid_accuracy"]["parent"] is not None
    assert report["throughput"]["candidate_items_per_s"] > 0
    page = client.get(f"/models/jobs/{job.pk}/").content.decode()
    assert "Throughput" in page and "Cosine to parent" in page


def test_optimising_a_trained_head_is_refused_when_asked_and_not_offered(personas, packaged, client):
    """A head is a few kilobytes of linear algebra over its features: int8 buys nothing, and the
    quantiser cannot read its graph (the job used to die in the worker). Refused before any job."""
    from django.core.exceptions import ValidationError

    head = packaged["bbc-head"]
    with pytest.raises(ValidationError) as refused:
        job = optimise.start_optimise(head, user=personas["trainer"])
        run_model_job.call(job.pk)  # as a worker does: today it fails there, after a job was offered and queued
        job.refresh_from_db()
        pytest.fail(f"an optimise job was queued and ended {job.status}: {job.error[:120]}")
    assert "head" in " ".join(refused.value.messages) and not ModelJob.objects.exists()
    client.force_login(personas["trainer"])
    page = client.get(f"/models/news-topics/v{head.number}/").content.decode()
    assert 'id="optimise-button"' not in page and "int8" in page
    response = client.post(f"/models/news-topics/v{head.number}/optimise/", {})
    assert response.status_code == 302 and not ModelJob.objects.exists()
