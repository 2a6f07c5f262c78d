"""What the audit log's actions and data read as, in the reader's language.

The log keeps each action as a stable code ("run.start": searchable, exported, hashed into the chain);
people read its title. A code without a title (a newer one, or one an older version wrote) is shown as
it is. tests/test_audit_texts.py finds every action the code records and fails on one without a title.
"""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext_lazy as _

TITLES: dict[str, Any] = {
    "access.denied": _("Access refused"),
    "audit.verify": _("Audit chain verified"),
    "auth.lockout": _("Sign-in locked after failed attempts"),
    "dataset.store": _("Data set stored"),
    "destination.create": _("Webhook destination registered"),
    "destination.update": _("Webhook destination changed"),
    "drift.route_all_to_review": _("Drift: every document sent to review"),
    "drift.keep_draft": _("Drift: the draft in progress kept on top"),
    "endpoint.create": _("Large-model endpoint registered"),
    "endpoint.update": _("Large-model endpoint changed"),
    "erasure.erase": _("Personal data erased on request"),
    "erasure.search": _("Personal data searched for erasure"),
    "kpi.baseline": _("KPI baseline set"),
    "kpi.pack.sign": _("Weekly pack signed"),
    "labelled_set.create": _("Labelled set added"),
    "mailbox.create": _("Mailbox connected"),
    "mailbox.delete": _("Mailbox removed"),
    "mailbox.test": _("Mailbox connection tested"),
    "mailbox.update": _("Mailbox changed"),
    "model.alias.initial": _("Model alias set at installation"),
    "model.create": _("Model registered"),
    "model.import.refused": _("Model import refused"),
    "model.optimise.failed": _("Optimisation failed"),
    "model.optimise.finish": _("Optimisation finished"),
    "model.optimise.start": _("Optimisation started"),
    "model.train.failed": _("Training failed"),
    "model.train.finish": _("Training finished"),
    "model.train.start": _("Training started"),
    "model.version.register": _("Model version registered"),
    "promotion.approve": _("Promotion approved"),
    "promotion.cancel": _("Promotion request withdrawn"),
    "promotion.evidence_failed": _("Promotion evidence failed"),
    "promotion.evidence_ready": _("Promotion evidence ready"),
    "promotion.refused": _("Promotion decision refused (four eyes)"),
    "promotion.reject": _("Promotion rejected"),
    "promotion.request": _("Promotion requested"),
    "retention.purge": _("Documents purged (retention)"),
    "review.decide": _("Review decided"),
    "review.spot_check": _("Spot check answered"),
    "run.cancel": _("Run cancelled"),
    "run.finish": _("Run finished"),
    "run.retry_dead_letters": _("Failed documents retried"),
    "run.sample": _("Sample run started"),
    "run.start": _("Run started"),
    "schedule.failed": _("Scheduled run failed to start"),
    "shard.abandoned": _("Work given up after repeated failures"),
    "team.create": _("Team created"),
    "team.member.add": _("Team member added"),
    "team.member.remove": _("Team member removed"),
    "team.rename": _("Team renamed"),
    "team.delete": _("Team deleted"),
    "token.create": _("API token created"),
    "token.revoke": _("API token revoked"),
    "user.create": _("User created"),
    "user.delete": _("User deleted"),
    "user.password_change": _("Password changed"),
    "user.roles": _("Roles changed"),
    "user.update": _("User changed"),
    "webhook_source.create": _("Inbound webhook created"),
    "webhook_source.disable": _("Inbound webhook disabled"),
    "webhook_source.enable": _("Inbound webhook enabled"),
    "webhook_source.rotate": _("Inbound webhook secret rotated"),
    "webhook_source.update": _("Inbound webhook changed"),
    "workflow.archive": _("Workflow archived"),
    "workflow.create": _("Workflow created"),
    "workflow.delete": _("Workflow deleted"),
    "workflow.import": _("Workflow imported"),
    "workflow.publish.approve": _("Publication approved"),
    "workflow.publish.cancel": _("Publication request withdrawn"),
    "workflow.publish.policy": _("Publication policy changed"),
    "workflow.publish.refused": _("Publication decision refused (four eyes)"),
    "workflow.publish.reject": _("Publication rejected"),
    "workflow.publish.request": _("Publication requested"),
    "workflow.published": _("Version published"),
    "workflow.residency": _("Data-residency policy changed"),
    "workflow.restore": _("Workflow restored from the archive"),
    "workflow.retention": _("Retention period changed"),
    "workflow.template.use": _("Workflow created from a template"),
    "workflow.update": _("Workflow details changed"),
    "workflow.version.restore": _("Earlier version restored"),
    "workflow.version.save": _("Version saved"),
}

# The log's filter picks a family of actions by its first word.
FAMILIES: dict[str, Any] = {
    "access": _("Access"),
    "audit": _("Audit log"),
    "auth": _("Sign-in"),
    "dataset": _("Data sets"),
    "destination": _("Webhook destinations"),
    "drift": _("Drift"),
    "endpoint": _("Large-model endpoints"),
    "erasure": _("Erasure"),
    "kpi": _("KPIs"),
    "labelled_set": _("Labelled sets"),
    "mailbox": _("Mailboxes"),
    "model": _("Models"),
    "promotion": _("Promotions"),
    "retention": _("Retention"),
    "review": _("Review"),
    "run": _("Runs"),
    "schedule": _("Schedules"),
    "shard": _("Execution"),
    "team": _("Teams"),
    "token": _("API tokens"),
    "user": _("Users"),
    "webhook_source": _("Inbound webhooks"),
    "workflow": _("Workflows"),
}


def title(action: str) -> str:
    found = TITLES.get(action)
    return str(found) if found is not None else action


def family_title(prefix: str) -> str:
    found = FAMILIES.get(prefix)
    return str(found) if found is not None else prefix


def data_text(data: Any) -> str:
    """An entry's data as `key: value · key: value` (values as JSON when they are not plain)."""
    if not isinstance(data, dict):
        return "" if data in (None, "") else json.dumps(data, ensure_ascii=False, default=str)
    parts = []
    for key, value in data.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        parts.append(f"{key}: {shown}")
    return " · ".join(parts)
