"""Governance work done by the workers (queue `governance`).

The queue stores these tasks by dotted path, and the modules that enqueue them (jobs.py,
promotion.py) are the ones the tasks call, so each task imports its work when it runs.
"""

from __future__ import annotations

import logging

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from django_tasks import task

from workflows.engine.heartbeat import Heartbeat
from workflows.models.audit import record
from workflows.models.registry import ModelJob, PromotionRequest

log = logging.getLogger(__name__)


@task(queue_name="governance")
def compute_evidence(request_id: int) -> str:
    # deferred: promotion.py enqueues this task and is imported by what the task imports
    from workflows.governance.evaluation import evidence_pack

    # Claimed by a conditional UPDATE: a request taken over after its worker went silent is computed
    # by one worker at a time, and the heartbeat thread keeps a long evaluation from looking dead.
    claimed = PromotionRequest.objects.filter(pk=request_id, status=PromotionRequest.EVALUATING).filter(
        Q(evidence_heartbeat__isnull=True)).update(evidence_heartbeat=timezone.now(),
                                                   evidence_attempts=F("evidence_attempts") + 1)
    request = PromotionRequest.objects.select_related("version__model", "labelled_set").get(pk=request_id)
    if not claimed or request.status != PromotionRequest.EVALUATING:
        return request.status
    attempt = request.evidence_attempts

    def renew() -> bool:
        return bool(PromotionRequest.objects.filter(pk=request_id, status=PromotionRequest.EVALUATING,
                                                    evidence_attempts=attempt).update(evidence_heartbeat=timezone.now()))

    try:
        with Heartbeat(renew, name=f"heartbeat-evidence-{request_id}"):
            pack = evidence_pack(request)
    except ValidationError as exc:  # a refusal (the labelled set no longer fits): its reason, as said
        return _evidence_failed(request, " ".join(exc.messages))
    except Exception as exc:  # the validator must see why evidence is missing, not a stuck request
        log.exception("evidence for promotion #%s failed", request_id)
        return _evidence_failed(request, f"{exc.__class__.__name__}: {exc}")
    with transaction.atomic():
        PromotionRequest.objects.filter(pk=request_id, status=PromotionRequest.EVALUATING).update(
            status=PromotionRequest.READY, evidence=pack)
        record("promotion.evidence_ready", obj=request, evaluation=bool(pack.get("evaluation")),
               replay=(pack.get("replay") or {}).get("n"))
    return PromotionRequest.READY


def _evidence_failed(request: PromotionRequest, error: str) -> str:
    with transaction.atomic():
        PromotionRequest.objects.filter(pk=request.pk, status=PromotionRequest.EVALUATING).update(
            status=PromotionRequest.EVIDENCE_FAILED, evidence_error=error[:2000])
        record("promotion.evidence_failed", obj=request, error=error[:500])
    return PromotionRequest.EVIDENCE_FAILED


@task(queue_name="governance")
def run_model_job(job_id: int) -> str:
    """Train or optimise; a failure is recorded on the job (the trainer sees why), never left running."""
    # deferred: jobs.py enqueues this task, so importing it at module level would be a cycle
    from workflows.governance import jobs

    job = jobs.claim(job_id)
    if job is None:
        return "skipped"
    attempt = ModelJob.objects.values_list("attempts", flat=True).get(pk=job_id)
    try:
        with Heartbeat(lambda: jobs.renew(job_id, attempt), name=f"heartbeat-job-{job_id}"):
            if job.kind == ModelJob.TRAIN:  # deferred: both import jobs.py (see above)
                from workflows.governance.training import run_training

                version, created, report = run_training(job)
            else:  # deferred: both import jobs.py (see above)
                from workflows.governance.optimise import run_optimise

                version, created, report = run_optimise(job)
    except Exception as exc:
        log.exception("model job #%s failed", job_id)
        jobs.fail(job, f"{exc.__class__.__name__}: {exc}")
        return ModelJob.FAILED
    jobs.succeed(job, version, report, created)
    return ModelJob.SUCCEEDED
