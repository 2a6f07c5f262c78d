"""Data lifecycle: erasure requests, and what of a reviewer's answer the audit log may keep.

An erasure request never stores the identifier it was made for (an e-mail address, a codice fiscale,
a name): only a keyed, salted hash of it, so the table and the audit log can prove that a request was
honoured without holding the personal data that was erased. The confirmation token is stored hashed
too; the person confirming sends the identifier again and it must hash to the same value.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

LABEL_LENGTH = 120


class ErasureRequest(models.Model):
    SEARCHED, ERASED = "searched", "erased"
    STATUSES = [(SEARCHED, "searched"), (ERASED, "erased")]

    token_hash = models.CharField(max_length=64, unique=True)
    salt = models.CharField(max_length=32)
    identifier_hash = models.CharField(max_length=64, help_text="HMAC-SHA256 of the salt and the identifier.")
    kind = models.CharField(max_length=20, help_text="What the identifier looked like: email, tax_code or name.")
    status = models.CharField(max_length=10, choices=STATUSES, default=SEARCHED)
    found = models.JSONField(default=dict, help_text="{kind of record: count} when searched.")
    erased = models.JSONField(default=dict, blank=True, help_text="{kind of record: count} when erased.")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    erased_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                  related_name="+")
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"erasure request {self.pk} ({self.status})"


def review_answer_for_audit(result: dict[str, Any] | None) -> dict[str, Any]:
    """What a review decision's audit entry keeps of the reviewer's answer: the class label (one of the
    step's labels, never a document's words), whether it corrected the model, and the names of the
    outputs changed. The corrected values and a note are a document's data (a name, an IBAN, an
    e-mail typed into a field): they stay in the review task and the labels, which retention and
    erasure reach, and never enter the append-only log."""
    result = result or {}
    label = result.get("label")
    changed = [f"fields.{name}" for name in sorted(result.get("fields") or {})]
    changed += sorted(k for k in result if k not in {"label", "fields", "note", "corrected", "reviewed"})
    return {"label": str(label)[:LABEL_LENGTH] if label else None, "corrected": bool(result.get("corrected")),
            "changed": changed, "note": bool(result.get("note"))}
