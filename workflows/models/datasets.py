"""Stored data sets and the schedules that run workflows on them."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from .teams import Team, general_team_pk


class Dataset(models.Model):
    """An uploaded batch file kept for scheduled runs (re-read at each run, so a new upload under the
    same name takes effect at the next firing). Named within its team: a schedule reads only the data
    sets of its workflow's team, and an upload replaces only its own team's data set of that name."""

    team = models.ForeignKey(Team, on_delete=models.PROTECT, related_name="datasets", default=general_team_pk)
    name = models.SlugField(max_length=80)
    filename = models.CharField(max_length=255)
    content = models.BinaryField()
    size = models.PositiveIntegerField()
    rows = models.PositiveIntegerField()
    columns = models.JSONField(default=list)
    mapping = models.JSONField(default=dict, blank=True, help_text="item field → column")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "team_id"]
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="unique_dataset_name_per_team")]

    def __str__(self) -> str:
        return f"{self.name} ({self.rows} rows)"


class Schedule(models.Model):
    """One source.schedule node of a workflow's latest version; kept in step when a version is saved."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="schedules")
    node = models.CharField(max_length=64)
    cron = models.CharField(max_length=120)
    dataset = models.CharField(max_length=80)
    enabled = models.BooleanField(default=True)
    next_fire_at = models.DateTimeField(null=True, blank=True, db_index=True)
    last_fired_at = models.DateTimeField(null=True, blank=True)
    last_run = models.ForeignKey("workflows.Run", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    last_error = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workflow", "node"], name="unique_schedule_per_node")]

    def __str__(self) -> str:
        return f"{self.workflow} · {self.node} · {self.cron}"
