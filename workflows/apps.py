from __future__ import annotations

from django.apps import AppConfig


class WorkflowsConfig(AppConfig):
    name = "workflows"
    verbose_name = "Cognitive Factory"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The imports wait for ready(): they import models, importable only once the registry is.
        from django.contrib.auth.signals import user_logged_in

        from workflows import accounts_audit  # who may do what changes through accounts: audited too
        from workflows.design import publishing  # publishing checks what a run start checks: the handlers too
        from workflows.engine import wakeup  # every enqueue wakes the idle workers (LISTEN/NOTIFY, FIFOs)
        from workflows.engine.nodes.base import missing_handlers

        # the worker broadcasts a coalesced update after each commit; sockets end with the session or
        # the role that opened them
        from workflows.live import broadcast, revocation
        from workflows.notifications import inbox  # e-mails start in the language the pages are read in

        if missing_handlers not in publishing.PLAN_CHECKS:
            publishing.PLAN_CHECKS.append(missing_handlers)
        broadcast.install()
        revocation.install()
        wakeup.install()
        accounts_audit.install()
        user_logged_in.connect(inbox.language_at_login, dispatch_uid="notifications-language-at-login")
