from __future__ import annotations

from .audit import AuditCheckpoint, AuditEntry
from .blobs import BlobChunk, BlobHold, StoredBlob
from .budgets import SpendBudget
from .datasets import Dataset, Schedule
from .graph import Workflow, WorkflowVersion
from .inbound import Mailbox, MailboxMessage  # noqa: F401  (exported: mailboxes polled by the workers)
from .kpi import Baseline, KpiRefresh, KpiWeek, WeeklyPack
from .lifecycle import ErasureRequest
from .notifications import Notification, NotificationCheck, NotificationPreference, NotificationProfile
from .originals import Original
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
from .teams import Membership, Team
from .webhooks import WebhookDelivery, WebhookSource  # noqa: F401  (exported: inbound webhooks)

__all__ = [
           "Alias",
           "AuditCheckpoint",
           "AuditEntry",
           "Baseline",
           "BlobChunk",
           "BlobHold",
           "Dataset",
           "DeadLetter",
           "Decision",
           "ErasureRequest",
           "Item",
           "KpiRefresh",
           "KpiWeek",
           "LLMEndpoint",
           "Label",
           "LabelledSet",
           "Membership",
           "ModelJob",
           "ModelVersion",
           "NodeStats",
           "Notification",
           "NotificationCheck",
           "NotificationPreference",
           "NotificationProfile",
           "Original",
           "PromotionRequest",
           "RegisteredModel",
           "ReviewTask",
           "Run",
           "Schedule",
           "Shard",
           "SpendBudget",
           "StoredBlob",
           "Team",
           "WebhookDestination",
           "WeeklyPack",
           "Workflow",
           "WorkflowVersion",
]
