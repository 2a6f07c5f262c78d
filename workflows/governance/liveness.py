"""Governance work that survives a worker's death: a training or optimisation job, or a promotion's
evidence, whose worker stopped renewing its heartbeat is taken over by another worker, and after
GOVERNANCE_MAX_ATTEMPTS silent attempts failed with the reason, never left "running" for ever.

The worker's monitor thread runs `tick` beside the executor's duties (run_worker); every step is a
conditional UPDATE, so N workers ticking at once take each piece of work over once.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from workflows.models.audit import record
from workflows.models.registry import ModelJob, PromotionRequest

from .jobs import enqueue as enqueue_job
from .tasks import compute_evidence

logger = logging.getLogger(__name__)


def _why(attempts: int) -> str:
    return (f"the worker running it stopped answering (no heartbeat for {settings.ENGINE_STALE_SECONDS} s) "
            f"{attempts} time{'s' if attempts != 1 else ''}; start it again once the workers are healthy")


def take_over_jobs(cutoff: dt.datetime) -> int:
    moved = 0
    for job_id, attempts in ModelJob.objects.filter(status=ModelJob.RUNNING, heartbeat__lt=cutoff).values_list(
            "id", "attempts")[:100]:
        stale = ModelJob.objects.filter(pk=job_id, status=ModelJob.RUNNING, attempts=attempts, heartbeat__lt=cutoff)
        with transaction.atomic():
            if attempts >= settings.GOVERNANCE_MAX_ATTEMPTS:
                if stale.update(status=ModelJob.FAILED, error=f"Failed: {_why(attempts)}.", message="failed",
                                finished_at=timezone.now()):
                    job = ModelJob.objects.get(pk=job_id)
                    record(f"model.{job.kind}.failed", obj=job, error=_why(attempts))
                    moved += 1
            elif stale.update(status=ModelJob.QUEUED, message="taken over: its worker stopped answering"):
                transaction.on_commit(lambda job_id=job_id: enqueue_job(job_id))
                logger.warning("model job %s taken over after attempt %s", job_id, attempts)
                moved += 1
    return moved


def take_over_evidence(cutoff: dt.datetime) -> int:
    moved = 0
    for request_id, attempts in PromotionRequest.objects.filter(
            status=PromotionRequest.EVALUATING, evidence_heartbeat__lt=cutoff).values_list(
            "id", "evidence_attempts")[:100]:
        stale = PromotionRequest.objects.filter(pk=request_id, status=PromotionRequest.EVALUATING,
                                                evidence_attempts=attempts, evidence_heartbeat__lt=cutoff)
        with transaction.atomic():
            if attempts >= settings.GOVERNANCE_MAX_ATTEMPTS:
                if stale.update(status=PromotionRequest.EVIDENCE_FAILED, evidence_error=f"Failed: {_why(attempts)}."):
                    record("promotion.evidence_failed", obj=PromotionRequest.objects.get(pk=request_id),
                           error=_why(attempts))
                    moved += 1
            elif stale.update(evidence_heartbeat=None):
                transaction.on_commit(lambda request_id=request_id: compute_evidence.enqueue(request_id))
                logger.warning("evidence of promotion %s taken over after attempt %s", request_id, attempts)
                moved += 1
    return moved


def tick(now: dt.datetime | None = None) -> dict[str, int]:
    cutoff = (now or timezone.now()) - dt.timedelta(seconds=settings.ENGINE_STALE_SECONDS)
    return {"jobs_taken_over": take_over_jobs(cutoff), "evidence_taken_over": take_over_evidence(cutoff)}
