"""Resolvers the pure validator and the canvas use to check references into the database."""

from __future__ import annotations

from typing import Any


def graph_resolvers() -> dict[str, Any]:
    from workflows.models import registry

    return {"resolve_alias": registry.alias_exists, "resolve_endpoint": registry.endpoint_exists}


def model_choices(model_kind: str = "") -> list[tuple[str, str]]:
    from workflows.models import registry

    return registry.model_choices(model_kind)


def endpoint_choices() -> list[tuple[str, str]]:
    from workflows.models import registry

    return registry.endpoint_choices()


def resolve_models(graph: Any) -> dict[str, dict[str, Any]]:
    """Pin every model reference of a graph to a concrete version (a run records this at start).

    Raises LookupError naming the first reference that does not resolve.
    """
    from workflows.graph import CATALOG
    from workflows.models import registry

    pins: dict[str, dict[str, Any]] = {}
    for node in graph.nodes:
        node_type = CATALOG.get(node.type)
        if node_type is None:
            continue
        config = node_type.with_defaults(node.config)
        for spec in node_type.config:
            ref = config.get(spec.name)
            if spec.kind == "model" and isinstance(ref, str) and ref and ref not in pins:
                try:
                    pins[ref] = registry.resolve(ref).pin()
                except LookupError as exc:
                    raise LookupError(f"Node '{node.id}': {exc}") from None
    return pins
