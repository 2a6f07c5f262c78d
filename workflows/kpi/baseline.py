"""The baseline a business owner types in (manual minutes, hourly cost, SLA…): one write path for
the page and the API, so both keep the same audit entry (the values before and after)."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from workflows.models import Baseline, Workflow
from workflows.models.audit import record


def save_baseline(workflow: Workflow, values: dict[str, Any], *, user: Any) -> Baseline:
    """Create or replace the workflow's baseline with already validated `values` (Baseline.FIELDS)."""
    with transaction.atomic():
        baseline = Baseline.objects.select_for_update().filter(workflow=workflow).first()
        before = baseline.as_dict() if baseline else None
        baseline = baseline or Baseline(workflow=workflow)
        for name in Baseline.FIELDS:
            if name in values:
                setattr(baseline, name, values[name])
        baseline.updated_by = user
        baseline.updated_at = timezone.now()
        baseline.save()
        record("kpi.baseline", actor=user, obj=workflow, before=before, after=baseline.as_dict())
    return baseline
