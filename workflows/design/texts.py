"""The pure packages' texts in the reader's language: where graph/ and statuses.py meet Django.

graph/ (the node catalogue, the validator, the graph parser) and statuses.py cannot import Django, so
they write English `Text`s (workflows/graph/text.py) that keep their msgid and parameters. Pages and the
API show them through this module, which translates at display time with the language that
LocaleMiddleware activated for the request (Accept-Language, or the language cookie).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.utils.translation import gettext, pgettext

from workflows import statuses
from workflows.graph import CATALOG, Problem
from workflows.graph.catalog import GROUPS, ConfigField, NodeType
from workflows.graph.text import Text


def translate(value: Any) -> Any:
    """A Text (or its stored JSON form) in the active language; anything else as it is."""
    if isinstance(value, dict) and "msgid" in value:
        value = Text.from_json(value)
    if not isinstance(value, Text) or not value.template:  # gettext("") would be the catalogue's header
        return value
    template = pgettext(value.context, value.template) if value.context else gettext(value.template)
    if not value.params:
        return template
    params = {key: translate(param) for key, param in value.params.items()}
    try:
        return template % params
    except (KeyError, ValueError, TypeError):
        return str(value)  # a translation that lost a placeholder: the English sentence, never a 500


def translate_all(values: Any) -> list[Any]:
    return [translate(v) for v in values]


def config_field(spec: ConfigField) -> ConfigField:
    return replace(spec, label=translate(spec.label), help=translate(spec.help))


def node_type(node_type: NodeType) -> NodeType:
    """The node type with its title, description and settings' labels and help translated (what the
    palette and the side panel show); its ports, schema and behaviour are the catalogue's."""
    return replace(node_type, title=translate(node_type.title), description=translate(node_type.description),
                   config=tuple(config_field(f) for f in node_type.config))


def group_title(group: str) -> str:
    return translate(GROUPS[group])


def catalog_json() -> list[dict[str, Any]]:
    """graph.catalog_json() in the reader's language."""
    found = []
    for entry in CATALOG.values():
        data = node_type(entry).to_json()
        data["group_title"] = group_title(entry.group)
        found.append(data)
    return found


def problem_json(problem: Problem | dict[str, Any]) -> dict[str, Any]:
    """A validation problem as the canvas and the API show it: its stored fields (`message` stays the
    English sentence, `msgid` and `params` what it was made of) plus `text`, in the reader's language.
    Problems stored before messages kept their msgid have only `message`: their `text` is that."""
    data = problem.to_json() if isinstance(problem, Problem) else dict(problem)
    data["text"] = translate(data) if "msgid" in data else data.get("message", "")
    return data


def problems_json(problems: Any) -> list[dict[str, Any]]:
    return [problem_json(p) for p in problems or []]


def status_label(status: str, kind: str = "run") -> str:
    """A run's (kind "run") or an item's (kind "item") status as a person reads it."""
    labels = statuses.ITEM_STATUS_LABELS if kind == "item" else statuses.RUN_STATUS_LABELS
    label = labels.get(status)
    return translate(label) if label is not None else status
