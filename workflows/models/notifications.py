"""Telling people: a notification per user, what each user wants to receive, and their e-mail language.

A notification keeps its kind and parameters, never its sentence: the text is rendered in the reader's
language when it is shown or e-mailed (workflows/notifications/texts.py). `key` names the event, so the
same event written twice (two workers, a retried check) notifies each person once.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy

DRIFT = "drift.alert"
REVIEW_BACKLOG = "review.backlog"
PROMOTION_WAITING = "promotion.waiting"
PROMOTION_DECIDED = "promotion.decided"
SCHEDULE_FAILED = "schedule.failed"
RUN_FAILED = "run.failed"
BUDGET_EXHAUSTED = "budget.exhausted"
PACK_READY = "pack.ready"
PUBLICATION_WAITING = "publication.waiting"
PUBLICATION_DECIDED = "publication.decided"
# What the preferences page lists, in this order, each with its name in the reader's language.
KINDS = {
    DRIFT: gettext_lazy("Drift alert on a model step"),
    REVIEW_BACKLOG: gettext_lazy("Review backlog over its limit"),
    PROMOTION_WAITING: gettext_lazy("Promotion waiting for your decision"),
    PROMOTION_DECIDED: gettext_lazy("Decision on your promotion request"),
    SCHEDULE_FAILED: gettext_lazy("Scheduled run did not start"),
    RUN_FAILED: gettext_lazy("Run failed"),
    BUDGET_EXHAUSTED: gettext_lazy("Large-model budget spent"),
    PACK_READY: gettext_lazy("Weekly pack ready to sign"),
    PUBLICATION_WAITING: gettext_lazy("Workflow publication waiting for your decision"),
    PUBLICATION_DECIDED: gettext_lazy("Decision on your workflow publication request"),
}


class Notification(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=40)
    params = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    link = models.CharField(max_length=500, blank=True)
    key = models.CharField(max_length=200, help_text="The event's name: one notification per user and event.")
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    in_app = models.BooleanField(default=True, help_text="Shown in the inbox and counted by the bell.")
    email = models.BooleanField(default=False, help_text="Goes out in the user's next e-mail digest.")
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="unique_notification_per_event")]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="notification_inbox"),
            # The bell asks on every page and every poll: only the unread rows are in this index.
            models.Index(fields=["user"], condition=Q(in_app=True, read_at__isnull=True), name="notification_unread"),
            # The digest duty looks for what is still to be e-mailed, every tick of every worker.
            models.Index(fields=["user"], condition=Q(email=True, emailed_at__isnull=True, read_at__isnull=True),
                         name="notification_to_email"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id} ({self.key})"


class NotificationPreference(models.Model):
    """What one user wants of one kind; no row means both (the defaults)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=40)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="unique_notification_preference")]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}: in app {self.in_app}, e-mail {self.email}"


class NotificationProfile(models.Model):
    """Per user: the language e-mails are written in ('' until the user picks one: settings.LANGUAGE_CODE)
    and when the last digest went, which the digest duty claims with a conditional UPDATE."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="+")
    language = models.CharField(max_length=10, blank=True)
    digest_sent_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"notification profile of {self.user_id}"


class NotificationCheck(models.Model):
    """When a periodic check (drift, review backlog, packs to sign) last ran: N workers tick, and the
    conditional UPDATE on `ran_at` lets one of them run each check once per period."""

    name = models.CharField(max_length=40, primary_key=True)
    ran_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} ran at {self.ran_at}"
