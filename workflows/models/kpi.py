"""Business KPIs: the baseline a business owner types in, weekly rollups of the ledger, signed packs.

Everything measured comes from the ledger (Decision), the items, review tasks, labels and NodeStats;
only the Baseline is typed in. `KpiWeek` is a cache of one workflow's ISO week (in TIME_ZONE) so the
dashboard reads a few rows instead of a million decisions; `WeeklyPack` is a signed snapshot and never
changes once written.
"""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from .immutable import ImmutableError, ImmutableModel


def _money(**kwargs: Any) -> models.DecimalField:
    return models.DecimalField(max_digits=10, decimal_places=4, validators=[MinValueValidator(Decimal("0"))], **kwargs)


class Baseline(models.Model):
    """How the work was done by hand, and the prices that turn the ledger into euros and grams."""

    workflow = models.OneToOneField("workflows.Workflow", on_delete=models.CASCADE, related_name="baseline")
    manual_minutes = models.DecimalField(
        "manual minutes per document", max_digits=8, decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("10000"))],
        help_text="Minutes a person spends on one document without the factory.")
    hourly_cost = models.DecimalField(
        "hourly cost (€/hour)", max_digits=8, decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10000"))],
        help_text="Fully loaded cost of one hour of the people doing the work.")
    manual_accuracy = models.DecimalField(
        "manual accuracy (%)", max_digits=5, decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("100"))])
    manual_cycle_hours = models.DecimalField(
        "manual cycle time (hours)", max_digits=8, decimal_places=2, null=True, blank=True,
        validators=[MinValueValidator(Decimal("0"))],
        help_text="Typical time from receipt to completion before the factory (optional).")
    sla_hours = models.DecimalField(
        "SLA target (hours)", max_digits=8, decimal_places=2,
        validators=[MinValueValidator(Decimal("0.01")), MaxValueValidator(Decimal("10000"))],
        help_text="Documents should be completed within this many hours of receipt.")
    review_minutes = models.DecimalField(
        "review minutes per item", max_digits=8, decimal_places=2,
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("10000"))],
        help_text="Minutes a reviewer spends on one parked item.")
    compute_eur_per_cpu_hour = _money(verbose_name="compute cost (€/CPU-hour)", default=Decimal("0.05"))
    large_model_eur_per_1k_tokens = _money(
        verbose_name="large-model price (€/1k tokens)", null=True, blank=True,
        help_text="Leave empty to use the cost each endpoint recorded in the ledger.")
    grid_g_co2_per_kwh = models.DecimalField(
        "grid factor (g CO₂/kWh)", max_digits=7, decimal_places=1, default=Decimal("250"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("2000"))])
    watts_per_core = models.DecimalField(
        "watts per busy core (W)", max_digits=6, decimal_places=1, default=Decimal("15"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("1000"))])
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    updated_at = models.DateTimeField(default=timezone.now)

    FIELDS = ("manual_minutes", "hourly_cost", "manual_accuracy", "manual_cycle_hours", "sla_hours", "review_minutes",
              "compute_eur_per_cpu_hour", "large_model_eur_per_1k_tokens", "grid_g_co2_per_kwh", "watts_per_core")

    def __str__(self) -> str:
        return f"baseline of {self.workflow_id}"

    def as_dict(self) -> dict[str, float | None]:
        return {f: (None if getattr(self, f) is None else float(getattr(self, f))) for f in self.FIELDS}


class KpiWeek(models.Model):
    """One workflow's ISO week of ledger facts (counts, sums, histograms): a cache, rebuilt at will."""

    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.CASCADE, related_name="kpi_weeks")
    week_start = models.DateField(help_text="Monday of the ISO week, Europe/Rome.")
    facts = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    computed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workflow", "week_start"]
        constraints = [models.UniqueConstraint(fields=["workflow", "week_start"], name="unique_kpi_week")]

    def __str__(self) -> str:
        return f"KPIs of {self.workflow_id} for the week of {self.week_start}"


class KpiRefresh(models.Model):
    """Per workflow: ledger changes after `mark` are not yet in its KpiWeek rows."""

    workflow = models.OneToOneField("workflows.Workflow", on_delete=models.CASCADE, related_name="kpi_refresh")
    mark = models.DateTimeField()

    def __str__(self) -> str:
        return f"KPIs of {self.workflow_id} fresh up to {self.mark}"


class SignedPackError(ImmutableError):
    pass


class WeeklyPack(ImmutableModel):
    """A weekly review pack as the business owner signed it: a frozen snapshot, never edited."""

    immutable_error = SignedPackError
    change_refused = "A signed weekly pack is immutable."
    delete_refused = "A signed weekly pack is archived for good and cannot be deleted."


    workflow = models.ForeignKey("workflows.Workflow", on_delete=models.PROTECT, related_name="weekly_packs")
    week_start = models.DateField()
    iso_year = models.PositiveSmallIntegerField()
    iso_week = models.PositiveSmallIntegerField()
    content = models.JSONField(encoder=DjangoJSONEncoder)
    sha256 = models.CharField(max_length=64)
    note = models.TextField(blank=True)
    partial_week = models.BooleanField(default=False, help_text="Signed before the week was over.")
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    signed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["workflow", "-week_start"]
        constraints = [models.UniqueConstraint(fields=["workflow", "week_start"], name="unique_weekly_pack")]

    def __str__(self) -> str:
        return f"{self.iso_year}-W{self.iso_week:02d} pack of {self.workflow_id}"

    @staticmethod
    def digest(content: Any) -> str:
        encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder).encode()
        return hashlib.sha256(encoded).hexdigest()

    @property
    def intact(self) -> bool:
        return self.digest(self.content) == self.sha256
