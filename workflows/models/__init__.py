from __future__ import annotations

from .audit import AuditEntry
from .graph import Workflow, WorkflowVersion
from .registry import Alias, LLMEndpoint, ModelVersion, RegisteredModel

__all__ = ["Alias", "AuditEntry", "LLMEndpoint", "ModelVersion", "RegisteredModel", "Workflow", "WorkflowVersion"]
