from __future__ import annotations

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Cognitive Factory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Both imports wait for ready(): they import models, importable only once the registry is.
        from workflows import accounts_audit  # who may do what changes through accounts: audited too
        from workflows.live import broadcast  # the worker broadcasts a coalesced update after each commit

        broadcast.install()
        accounts_audit.install()
