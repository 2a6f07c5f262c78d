"""Runs and the decision ledger.

A Run pins one WorkflowVersion. Items are stored once; Shards are contiguous seq ranges (or an
explicit list of items, for resumed reviews and retried dead letters), one Django task each. A
Decision per (run, item, node) is both the ledger and the checkpoint. NodeStats is the live-metrics
source of truth, merged once per micro-batch in the same transaction as the decisions.
"""

from __future__ import annotations

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from workflows import statuses
from workflows.latency import quantile


class Run(models.Model):
    STATUS_CHOICES = [(s, s.replace("_", " ")) for s in statuses.RUN_STATUSES]
    ORIGINS = [("upload", _("upload")), ("rest", _("REST intake")), ("schedule", _("schedule")), ("api", _("API")),
               ("webhook", _("inbound webhook")), ("mailbox", _("mailbox"))]

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="runs")
    version = models.ForeignKey("workflows.WorkflowVersion", on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=24, choices=STATUS_CHOICES, default=statuses.QUEUED, db_index=True)
    origin = models.CharField(max_length=12, choices=ORIGINS, default="upload")
    source_node = models.CharField(max_length=64)
    # A live run (REST intake) stays open: items keep arriving and it never finishes on its own.
    is_live = models.BooleanField(default=False)
    # A test run of a version that was not the live one when it started (a designer's explicit choice):
    # the run page says so, since its results are not what intake would have produced.
    draft = models.BooleanField(default=False)
    # Every model reference of the graph resolved at start: {ref: {"name", "version", "sha256", ...}}.
    resolved_models = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    shard_size = models.PositiveIntegerField()
    batch_size = models.PositiveIntegerField()
    input_name = models.CharField(max_length=255, blank=True)
    mapping = models.JSONField(default=dict, blank=True)
    items_total = models.PositiveIntegerField(default=0)
    items_done = models.PositiveIntegerField(default=0)
    items_dead = models.PositiveIntegerField(default=0)
    items_parked = models.PositiveIntegerField(default=0)
    # Items [0, sharded_upto) belong to a shard; the tail of a live run waits for the next flush.
    sharded_upto = models.PositiveIntegerField(default=0)
    last_intake_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        indexes = [models.Index(fields=["workflow", "is_live", "status"])]

    def __str__(self) -> str:
        return f"Run {self.pk} of {self.version}"

    @property
    def is_active(self) -> bool:
        return self.status in statuses.ACTIVE_RUN_STATUSES

    @property
    def items_finished(self) -> int:
        return self.items_done + self.items_dead

    @property
    def progress(self) -> float:
        return (self.items_finished / self.items_total) if self.items_total else 0.0


class Item(models.Model):
    PENDING, DONE, PARKED, DEAD = "pending", "done", "parked", "dead"
    STATUS_CHOICES = [(s, s) for s in (PENDING, DONE, PARKED, DEAD)]

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="items")
    seq = models.PositiveIntegerField()
    payload = models.JSONField(encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=8, choices=STATUS_CHOICES, default=PENDING)
    received_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="unique_item_seq")]
        indexes = [models.Index(fields=["run", "status"])]

    def __str__(self) -> str:
        return f"item {self.seq} of run {self.run_id}"


class Shard(models.Model):
    # FAILED: given up after ENGINE_MAX_SHARD_ATTEMPTS stale attempts; its pending items are dead letters.
    QUEUED, RUNNING, DONE, CANCELLED, FAILED = "queued", "running", "done", "cancelled", "failed"
    STATUS_CHOICES = [(s, s) for s in (QUEUED, RUNNING, DONE, CANCELLED, FAILED)]

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="shards")
    start_seq = models.PositiveIntegerField()
    end_seq = models.PositiveIntegerField(help_text="Exclusive.")
    # Set for a shard of chosen items (resumed reviews, retried dead letters) instead of a range.
    item_ids = models.JSONField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=STATUS_CHOICES, default=QUEUED, db_index=True)
    # The fence: a worker commits only while the shard still carries the attempt it was given.
    attempt = models.PositiveIntegerField(default=1)
    heartbeat = models.DateTimeField(default=timezone.now)
    worker = models.CharField(max_length=80, blank=True)
    task_id = models.CharField(max_length=64, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "id"]
        indexes = [models.Index(fields=["status", "heartbeat"])]

    def __str__(self) -> str:
        return f"shard {self.pk} [{self.start_seq}, {self.end_seq}) of run {self.run_id}"


class Decision(models.Model):
    """One node's output for one item: the ledger row and the checkpoint."""

    # No index of its own: the unique (run, item, node) index starts with run.
    # No database FK constraints either (deletes still cascade, in Django): the executor is the only
    # writer and decides items it has just read from this run, while PostgreSQL's checks cost ~7 µs a
    # row and took a KEY SHARE lock on the item for every node of every micro-batch (bench/engine.py).
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="decisions", db_index=False,
                            db_constraint=False)
    # Nor an index on item: every reader knows the item's run, and (run, item, …) is the unique
    # index's prefix. Decisions go with their run (the FK above cascades), never item by item.
    item = models.ForeignKey(Item, on_delete=models.DO_NOTHING, related_name="decisions", db_index=False,
                             db_constraint=False)
    node = models.CharField(max_length=64)
    model_ref = models.CharField(max_length=200, blank=True)
    output = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    label = models.CharField(max_length=120, null=True, blank=True)  # noqa: DJ001 (NULL = the node gives no label)
    confidence = models.FloatField(null=True, blank=True)
    port = models.CharField(max_length=64, blank=True,
                            help_text="The route taken; 'parked' or 'dead' when it stopped here.")
    latency_ms = models.FloatField(default=0)
    error = models.TextField(blank=True)
    attempt = models.PositiveSmallIntegerField(default=1, help_text="Tries this node took for the item.")
    # Reproducibility: dynamic int8 quantises per batch, so an item's scores depend on the items it
    # was batched with; the batch is recorded to replay a decision exactly.
    batch_id = models.CharField(max_length=40, blank=True)
    batch_size = models.PositiveSmallIntegerField(default=1)
    shard_attempt = models.PositiveIntegerField(default=1)
    # Filled in by the database (the executor's COPY leaves it out: one timestamp less to parse a row).
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        ordering = ["item_id", "id"]
        # One index besides the key, paid on every write of the hottest table: (run, item, node) is the
        # uniqueness and serves an item's trace, checkpoint reads, exports and the KPI rollup; it is
        # in the order the executor writes (items ascending), so inserts land on its rightmost page
        # ((run, node, item) plus an item_id index cost PostgreSQL 3.5 µs more a row). Only labelled
        # rows (classifiers) carry a second, (run, label).
        constraints = [models.UniqueConstraint(fields=["run", "item", "node"], name="unique_decision_run_item_node")]
        indexes = [models.Index(fields=["run", "label"], name="decision_run_label",
                                condition=models.Q(label__isnull=False))]

    def __str__(self) -> str:
        return f"{self.node} on item {self.item_id}: {self.port}"


class NodeStats(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="node_stats")
    node = models.CharField(max_length=64)
    items_in = models.PositiveIntegerField(default=0)
    ports = models.JSONField(default=dict, help_text="{port: items out}")
    errors = models.PositiveIntegerField(default=0)
    retries = models.PositiveIntegerField(default=0)
    latency_hist = models.JSONField(default=dict, help_text="{log2 bucket: count}, see engine/stats.py")
    latency_sum_ms = models.FloatField(default=0)
    labels = models.JSONField(default=dict)
    confidence_hist = models.JSONField(default=dict, help_text="{decile: count}")
    cpu_seconds = models.FloatField(default=0)
    extra = models.JSONField(default=dict, help_text="Summed handler stats, e.g. tokens.")
    batches = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["run", "node"]
        constraints = [models.UniqueConstraint(fields=["run", "node"], name="unique_node_stats")]
        verbose_name_plural = "node stats"

    def __str__(self) -> str:
        return f"stats of {self.node} in run {self.run_id}"

    @property
    def p50_ms(self) -> float | None:
        return quantile(self.latency_hist, 0.5)

    @property
    def p95_ms(self) -> float | None:
        return quantile(self.latency_hist, 0.95)

    @property
    def items_out(self) -> int:
        return sum(self.ports.values())


class DeadLetter(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="dead_letters")
    item = models.ForeignKey(Item, on_delete=models.CASCADE, related_name="dead_letters")
    node = models.CharField(max_length=64)
    reason = models.TextField()
    error_code = models.CharField(max_length=60, blank=True)
    attempts = models.PositiveSmallIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    retried_at = models.DateTimeField(null=True, blank=True)
    retried_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["run", "id"]
        indexes = [models.Index(fields=["run", "retried_at"])]

    def __str__(self) -> str:
        return f"dead letter: item {self.item_id} at {self.node}"
