from __future__ import annotations

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Cognitive Factory"
    default_auto_field = "django.db.models.BigAutoField"
