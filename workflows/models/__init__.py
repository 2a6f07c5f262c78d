from __future__ import annotations

from .audit import AuditEntry
from .graph import Workflow, WorkflowVersion

__all__ = ["AuditEntry", "Workflow", "WorkflowVersion"]
