"""Model jobs (train, optimise): created by the web process, run by a worker on queue `governance`."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from workflows.models.audit import record
from workflows.models.registry import ModelJob

from .tasks import run_model_job


def create_job(**fields: Any) -> ModelJob:
    with transaction.atomic():
        job = ModelJob.objects.create(**fields)
        record(f"model.{job.kind}.start", actor=job.created_by, obj=job, model=job.model.name,
               base=job.base_version.ref if job.base_version else None,  # a new classifier has none
               labelled_set=job.labelled_set.name if job.labelled_set else None, params=job.params)
        transaction.on_commit(lambda: enqueue(job.pk))
    return job


def enqueue(job_id: int) -> None:
    run_model_job.enqueue(job_id)


def progress(job: ModelJob, fraction: float, message: str) -> None:
    """Visible at once to the page polling the job (outside any transaction of the work)."""
    ModelJob.objects.filter(pk=job.pk).update(progress=round(min(max(fraction, 0.0), 1.0), 3), message=message[:300])


def claim(job_id: int) -> ModelJob | None:
    """Conditional update: exactly one worker runs a job."""
    if (ModelJob.objects.filter(pk=job_id, status=ModelJob.QUEUED)
            .update(status=ModelJob.RUNNING, message="started", heartbeat=timezone.now(),
                    attempts=F("attempts") + 1)) != 1:
        return None
    return ModelJob.objects.select_related("model", "base_version__model", "labelled_set", "created_by").get(pk=job_id)


def renew(job_id: int, attempt: int) -> bool:
    """The running job's heartbeat (a thread of its worker calls this); False once it is no longer ours."""
    return bool(ModelJob.objects.filter(pk=job_id, status=ModelJob.RUNNING, attempts=attempt)
                .update(heartbeat=timezone.now()))


def succeed(job: ModelJob, version: Any, report: dict[str, Any], created: bool) -> None:
    with transaction.atomic():
        ModelJob.objects.filter(pk=job.pk).update(status=ModelJob.SUCCEEDED, progress=1.0, result_version=version,
                                                  report=report, finished_at=timezone.now(),
                                                  message=f"registered {version.ref}" if created
                                                  else f"same artifact as {version.ref}")
        record(f"model.{job.kind}.finish", actor=job.created_by, obj=job, version=version.ref, created=created,
               sha256=version.sha256)


def fail(job: ModelJob, error: str) -> None:
    with transaction.atomic():
        ModelJob.objects.filter(pk=job.pk).update(status=ModelJob.FAILED, error=error[:4000],
                                                  finished_at=timezone.now(), message="failed")
        record(f"model.{job.kind}.failed", actor=job.created_by, obj=job, error=error[:500])
