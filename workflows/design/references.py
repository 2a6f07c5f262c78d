"""A graph's references into the registry: what the pure validator and the canvas ask of the
database (does this alias or endpoint exist, what may be chosen), and, when a run starts, every model
reference pinned to a concrete version and the data-residency policy applied to its endpoints."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from workflows.graph import CATALOG
from workflows.models import LLMEndpoint, WebhookDestination, registry


def graph_resolvers() -> dict[str, Any]:
    return {"resolve_alias": registry.alias_exists, "resolve_endpoint": registry.endpoint_exists,
            "resolve_destination": registry.destination_exists}


def model_choices(model_kind: str = "") -> list[tuple[str, str]]:
    return registry.model_choices(model_kind)


def endpoint_choices() -> list[tuple[str, str]]:
    return registry.endpoint_choices()


def destination_choices() -> list[tuple[str, str]]:
    return registry.destination_choices()


def resolve_models(graph: Any) -> dict[str, dict[str, Any]]:
    """Pin every model reference of a graph to a concrete version (a run records this at start).

    Raises LookupError naming the first reference that does not resolve.
    """
    pins: dict[str, dict[str, Any]] = {}
    for node in graph.nodes:
        node_type = CATALOG.get(node.type)
        if node_type is None:
            continue
        config = node_type.with_defaults(node.config)
        if not node_type.uses_model(config):
            continue
        for spec in node_type.config:
            ref = config.get(spec.name)
            if spec.kind == "model" and isinstance(ref, str) and ref and ref not in pins:
                try:
                    pins[ref] = registry.resolve(ref).pin()
                except LookupError as exc:
                    raise LookupError(gettext("Node '%(node)s': %(error)s") % {"node": node.id, "error": exc}) from None
                if config.get("shadow"):
                    shadow_ref = f"{registry.parse_ref(ref)[0]}@shadow"
                    if registry.alias_exists(shadow_ref):
                        pins[shadow_ref] = registry.resolve(shadow_ref).pin()
    return pins


def policy_problems(workflow: Any, graph: Any) -> list[str]:
    """Data residency: every large-model endpoint the graph calls and every webhook destination it posts to
    must be allowed by the workflow's policy."""
    problems = []
    for node in graph.nodes:
        node_type = CATALOG.get(node.type)
        if node_type is None or not any(spec.kind == "endpoint" for spec in node_type.config):
            continue
        name = node_type.with_defaults(node.config).get("endpoint")
        if not name or (node.type == "summarise" and node.config.get("method", "extractive") != "abstractive"):
            continue
        endpoint = LLMEndpoint.objects.filter(name=name).first()
        if endpoint is None:
            continue  # the validator reports unknown endpoints
        if endpoint.location == LLMEndpoint.EXTERNAL and not workflow.allow_external_endpoints:
            problems.append(gettext("Node '%(node)s' calls '%(name)s', an external endpoint (%(region)s); this "
                                    "workflow's data-residency policy keeps documents in the firm. Use an on-premise "
                                    "endpoint, or let an administrator allow external endpoints for this workflow.")
                            % {"node": node.id, "name": name, "region": endpoint.region})
    for node in graph.nodes:
        if node.type != "sink.webhook":
            continue
        name = node.config.get("destination")
        destination = WebhookDestination.objects.filter(name=name).first() if isinstance(name, str) else None
        if (destination is not None and destination.location == WebhookDestination.EXTERNAL
                and not workflow.allow_external_endpoints):
            problems.append(gettext("Node '%(node)s' posts to '%(name)s', an external destination (%(region)s); "
                                    "this workflow's data-residency policy keeps documents in the firm. Use an "
                                    "on-premise destination, or let an administrator allow external endpoints for "
                                    "this workflow.") % {"node": node.id, "name": name, "region": destination.region})
    return problems
