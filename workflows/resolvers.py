"""Resolvers the pure validator uses to check references into the database (model aliases, endpoints).

The registry fills these in; until a model registry exists, references are checked for shape only.
"""

from __future__ import annotations

from typing import Any


def graph_resolvers() -> dict[str, Any]:
    resolvers: dict[str, Any] = {}
    try:
        from workflows.models import registry  # type: ignore[attr-defined]
    except ImportError:
        return resolvers
    if hasattr(registry, "alias_exists"):
        resolvers["resolve_alias"] = registry.alias_exists
    if hasattr(registry, "endpoint_exists"):
        resolvers["resolve_endpoint"] = registry.endpoint_exists
    return resolvers
