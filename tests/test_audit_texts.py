"""The audit log reads as sentences in the reader's language: every action the code records has a
title (a new one without fails here), the filter lists families by name, and an entry's data is shown
as `key: value` rather than raw JSON."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.test import Client
from django.utils import translation

from workflows import audit_texts
from workflows.models.audit import record

ROOT = Path(__file__).resolve().parent.parent / "workflows"

# Actions whose code is computed; each expansion is listed here (and must have a title).
COMPUTED = {
    "endpoints.py": ["endpoint.create", "endpoint.update", "destination.create", "destination.update"],
    "jobs.py": [f"model.{kind}.{step}" for kind in ("train", "optimise") for step in ("start", "finish", "failed")],
    "liveness.py": ["model.train.failed", "model.optimise.failed"],
    "mailbox_setup.py": ["mailbox.create", "mailbox.update"],
    "webhook_sources.py": ["webhook_source.enable", "webhook_source.disable"],
    "four_eyes.py": [],  # the rule's `refused` action: each rule's code is a constant keyword, found below
    "versions.py": [],  # `action` is a parameter: its default and callers' constants are found below
}


def recorded_actions() -> tuple[set[str], list[str]]:
    found: set[str] = set()
    unknown: list[str] = []
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "record" \
                    and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
                elif path.name in COMPUTED:
                    found.update(COMPUTED[path.name])
                elif not (isinstance(first, ast.Name) and first.id == "step"):  # executor's own `record`
                    unknown.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            # keyword constants that are actions: refused="…", action="…" (a default or a caller's)
            if isinstance(node, ast.keyword) and node.arg in ("refused", "action") \
                    and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str) \
                    and "." in node.value.value:
                found.add(node.value.value)
            if isinstance(node, ast.arguments):
                for arg, default in zip(node.args[-len(node.defaults):] if node.defaults else [], node.defaults,
                                        strict=True):
                    if arg.arg == "action" and isinstance(default, ast.Constant):
                        found.add(default.value)
                for arg, default in zip(node.kwonlyargs, node.kw_defaults, strict=True):
                    if arg.arg == "action" and isinstance(default, ast.Constant):
                        found.add(default.value)
    return found, unknown


def test_every_recorded_action_has_a_title():
    found, unknown = recorded_actions()
    assert not unknown, f"actions computed where this test cannot see them; list their values in COMPUTED: {unknown}"
    assert {"run.start", "workflow.version.save", "promotion.refused"} <= found  # the scan sees all three kinds
    missing = sorted(a for a in found if a not in audit_texts.TITLES)
    assert not missing, f"give these audit actions a title in workflows/audit_texts.py: {missing}"
    families = sorted({a.split(".")[0] for a in found} - set(audit_texts.FAMILIES))
    assert not families, f"give these action families a name in workflows/audit_texts.py: {families}"


@pytest.mark.django_db
def test_the_log_shows_titles_in_the_readers_language_and_data_as_pairs(personas):
    record("run.start", actor=personas["operator"], workflow=7, items=120, origin="upload")
    client = Client()
    client.force_login(personas["validator"])
    page = client.get("/audit/").content.decode()
    assert "Run started" in page and "items: 120 · origin: upload" in page
    assert '<option value="run" >Runs</option>' in page
    with translation.override("it"):
        italian = Client(HTTP_ACCEPT_LANGUAGE="it")
        italian.force_login(personas["validator"])
        page = italian.get("/audit/").content.decode()
    assert "Esecuzione avviata" in page and ">Esecuzioni<" in page
    # The code stays beside the title: what exports and searches use.
    assert "run.start" in page
