"""Large-model spending caps kept in the database, shared by every worker.

A budget kept in a worker's memory is one copy per process: N workers could spend N times the cap.
One row per (run, node) and one per (endpoint, month) instead, reserved with a conditional UPDATE
(engine/budgets.py), so the row lock makes concurrent reservations queue up and the cap holds.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class SpendBudget(models.Model):
    NODE, ENDPOINT = "node", "endpoint"
    scope = models.CharField(max_length=10, choices=[(NODE, "node in a run"), (ENDPOINT, "endpoint in a month")])
    run = models.ForeignKey("workflows.Run", null=True, blank=True, on_delete=models.CASCADE, related_name="budgets")
    node = models.CharField(max_length=64, blank=True)
    endpoint = models.CharField(max_length=80, blank=True)
    month = models.CharField(max_length=7, blank=True, help_text="YYYY-MM, for an endpoint's monthly budget.")
    # 0: no cap (spend is still counted, so a cap set mid-month knows what was already spent).
    cap_tokens = models.BigIntegerField(default=0)
    cap_eur = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    reserved_tokens = models.BigIntegerField(default=0)
    reserved_eur = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    spent_tokens = models.BigIntegerField(default=0)
    spent_eur = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    refused = models.PositiveIntegerField(default=0, help_text="Calls not made because the budget was spent.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["scope", "node", "endpoint", "month"]
        constraints = [
            models.UniqueConstraint(fields=["run", "node"], condition=Q(scope="node"), name="unique_node_budget"),
            models.UniqueConstraint(fields=["endpoint", "month"], condition=Q(scope="endpoint"),
                                    name="unique_endpoint_budget"),
        ]

    def __str__(self) -> str:
        where = f"run {self.run_id} node {self.node}" if self.scope == self.NODE else f"{self.endpoint} {self.month}"
        return f"budget of {where}"

    @property
    def exhausted(self) -> bool:
        return bool(self.refused) or bool(self.cap_tokens and self.spent_tokens >= self.cap_tokens) or \
            bool(self.cap_eur and self.spent_eur >= self.cap_eur)
