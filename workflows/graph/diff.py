"""What changed between two versions of a graph: nodes, edges and config, added / removed / changed."""

from __future__ import annotations

from typing import Any

from .spec import Graph

_MISSING = object()


def _config_changes(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    changes = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key, _MISSING), new.get(key, _MISSING)
        if before == after:
            continue
        if before is _MISSING:
            changes.append({"key": key, "change": "added", "new": after})
        elif after is _MISSING:
            changes.append({"key": key, "change": "removed", "old": before})
        else:
            changes.append({"key": key, "change": "changed", "old": before, "new": after})
    return changes


def diff(old: Graph, new: Graph) -> dict[str, Any]:
    """A structured diff. Moves on the canvas are listed apart: they change no behaviour."""
    old_nodes, new_nodes = old.by_id, new.by_id
    added = [new_nodes[i].to_json() for i in new_nodes if i not in old_nodes]
    removed = [old_nodes[i].to_json() for i in old_nodes if i not in new_nodes]
    changed, moved = [], []
    for node_id in old_nodes.keys() & new_nodes.keys():
        a, b = old_nodes[node_id], new_nodes[node_id]
        entry: dict[str, Any] = {"id": node_id}
        if a.type != b.type:
            entry["type"] = {"old": a.type, "new": b.type}
        if a.label != b.label:
            entry["label"] = {"old": a.label, "new": b.label}
        config = _config_changes(a.config, b.config)
        if config:
            entry["config"] = config
        if len(entry) > 1:
            changed.append(entry)
        elif a.position != b.position:
            moved.append(node_id)
    old_edges = {(e.source, e.source_port, e.target, e.target_port) for e in old.edges}
    new_edges = {(e.source, e.source_port, e.target, e.target_port) for e in new.edges}
    keys = ("source", "source_port", "target", "target_port")
    return {
        "nodes": {
            "added": sorted(added, key=lambda n: n["id"]),
            "removed": sorted(removed, key=lambda n: n["id"]),
            "changed": sorted(changed, key=lambda n: n["id"]),
            "moved": sorted(moved),
        },
        "edges": {
            "added": [dict(zip(keys, e, strict=True)) for e in sorted(new_edges - old_edges)],
            "removed": [dict(zip(keys, e, strict=True)) for e in sorted(old_edges - new_edges)],
        },
        "identical": not (added or removed or changed or new_edges ^ old_edges),
    }
