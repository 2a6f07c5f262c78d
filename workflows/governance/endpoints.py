"""Large-model endpoints, webhook destinations and each workflow's data-residency policy, as the
role holding `endpoint.manage` registers them: one write path for the page and the API, so both check
the same rules and keep the same audit entry (the values before and after)."""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils.translation import gettext

from workflows.graph import CATALOG
from workflows.models import LLMEndpoint, WebhookDestination, Workflow
from workflows.models.audit import record

# What a page or an API client may set. The monthly caps are what every run together may spend on the
# endpoint in a calendar month (0: no cap); engine/budgets.py reserves against them, and a changed cap
# applies from the next call on.
ENDPOINT_FIELDS = ("name", "base_url", "model_name", "location", "region", "api_key_env",
                   "price_in_per_1k", "price_out_per_1k", "monthly_budget_tokens", "monthly_budget_eur", "enabled")
DESTINATION_FIELDS = ("name", "url", "location", "region", "enabled")
POLICY_FIELDS = ("allow_external_endpoints", "require_redaction")
# The create pages live at …/new/, so an object with that name could not be opened.
RESERVED_NAMES = frozenset({"new"})


def url_problem(location: str, url: str) -> str | None:
    """Documents sent outside the firm travel encrypted: an external address must be https."""
    scheme = urlsplit(url or "").scheme.lower()
    if location == LLMEndpoint.EXTERNAL and scheme != "https":
        return gettext("An external address must start with https://; documents leave the firm only encrypted.")
    if scheme not in {"http", "https"}:
        return gettext("Use an http:// or https:// address.")
    return None


def name_problem(name: str) -> str | None:
    if name in RESERVED_NAMES:
        return gettext("'%(name)s' is reserved; choose another name.") % {"name": name}
    return None


def cap_problem(value: Any) -> str | None:
    """A monthly cap (tokens or euros) must be 0 (no cap) or more."""
    if value is not None and value < 0:
        return gettext("A monthly cap cannot be negative; 0 means no cap.")
    return None


def key_is_set(endpoint: LLMEndpoint) -> bool:
    """Whether the server has the endpoint's API key. Pages and the API show this, never the key."""
    return bool(endpoint.api_key_env and os.environ.get(endpoint.api_key_env))


def _snapshot(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {name: str(getattr(obj, name)) if not isinstance(getattr(obj, name), bool) else getattr(obj, name)
            for name in fields}


def _save(obj: Any, values: dict[str, Any], fields: tuple[str, ...], action: str, user: Any) -> Any:
    with transaction.atomic():
        before = _snapshot(type(obj).objects.select_for_update().get(pk=obj.pk), fields) if obj.pk else None
        for name in fields:
            if name in values:
                setattr(obj, name, values[name])
        obj.save()
        record(f"{action}.{'update' if before else 'create'}", actor=user, obj=obj, before=before,
               after=_snapshot(obj, fields))
    return obj


def save_endpoint(endpoint: LLMEndpoint | None, values: dict[str, Any], *, user: Any) -> LLMEndpoint:
    """Create or change an endpoint with already validated `values` (ENDPOINT_FIELDS)."""
    return _save(endpoint or LLMEndpoint(), values, ENDPOINT_FIELDS, "endpoint", user)


def save_destination(destination: WebhookDestination | None, values: dict[str, Any], *,
                     user: Any) -> WebhookDestination:
    """Create or change a webhook destination with already validated `values` (DESTINATION_FIELDS)."""
    return _save(destination or WebhookDestination(), values, DESTINATION_FIELDS, "destination", user)


def save_policy(workflow: Workflow, values: dict[str, Any], *, user: Any) -> Workflow:
    """Set a workflow's data-residency policy; runs check it when they start (design/references.py)."""
    with transaction.atomic():
        current = Workflow.objects.select_for_update().get(pk=workflow.pk)
        before = {name: getattr(current, name) for name in POLICY_FIELDS}
        after = {name: bool(values.get(name, before[name])) for name in POLICY_FIELDS}
        Workflow.objects.filter(pk=workflow.pk).update(**after)
        for name, value in after.items():
            setattr(workflow, name, value)
        record("workflow.residency", actor=user, obj=workflow, before=before, after=after)
    return workflow


def usage(among: Any = None) -> tuple[dict[str, list[Workflow]], dict[str, list[Workflow]]]:
    """Which workflows' latest versions call each endpoint and post to each destination, by name.
    `among`: the workflows to look at (a queryset: those a reader may see; None: every one)."""
    endpoints: dict[str, list[Workflow]] = {}
    destinations: dict[str, list[Workflow]] = {}
    for workflow in (Workflow.objects.all() if among is None else among).listed():
        latest = workflow.latest
        if latest is None:
            continue
        called, posted = set(), set()
        for node in latest.graph.get("nodes", []):
            node_type = CATALOG.get(node.get("type"))
            if node_type is None:
                continue
            config = node_type.with_defaults(node.get("config") or {})
            if node.get("type") == "summarise" and config.get("method", "extractive") != "abstractive":
                continue  # an extractive summary calls no endpoint (as design/references.py reads it)
            for spec in node_type.config:
                value = config.get(spec.name)
                if spec.kind == "endpoint" and isinstance(value, str) and value:
                    called.add(value)
                elif spec.kind == "destination" and isinstance(value, str) and value:
                    posted.add(value)
        for name in called:
            endpoints.setdefault(name, []).append(workflow)
        for name in posted:
            destinations.setdefault(name, []).append(workflow)
    return endpoints, destinations
