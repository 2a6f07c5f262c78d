"""Registry queries the pages and the API share."""

from __future__ import annotations

from typing import Any

from workflows.models import Workflow
from workflows.models.registry import parse_ref


def _refs(value: Any) -> list[str]:
    if isinstance(value, str):
        try:
            parse_ref(value)
        except LookupError:
            return []
        return [value]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _refs(v)]
    if isinstance(value, list):
        return [r for v in value for r in _refs(v)]
    return []


def workflows_using(model_name: str, among: Any = None) -> list[dict[str, Any]]:
    """Workflows whose latest version references the model: [{workflow, version, refs: {node: ref}}].
    `among`: the workflows to look at (a queryset: those a reader may see; None: every one)."""
    found = []
    for workflow in (Workflow.objects.all() if among is None else among).filter(archived=False):
        latest = workflow.latest
        if latest is None:
            continue
        refs = {}
        for node in latest.graph.get("nodes", []):
            for ref in _refs(node.get("config") or {}):
                if parse_ref(ref)[0] == model_name:
                    refs[node["id"]] = ref
        if refs:
            found.append({"workflow": workflow, "version": latest.number, "refs": refs})
    return found


def version_usage(version: Any, usage: list[dict[str, Any]]) -> list[str]:
    """Which of those workflows resolve to this exact version now (through an alias or by number)."""
    aliases = {a.name for a in version.aliases.all()}
    names = []
    for use in usage:
        for ref in use["refs"].values():
            _, alias, number = parse_ref(ref)
            if (alias and alias in aliases) or number == version.number:
                names.append(use["workflow"].name)
                break
    return names
