"""Two versions side by side: each changed setting under its label, A's value left, B's right."""

from __future__ import annotations

import re

import pytest

from tests.builders import make_workflow, triage_graph
from workflows.design.versions import save_version
from workflows.graph import parse_graph

pytestmark = pytest.mark.django_db


def row(page: str, key: str) -> str:
    found = re.search(rf'<tr data-key="{key}">(.*?)</tr>', page, re.S)
    assert found, f"no row for {key}"
    return found.group(1)


def text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_page_shows_both_versions_values_under_the_settings_label(client, personas):
    workflow = make_workflow(personas["designer"])
    graph = triage_graph()
    graph["nodes"][1]["config"].update(shadow=True, method="tfidf")
    graph["nodes"][2]["config"]["branches"] = [{"name": "confident", "min_confidence": 0.9},
                                               {"name": "unsure", "min_confidence": 0.5}]
    graph["nodes"].append({"id": "more", "type": "extract", "config": {"patterns": ["email", "phone"]}})
    graph["edges"].append({"source": "ext", "source_port": "out", "target": "more", "target_port": "in"})
    save_version(workflow, parse_graph(graph), user=personas["designer"], parent=1, message="Shadow on")
    client.force_login(personas["operator"])

    response = client.get(f"/workflows/{workflow.pk}/diff/", {"from": 1, "to": 2})

    assert response.status_code == 200
    page = response.content.decode()
    shadow = text(row(page, "shadow"))
    assert shadow.startswith("Run the shadow version alongside")  # the label, not `shadow`
    assert shadow.endswith("not set (default: no) yes")  # A: not set, B: yes
    assert text(row(page, "method")) == "Method not set (default: head) tfidf"
    branches = row(page, "branches")
    assert "<li>name: confident · min_confidence: 0.8</li>" in branches  # A, one branch a line
    assert "<li>name: unsure · min_confidence: 0.5</li>" in branches  # B
    assert "A: v1" in page and "B: v2" in page and "Shadow on" in page
    assert 'data-node="more"' in page and "email" in page  # the added node with its settings
    assert "ext.out → more.in" in page
    assert "shadow: set to" not in page


def test_the_page_speaks_italian(client, personas):
    workflow = make_workflow(personas["designer"])
    graph = triage_graph()
    graph["nodes"][1]["config"]["shadow"] = True
    save_version(workflow, parse_graph(graph), user=personas["designer"], parent=1, message="")
    client.force_login(personas["operator"])

    page = client.get(f"/workflows/{workflow.pk}/diff/", {"from": 2, "to": 1}, HTTP_ACCEPT_LANGUAGE="it")
    shadow = text(row(page.content.decode(), "shadow"))
    assert shadow.startswith("Esegui in parallelo la versione shadow")  # the catalogue's label, translated
    assert " sì " in f" {shadow} "  # v2 (A) had it on


def test_the_history_links_to_the_side_by_side_page(client, personas):
    workflow = make_workflow(personas["designer"])
    save_version(workflow, parse_graph(triage_graph()), user=personas["designer"], parent=1, message="")
    client.force_login(personas["operator"])
    page = client.get(f"/workflows/{workflow.pk}/").content.decode()
    assert f'href="/workflows/{workflow.pk}/diff/?from=1&amp;to=2">Compare side by side<' in page


def test_picking_missing_versions_is_refused(client, personas):
    workflow = make_workflow(personas["designer"])
    client.force_login(personas["operator"])
    assert client.get(f"/workflows/{workflow.pk}/diff/", {"from": 1, "to": 9}).status_code == 400
