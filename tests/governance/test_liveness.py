"""Governance work whose worker died is taken over, then failed with the reason: a training job or a
promotion's evidence is never left "running" for ever (it used to be, after a SIGKILL)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from tests.builders import register_model
from workflows.governance import jobs, liveness, promotion
from workflows.models.registry import LabelledSet, ModelJob, PromotionRequest, register_version

pytestmark = pytest.mark.django_db


def silent_since(settings) -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=settings.ENGINE_STALE_SECONDS + 5)


def new_job(personas) -> ModelJob:
    version = register_model("tickets", "classifier")
    return jobs.create_job(kind=ModelJob.TRAIN, model=version.model, base_version=version,
                           created_by=personas["trainer"])


def queued_tasks(name: str) -> int:
    return DBTaskResult.objects.filter(status="READY", task_path__endswith=name).count()


def test_a_job_whose_worker_died_is_taken_over_then_failed_with_the_reason(personas, settings,
                                                                          django_capture_on_commit_callbacks):
    settings.GOVERNANCE_MAX_ATTEMPTS = 2
    job = new_job(personas)
    before = queued_tasks("run_model_job")
    # A worker claimed it (attempt 1) and was killed: its heartbeat stopped.
    ModelJob.objects.filter(pk=job.pk).update(status=ModelJob.RUNNING, attempts=1, heartbeat=silent_since(settings))
    with django_capture_on_commit_callbacks(execute=True):
        assert liveness.tick()["jobs_taken_over"] == 1
    job.refresh_from_db()
    assert job.status == ModelJob.QUEUED and queued_tasks("run_model_job") == before + 1
    # The second worker died too.
    ModelJob.objects.filter(pk=job.pk).update(status=ModelJob.RUNNING, attempts=2, heartbeat=silent_since(settings))
    assert liveness.tick()["jobs_taken_over"] == 1
    job.refresh_from_db()
    assert job.status == ModelJob.FAILED and "stopped answering" in job.error and job.finished_at
    assert liveness.tick() == {"jobs_taken_over": 0, "evidence_taken_over": 0}


def test_a_job_that_is_still_beating_is_left_alone(personas, settings):
    job = new_job(personas)
    ModelJob.objects.filter(pk=job.pk).update(status=ModelJob.RUNNING, attempts=1, heartbeat=timezone.now())
    assert liveness.tick()["jobs_taken_over"] == 0


def test_evidence_whose_worker_died_is_computed_again_then_failed(personas, settings,
                                                                 django_capture_on_commit_callbacks):
    settings.GOVERNANCE_MAX_ATTEMPTS = 2
    v1 = register_model("tickets", "classifier")
    v2, _ = register_version(model_name="tickets", kind="classifier", meta={"sha256": "b" * 64, "size": 2},
                             source="trained", runtime="head", parent=v1, author=personas["trainer"],
                             trained_by=personas["trainer"])
    evaluation = LabelledSet.objects.create(name="eval", source="upload", model=v1.model, labels=["a", "b"],
                                            items=[{"text": "x", "label": "a"}, {"text": "y", "label": "b"}])
    request = promotion.request_promotion(v2, "production", user=personas["designer"], reason="x",
                                          labelled_set=evaluation)
    stale = PromotionRequest.objects.filter(pk=request.pk)
    stale.update(evidence_attempts=1, evidence_heartbeat=silent_since(settings))
    before = queued_tasks("compute_evidence")
    with django_capture_on_commit_callbacks(execute=True):
        assert liveness.tick()["evidence_taken_over"] == 1
    request.refresh_from_db()
    assert request.status == PromotionRequest.EVALUATING and request.evidence_heartbeat is None
    assert queued_tasks("compute_evidence") == before + 1
    stale.update(evidence_attempts=2, evidence_heartbeat=silent_since(settings))
    assert liveness.tick()["evidence_taken_over"] == 1
    request.refresh_from_db()
    assert request.status == PromotionRequest.EVIDENCE_FAILED and "stopped answering" in request.evidence_error
