"""Two versions side by side, in words people read: graph.diff() says what changed; this module says it
with the settings' labels from the catalogue (translated), yes/no for switches, lists and mappings laid
out one entry a line, and the node types' titles. The page is templates/workflows/diff.html."""

from __future__ import annotations

import json
from typing import Any

from django.utils.translation import gettext

from workflows import formats
from workflows.graph import CATALOG, Graph, diff

from . import texts


def shown(value: Any) -> dict[str, Any]:
    """One value as a cell shows it: `text` for a scalar, `lines` for a list, `pairs` for a mapping."""
    if value is None:
        return {"text": "—", "empty": True}
    if isinstance(value, bool):
        return {"text": gettext("yes") if value else gettext("no")}
    if isinstance(value, int):
        return {"text": formats.number(value)}
    if isinstance(value, float):  # as many decimals as were typed (0.8, not 0.800), in the reader's locale
        typed = repr(value).partition(".")[2]
        return {"text": formats.number(value, min(4, len(typed)) if typed.isdigit() else 4)}
    if isinstance(value, list):
        if not value:
            return {"text": gettext("(empty list)"), "empty": True}
        return {"lines": [_inline(v) for v in value]}
    if isinstance(value, dict):
        if not value:
            return {"text": gettext("(nothing)"), "empty": True}
        return {"pairs": [(str(k), _inline(v)) for k, v in value.items()]}
    text = str(value)
    return {"text": text} if text else {"text": gettext("(empty)"), "empty": True}


def _inline(value: Any) -> str:
    """A value inside a list or mapping, on one line: a branch {name, min_confidence} reads
    `name: confident · min_confidence: 0.8`."""
    if isinstance(value, dict):
        return " · ".join(f"{k}: {_inline(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_inline(v) for v in value)
    item = shown(value)
    return item.get("text") or json.dumps(value, ensure_ascii=False, default=str)


NOT_SET = {"text": "", "missing": True}


def _labels(node_type: str) -> dict[str, str]:
    spec = CATALOG.get(node_type)
    return {f.name: texts.translate(f.label) for f in spec.config} if spec else {}


def _defaults(node_type: str) -> dict[str, Any]:
    spec = CATALOG.get(node_type)
    return {f.name: f.default for f in spec.config if f.default not in (None, "", [], {})} if spec else {}


def _unset(key: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """A setting left out: the node uses the catalogue's default, which is what a reader wants to know."""
    return {**NOT_SET, "default": _inline(defaults[key])} if key in defaults else NOT_SET


def _type_title(node_type: str) -> str:
    spec = CATALOG.get(node_type)
    return texts.translate(spec.title) if spec else node_type


def _rows(labels: dict[str, str], changes: list[dict[str, Any]], old_defaults: dict[str, Any],
          new_defaults: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": c["key"], "label": labels.get(c["key"], c["key"]),
             "old": shown(c["old"]) if "old" in c else _unset(c["key"], old_defaults),
             "new": shown(c["new"]) if "new" in c else _unset(c["key"], new_defaults)} for c in changes]


def _whole(node: dict[str, Any]) -> dict[str, Any]:
    """An added or removed node: its type, label and every setting."""
    labels = _labels(node["type"])
    config = node.get("config") or {}
    return {"id": node["id"], "type": node["type"], "title": _type_title(node["type"]), "label": node.get("label", ""),
            "settings": [{"key": k, "label": labels.get(k, k), "value": shown(v)} for k, v in config.items()]}


def side_by_side(old: Graph, new: Graph) -> dict[str, Any]:
    """The page's content: graph.diff() with labels and readable values."""
    found = diff(old, new)
    changed = []
    for entry in found["nodes"]["changed"]:
        node_id = entry["id"]
        before, after = old.by_id[node_id], new.by_id[node_id]
        rows = []
        if "type" in entry:
            rows.append({"key": "type", "label": gettext("Step"), "old": {"text": _type_title(before.type)},
                         "new": {"text": _type_title(after.type)}})
        if "label" in entry:
            rows.append({"key": "label", "label": gettext("Name on the canvas"),
                         "old": shown(before.label) if before.label else NOT_SET,
                         "new": shown(after.label) if after.label else NOT_SET})
        labels = {**_labels(before.type), **_labels(after.type)}
        rows += _rows(labels, entry.get("config", []), _defaults(before.type), _defaults(after.type))
        changed.append({"id": node_id, "title": _type_title(after.type), "label": after.label, "rows": rows})
    return {
        "identical": found["identical"],
        "moved": found["nodes"]["moved"],
        "added": [_whole(n) for n in found["nodes"]["added"]],
        "removed": [_whole(n) for n in found["nodes"]["removed"]],
        "changed": changed,
        "edges_added": found["edges"]["added"],
        "edges_removed": found["edges"]["removed"],
    }
