"""The templates gallery: complete, runnable workflows for the common use cases, as JSON files.

Each file holds the English template and, under "variants", the same workflow for other languages
(today Italian): a name, a description and per-node overrides (label, config keys) applied over the
English graph. A variant is more than a translation: its classifiers have label keys and
descriptions in its language and use the multilingual embedder (e5), which MiniLM is not (on the
Italian sample tickets, zero-shot triage is right 14 times in 16 with e5 and 9 with MiniLM; see
tests/test_gallery_italian.py). Prompts for the local large model stay English in every variant:
it reads and writes English only, and an Italian instruction made it answer in broken Italian.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import translation

from workflows.design.versions import create_workflow
from workflows.graph import parse_graph
from workflows.models import Workflow

HERE = Path(__file__).parent
SOURCE_LANGUAGE = "en"  # the language of each file's own name, description and graph


def templates() -> list[dict[str, Any]]:
    """Each template as its file holds it: slug, name, description, graph, variants."""
    found = []
    for path in sorted(HERE.glob("*.json")):
        data = json.loads(path.read_text())
        data["slug"] = path.stem
        found.append(data)
    return found


def get(slug: str) -> dict[str, Any] | None:
    return next((t for t in templates() if t["slug"] == slug), None)


def base_language(code: str | None) -> str:
    """"it-IT" → "it"; nothing → the site's default language."""
    return (code or settings.LANGUAGE_CODE).split("-")[0].split("_")[0].lower()


def languages(template: dict[str, Any]) -> list[str]:
    """The languages a template is written in: its own, then its variants'."""
    return [SOURCE_LANGUAGE, *sorted(template.get("variants") or {})]


def in_language(template: dict[str, Any], language: str | None = None) -> dict[str, Any]:
    """The template a reader of `language` (default: the active one) gets, with "language" set to the
    one it is written in. Its own variant when it has one; the English file as it is for English; else
    the English file with its name, description and node labels through the catalogue (their msgids
    are listed in gallery/texts.py for makemessages)."""
    language = base_language(language or translation.get_language())
    shown = copy.deepcopy(template)
    variants = shown.pop("variants", None) or {}
    shown["languages"] = languages(template)
    if language in variants:
        shown["language"] = language
        return _apply(shown, variants[language])
    shown["language"] = SOURCE_LANGUAGE
    if language == SOURCE_LANGUAGE:
        return shown
    with translation.override(language):
        shown["name"] = translation.gettext(shown["name"])
        description = shown.get("description", "")
        shown["description"] = translation.gettext(description) if description else ""  # gettext("") is the header
        for node in shown.get("graph", {}).get("nodes", []):
            if node.get("label"):
                node["label"] = translation.gettext(node["label"])
    return shown


def _apply(shown: dict[str, Any], variant: dict[str, Any]) -> dict[str, Any]:
    """A variant over the English template: its texts replace the English ones, and each config key it
    names replaces that key whole (a label set is the variant's, not a merge of both languages')."""
    shown["name"] = variant["name"]
    shown["description"] = variant.get("description", "")
    nodes = {node["id"]: node for node in shown["graph"]["nodes"]}
    for node_id, override in (variant.get("nodes") or {}).items():
        if node_id not in nodes:
            raise KeyError(f"template {shown.get('slug')}: the variant overrides node '{node_id}', which the graph "
                           "does not have")
        node = nodes[node_id]
        if "label" in override:
            node["label"] = override["label"]
        node["config"] = {**(node.get("config") or {}), **copy.deepcopy(override.get("config") or {})}
    return shown


def sample_items(slug: str, language: str | None = None) -> list[dict[str, Any]]:
    """Demo documents for a template (English and Italian, or those of one language), written by us for
    the demo and the tests."""
    path = HERE / "samples" / f"{slug}.jsonl"
    if not slug or not path.exists():
        return []
    items = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [item for item in items if language is None or item.get("language") == language]


def load_into_database(user: Any = None, language: str | None = None) -> list[tuple[str, bool]]:
    """One workflow per template, in `language` (default: the site's), unless one was made from it."""
    results = []
    for template in templates():
        shown = in_language(template, base_language(language))
        if Workflow.objects.filter(template=template["slug"]).exists():
            results.append((shown["name"], False))
            continue
        create_workflow(name=shown["name"], description=shown["description"],
                        graph=parse_graph(shown["graph"]), user=user,
                        message=f"From template {template['slug']} ({shown['language']})", template=template["slug"])
        results.append((shown["name"], True))
    return results
