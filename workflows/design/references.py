"""A graph's references into the registry: what the pure validator and the canvas ask of the
database (does this alias or endpoint exist, what may be chosen), and, when a run starts, every model
reference pinned to a concrete version and the data-residency policy applied to its endpoints."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext

from workflows.design.texts import translate
from workflows.graph import CATALOG
from workflows.graph.text import _
from workflows.graph.validate import Problem
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


def learned_key(node_id: str) -> str:
    """Where a run's pins keep the learned classifier of a zero-shot step."""
    return f"learned:{node_id}"


def _model_refs(graph: Any):
    """(node, reference, config) for every model reference the graph's nodes use."""
    for node in graph.nodes:
        node_type = CATALOG.get(node.type)
        if node_type is None:
            continue
        config = node_type.with_defaults(node.config)
        if not node_type.uses_model(config):
            continue
        for spec in node_type.config:
            ref = config.get(spec.name)
            if spec.kind == "model" and isinstance(ref, str) and ref:
                yield node, ref, config


def _unapproved(node: Any, ref: str, version: Any) -> Problem:
    return Problem("unapproved_pin", _("Node '%(node)s' pins %(ref)s, a version no validator approved: use an alias "
                                       "such as %(alias)s, or ask for %(ref)s to be promoted first.",
                                       node=node.id, ref=ref, alias=f"{version.model.name}@production"),
                   node=node.id, field="model")


def resolve_models(graph: Any, workflow: Any = None) -> dict[str, dict[str, Any]]:
    """Pin every model reference of a graph to a concrete version (a run records this at start).

    A zero-shot classify step whose own classifier (governance/classifiers.py) has a production
    version is pinned to that version too, under learned_key(node): the step decides with it.
    Raises LookupError naming the first reference that does not resolve or was never approved.
    """
    pins: dict[str, dict[str, Any]] = {}
    if workflow is not None and getattr(workflow, "pk", None):
        for model in registry.RegisteredModel.objects.filter(origin_workflow=workflow).exclude(origin_node=""):
            production = model.alias("production")
            if production is not None:
                pins[learned_key(model.origin_node)] = production.pin()
    for node, ref, config in _model_refs(graph):
        if ref in pins:
            continue
        try:
            version = registry.resolve(ref)
        except LookupError as exc:
            raise LookupError(gettext("Node '%(node)s': %(error)s") % {"node": node.id, "error": exc}) from None
        if not approved_pin(ref, version):
            raise LookupError(translate(_unapproved(node, ref, version).message))
        pins[ref] = version.pin()
        if config.get("shadow"):
            shadow_ref = f"{registry.parse_ref(ref)[0]}@shadow"
            if registry.alias_exists(shadow_ref):
                pins[shadow_ref] = registry.resolve(shadow_ref).pin()
    return pins


def approved_pin(ref: str, version: Any) -> bool:
    """Four eyes cover pins too: a reference by version number (`name:v3`) may run only a version
    that an approved promotion once made an alias target, or that an alias points at now (the
    packaged models' first aliases were set at installation). Aliases always may."""
    if registry.parse_ref(ref)[1] is not None:
        return True
    if version.aliases.exists():
        return True
    return registry.PromotionRequest.objects.filter(version=version, status=registry.PromotionRequest.APPROVED).exists()


def unapproved_pins(graph: Any) -> list[Problem]:
    """Every version pin of a graph no validator approved, as problems of the saved version (a
    reference that does not resolve is the validator's to report)."""
    problems = []
    for node, ref, _config in _model_refs(graph):
        try:
            version = registry.resolve(ref)
        except LookupError:
            continue
        if not approved_pin(ref, version):
            problems.append(_unapproved(node, ref, version))
    return problems


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
