from __future__ import annotations

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Cognitive Factory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Live metrics: the worker broadcasts a coalesced update after each batch commit (push mode).
        from workflows.live.broadcast import install

        install()
