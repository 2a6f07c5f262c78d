"""Node config forms, built from the catalogue's ConfigField schema (no per-node form classes).

`parse_config` turns a posted form into a config dict plus the errors that stop a value from being
read at all (a word where a number goes). Everything else — required settings, ranges, unknown
model aliases — comes from `workflows.graph.validate`, so the side panel and the canvas marks say
the same thing in the same words.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.http import QueryDict
from django.utils.translation import gettext

from workflows.design import references, texts
from workflows.graph import CATALOG, Graph, Node, validate
from workflows.graph.catalog import ConfigField, NodeType

PREFIX = "cfg-"
CONFIG_CODES = {"missing_config", "invalid_config", "unresolved_model", "unresolved_endpoint", "unresolved_destination",
                "unknown_config"}
EXTRA_BRANCH_ROWS = 2


@dataclass
class FieldView:
    """One field as the panel template renders it."""

    spec: ConfigField
    widget: str
    value: Any = None
    options: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""

    @property
    def name(self) -> str:
        return PREFIX + self.spec.name

    @property
    def html_id(self) -> str:
        return "cfg-" + self.spec.name.replace("_", "-")


def _choices_for(spec: ConfigField, current: Any) -> list[tuple[str, str]]:
    try:
        if spec.kind == "model":
            options = list(references.model_choices(spec.model_kind))
        elif spec.kind == "destination":
            options = list(references.destination_choices())
        else:
            options = list(references.endpoint_choices())
    except Exception:  # no registry yet, or its tables are not migrated: fall back to free text
        options = []
    if options and isinstance(current, str) and current and current not in {v for v, _ in options}:
        options.insert(0, (current, gettext("%(ref)s (not registered)") % {"ref": current}))
    return options


def _display(spec: ConfigField, value: Any) -> Any:
    kind = spec.kind
    if kind == "mapping":
        if isinstance(value, dict):
            return "\n".join(f"{k}: {v}" for k, v in value.items())
        return "" if value is None else str(value)
    if kind in {"list", "fields"}:
        if spec.choices:
            return list(value) if isinstance(value, list) else []
        return ", ".join(str(v) for v in value) if isinstance(value, list) else ("" if value is None else str(value))
    if kind == "branches":
        rows = []
        for branch in value if isinstance(value, list) else []:
            if not isinstance(branch, dict):
                continue
            labels = branch.get("labels")
            rows.append({
                "name": branch.get("name", ""),
                "labels": ", ".join(str(x) for x in labels) if isinstance(labels, list) else "",
                "min_confidence": "" if branch.get("min_confidence") is None else branch["min_confidence"],
                "max_confidence": "" if branch.get("max_confidence") is None else branch["max_confidence"],
            })
        return rows + [{"name": "", "labels": "", "min_confidence": "", "max_confidence": ""}] * EXTRA_BRANCH_ROWS
    if kind == "bool":
        return bool(value)
    return "" if value is None else value


def _widget(spec: ConfigField, options: list[tuple[str, str]]) -> str:
    kind = spec.kind
    if kind in {"model", "endpoint", "destination"}:
        return "select" if options else "input"
    return {
        "text": "textarea", "int": "number", "float": "number", "bool": "checkbox", "choice": "select",
        "mapping": "mapping", "branches": "branches", "url": "input", "cron": "input", "string": "input",
        "fields": "input",
    }.get(kind, "multi" if kind == "list" and spec.choices else "input")


def field_views(node_type: NodeType, config: dict[str, Any], errors: dict[str, str],
                raw: dict[str, str] | None = None) -> list[FieldView]:
    """`raw`: what the user typed for fields that could not be read, shown back as typed."""
    merged = node_type.with_defaults(config)
    views = []
    for spec in node_type.config:
        value = merged.get(spec.name)
        if spec.kind in {"model", "endpoint", "destination"}:
            options = _choices_for(spec, value)
        elif spec.kind in {"choice", "list"}:
            options = [(c, c.replace("_", " ")) for c in spec.choices]
        else:
            options = []
        shown = raw[spec.name] if raw and isinstance(raw.get(spec.name), str) else _display(spec, value)
        views.append(FieldView(spec=texts.config_field(spec), widget=_widget(spec, options), value=shown,
                               options=options, error=errors.get(spec.name, "")))
    return views


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def _number(raw: str, spec: ConfigField) -> tuple[Any, str]:
    text = raw.strip().replace(",", ".") if spec.kind == "float" else raw.strip()
    try:
        return (int(text) if spec.kind == "int" else float(text)), ""
    except ValueError:
        return None, gettext("Enter a whole number.") if spec.kind == "int" else gettext("Enter a number, e.g. 0.8.")


def _parse_branches(data: QueryDict) -> tuple[list[dict[str, Any]], str]:
    rows: list[dict[str, Any]] = []
    index = 0
    while f"{PREFIX}branches-{index}-name" in data:
        get = lambda key, i=index: (data.get(f"{PREFIX}branches-{i}-{key}") or "").strip()  # noqa: E731
        name, labels, low, high = get("name"), get("labels"), get("min_confidence"), get("max_confidence")
        index += 1
        if not (name or labels or low or high):
            continue
        branch: dict[str, Any] = {"name": name}
        if labels:
            branch["labels"] = _split(labels)
        for key, raw in (("min_confidence", low), ("max_confidence", high)):
            if raw:
                try:
                    branch[key] = float(raw.replace(",", "."))
                except ValueError:
                    message = (gettext("Branch %(number)s: min confidence must be a number between 0 and 1.")
                               if key == "min_confidence" else
                               gettext("Branch %(number)s: max confidence must be a number between 0 and 1."))
                    return rows, message % {"number": index}
        rows.append(branch)
    return rows, ""


def parse_config(node_type: NodeType, data: QueryDict) -> tuple[dict[str, Any], dict[str, str]]:
    """Config from a posted panel form, and the fields that could not be read at all."""
    config: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in node_type.config:
        key = PREFIX + spec.name
        kind = spec.kind
        if kind == "bool":
            config[spec.name] = data.get(key) in {"on", "true", "1"}
            continue
        if kind == "list" and spec.choices:
            config[spec.name] = [v for v in spec.choices if v in data.getlist(key)]
            continue
        if kind == "branches":
            branches, error = _parse_branches(data)
            if error:
                errors[spec.name] = error
            if branches:
                config[spec.name] = branches
            continue
        raw = data.get(key)
        if raw is None:
            continue
        if kind in {"list", "fields"}:
            config[spec.name] = _split(raw)
            continue
        if kind != "text":
            raw = raw.strip()
        if raw == "":
            continue
        if kind in {"int", "float"}:
            value, error = _number(raw, spec)
            if error:
                errors[spec.name] = error
            else:
                config[spec.name] = value
        elif kind == "mapping":
            mapping: dict[str, str] = {}
            for number, line in enumerate(raw.splitlines(), start=1):
                if not line.strip():
                    continue
                label, sep, description = line.partition(":")
                if not sep or not label.strip():
                    errors[spec.name] = gettext("Line %(number)s: write 'label: a sentence describing it'.") % {
                        "number": number}
                    break
                mapping[label.strip()] = description.strip()
            config[spec.name] = mapping
        else:
            config[spec.name] = raw
    return config, errors


def config_problems(node_id: str, node_type: NodeType, config: dict[str, Any]) -> dict[str, str]:
    """The validator's messages about this node's settings, by field name (the first per field)."""
    graph = Graph(nodes=(Node(id=node_id or "node", type=node_type.type, config=config),))
    try:
        extra = references.graph_resolvers()
    except Exception:
        extra = {}
    found: dict[str, str] = {}
    for problem in validate(graph, **extra):
        if problem.code in CONFIG_CODES and problem.field and problem.node == (node_id or "node"):
            found.setdefault(problem.field, texts.translate(problem.message))
    return found


def config_from_query(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def node_type_or_none(name: str | None) -> NodeType | None:
    return CATALOG.get(name or "")
