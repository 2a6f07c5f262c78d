from __future__ import annotations

from .audit import AuditEntry
from .budgets import SpendBudget
from .datasets import Dataset, Schedule
from .graph import Workflow, WorkflowVersion
from .kpi import Baseline, KpiRefresh, KpiWeek, WeeklyPack
from .registry import (
    Alias,
    Label,
    LabelledSet,
    LLMEndpoint,
    ModelJob,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
    WebhookDestination,
)
from .review import ReviewTask
from .runs import DeadLetter, Decision, Item, NodeStats, Run, Shard

__all__ = [
           "Alias",
           "AuditEntry",
           "Baseline",
           "Dataset",
           "DeadLetter",
           "Decision",
           "Item",
           "KpiRefresh",
           "KpiWeek",
           "LLMEndpoint",
           "Label",
           "LabelledSet",
           "ModelJob",
           "ModelVersion",
           "NodeStats",
           "PromotionRequest",
           "RegisteredModel",
           "ReviewTask",
           "Run",
           "Schedule",
           "Shard",
           "SpendBudget",
           "WebhookDestination",
           "WeeklyPack",
           "Workflow",
           "WorkflowVersion",
]
