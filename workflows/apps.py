from __future__ import annotations

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Cognitive Factory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The imports wait for ready(): they import models, importable only once the registry is.
        from workflows import accounts_audit  # who may do what changes through accounts: audited too
        from workflows.engine import wakeup  # every enqueue wakes the idle workers (LISTEN/NOTIFY, FIFOs)

        # the worker broadcasts a coalesced update after each commit; sockets end with the session or
        # the role that opened them
        from workflows.live import broadcast, revocation

        broadcast.install()
        revocation.install()
        wakeup.install()
        accounts_audit.install()
