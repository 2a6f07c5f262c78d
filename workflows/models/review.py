"""Human review: a parked item waits as a ReviewTask until someone decides it.

Deciding a task resumes the item downstream of its review node (engine/launch.py `decide_review`);
governance/review.py is the queue behind the review page and turns corrections into labels.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import pgettext_lazy


class ReviewTask(models.Model):
    OPEN, DECIDED = "open", "decided"
    STATUS_CHOICES = [(OPEN, "open"), (DECIDED, "decided")]
    # An escalation parks its item until decided; a spot check samples an item the model decided alone
    # (the item has gone on) so that accuracy is measured on what ran unattended too.
    ESCALATION, SPOT_CHECK = "escalation", "spot_check"
    KINDS = [(ESCALATION, pgettext_lazy("review task", "escalation")),
             (SPOT_CHECK, pgettext_lazy("review task", "spot check"))]

    run = models.ForeignKey("workflows.Run", on_delete=models.CASCADE, related_name="review_tasks")
    item = models.ForeignKey("workflows.Item", on_delete=models.CASCADE, related_name="review_tasks")
    node = models.CharField(max_length=64)
    queue = models.CharField(max_length=80, default="default", db_index=True)
    kind = models.CharField(max_length=12, choices=KINDS, default=ESCALATION)
    status = models.CharField(max_length=8, choices=STATUS_CHOICES, default=OPEN, db_index=True)
    # What the machine proposed (label, confidence, fields) and the reviewer's instructions.
    proposal = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    instructions = models.TextField(blank=True)
    # The reviewer's answer, merged into the item when it resumes: {"label": ..., "reviewed": true, ...}.
    result = models.JSONField(null=True, blank=True, encoder=DjangoJSONEncoder)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [models.UniqueConstraint(fields=["run", "item", "node"], name="unique_review_task")]

    def __str__(self) -> str:
        return f"review of item {self.item_id} at {self.node}"
