"""Mailboxes that feed a workflow, and the ledger of every message they took or dead-lettered.

The ledger row, not the IMAP \\Seen flag, decides whether a message was read: it is written in the
same transaction as the message's items (workflows/inbound/mailboxes.py), and its unique key
(mailbox, message key) refuses a second copy, so a crash between taking a message and flagging it
on the server never yields a duplicate.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Mailbox(models.Model):
    """One IMAP mailbox polled by the workers for one workflow. Always over TLS: IMAPS (TLS from the
    first byte) or STARTTLS (upgraded before the login); a plain-text login is never sent."""

    IMAPS, STARTTLS = "imaps", "starttls"
    SECURITY = [(IMAPS, "IMAPS"), (STARTTLS, "STARTTLS")]

    workflow = models.OneToOneField("workflows.Workflow", on_delete=models.CASCADE, related_name="mailbox")
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField(default=993)
    security = models.CharField(max_length=10, choices=SECURITY, default=IMAPS)
    username = models.CharField(max_length=255)
    # A Fernet token (workflows/inbound/secrets.py): a copy of the database alone does not reveal it.
    password_encrypted = models.TextField()
    folder = models.CharField(max_length=255, default="INBOX")
    processed_folder = models.CharField(max_length=255, blank=True,
                                        help_text="Taken messages are moved here; blank: they are flagged \\Seen.")
    poll_seconds = models.PositiveIntegerField(default=60)
    enabled = models.BooleanField(default=True)
    # The healthchecks claim: a worker polls a mailbox only if its conditional UPDATE moved both
    # next_poll_at and the lease (polling_until) from the values it read, so N workers poll it once; a
    # worker that dies mid-poll holds the lease until it expires.
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    polling_until = models.DateTimeField(null=True, blank=True)
    last_poll_at = models.DateTimeField(null=True, blank=True)
    # What the last poll or connection test ran into: a stage (dns, connect, tls, login, folder, …;
    # workflows/inbound/mailboxes.py words it in the reader's language) and the server's own words.
    last_error_code = models.CharField(max_length=20, blank=True)
    last_error = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.username}@{self.host}:{self.port}/{self.folder}"


class MailboxMessage(models.Model):
    """One message of a mailbox: pending while a worker reads it, then taken (with its items) or
    dead-lettered (with the reason). `attempts` counts reads that never finished (the worker died on
    it), so a message that kills its reader is dead-lettered instead of read for ever."""

    PENDING, TAKEN, DEAD = "pending", "taken", "dead"
    STATUSES = [(PENDING, "pending"), (TAKEN, "taken"), (DEAD, "dead-lettered")]

    mailbox = models.ForeignKey(Mailbox, on_delete=models.CASCADE, related_name="messages")
    # The Message-ID as the sender wrote it, or "sha256:<hex>" of the raw header when it has none
    # (or one too long to index).
    message_key = models.CharField(max_length=255)
    uidvalidity = models.BigIntegerField(null=True, blank=True)
    uid = models.BigIntegerField(null=True, blank=True)
    subject = models.CharField(max_length=255, blank=True)
    sender = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=STATUSES, default=PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    # Why it was dead-lettered: a code and its values, worded in the reader's language when shown.
    reason_code = models.CharField(max_length=30, blank=True)
    reason_params = models.JSONField(default=dict, blank=True)
    run = models.ForeignKey("workflows.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    item_ids = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["mailbox", "message_key"], name="mailbox_message_once")]

    def __str__(self) -> str:
        return f"{self.mailbox_id} · {self.message_key} · {self.status}"
