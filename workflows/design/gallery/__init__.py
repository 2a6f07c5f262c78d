"""The templates gallery: complete, runnable workflows for the common use cases, as JSON files."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from django.utils.translation import gettext

from workflows.design.versions import create_workflow
from workflows.graph import parse_graph
from workflows.models import Workflow

HERE = Path(__file__).parent


def templates() -> list[dict[str, Any]]:
    """Each template: slug, name, description, graph."""
    found = []
    for path in sorted(HERE.glob("*.json")):
        data = json.loads(path.read_text())
        data["slug"] = path.stem
        found.append(data)
    return found


def translated(template: dict[str, Any]) -> dict[str, Any]:
    """The template in the reader's language: its name, description and node labels (their msgids are
    listed in gallery/texts.py for makemessages). The files stay English; so does what load_templates
    stores at set-up, when nobody's language is known."""
    shown = copy.deepcopy(template)
    shown["name"] = gettext(template["name"])
    description = template.get("description", "")
    shown["description"] = gettext(description) if description else ""  # gettext("") is the catalogue's header
    for node in shown.get("graph", {}).get("nodes", []):
        if node.get("label"):
            node["label"] = gettext(node["label"])
    return shown


def sample_items(slug: str) -> list[dict[str, Any]]:
    """Demo documents for a template (English and Italian), written by us for the demo and the tests."""
    path = HERE / "samples" / f"{slug}.jsonl"
    if not slug or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def get(slug: str) -> dict[str, Any] | None:
    return next((t for t in templates() if t["slug"] == slug), None)


def load_into_database(user: Any = None) -> list[tuple[str, bool]]:
    results = []
    for template in templates():
        if Workflow.objects.filter(template=template["slug"]).exists():
            results.append((template["name"], False))
            continue
        create_workflow(name=template["name"], description=template["description"],
                        graph=parse_graph(template["graph"]), user=user,
                        message=f"From template {template['slug']}", template=template["slug"])
        results.append((template["name"], True))
    return results
