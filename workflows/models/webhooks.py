"""Inbound webhooks: sources that third-party systems push their own JSON to, and the ledger of what
each delivered. (Not the webhook *destinations* of registry.py, where results go out.)

The HMAC secret is read back to verify each delivery, so it is kept encrypted (inbound/secrets.py),
never hashed; pages show only its last four characters. Writes go through inbound/webhooks.py.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

DEFAULT_REPLAY_WINDOW = 300  # seconds either side of the server's clock


class WebhookSource(models.Model):
    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="webhook_sources")
    name = models.CharField(max_length=120)
    # The public part of the URL (/hooks/<slug>/): random, so that one source's URL says nothing of another's.
    slug = models.CharField(max_length=40, unique=True)
    secret_encrypted = models.TextField()
    secret_last4 = models.CharField(max_length=4)
    # {item field: JSON pointer (RFC 6901)}, read from each element of `items_pointer` when it is set.
    mapping = models.JSONField(default=dict)
    items_pointer = models.CharField(max_length=500, blank=True)
    # Where the delivery's idempotency key is: blank for the Idempotency-Key header, else a pointer.
    idempotency_pointer = models.CharField(max_length=500, blank=True)
    replay_window = models.PositiveIntegerField(default=DEFAULT_REPLAY_WINDOW)
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    rotated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["workflow", "name"]
        constraints = [models.UniqueConstraint(fields=["workflow", "name"], name="unique_webhook_source_name")]

    def __str__(self) -> str:
        return f"{self.workflow} · {self.name}"


class WebhookDelivery(models.Model):
    """One authenticated delivery. An accepted one holds its idempotency key (once per source) and the
    items it made, so that a repeat is answered the same and creates nothing; a refused one keeps its
    reason for the source's page (only the last REFUSALS_KEPT per source)."""

    ACCEPTED, REFUSED = "accepted", "refused"
    STATUSES = [(ACCEPTED, _("Accepted")), (REFUSED, _("Refused"))]
    REFUSALS_KEPT = 50

    source = models.ForeignKey(WebhookSource, on_delete=models.CASCADE, related_name="deliveries")
    idempotency_key = models.CharField(max_length=255, blank=True)
    # SHA-256 of the payload as canonical JSON: a key reused for another payload is refused (409), while
    # a sender that re-serialises the same payload on retry (other key order, spacing) is not.
    payload_sha256 = models.CharField(max_length=64, blank=True)
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=12, choices=STATUSES)
    run = models.ForeignKey("workflows.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    item_ids = models.JSONField(default=list)
    reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["source", "idempotency_key"],
                                               condition=models.Q(status="accepted"),
                                               name="one_accepted_delivery_per_key")]
        indexes = [models.Index(fields=["source", "-received_at"], name="webhook_delivery_recent")]

    def __str__(self) -> str:
        return f"{self.source} · {self.idempotency_key or self.pk} · {self.status}"
