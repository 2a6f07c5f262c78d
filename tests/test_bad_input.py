"""Bad input gets a 400 that says what to fix, never a 500, and nothing is saved."""

from __future__ import annotations

import json

import pytest

from tests.builders import chain_graph, make_workflow, node, triage_graph
from workflows.models import Workflow, WorkflowVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def designer_client(personas, api):
    return api(personas["designer"])


def counts():
    return Workflow.objects.count(), WorkflowVersion.objects.count()


def test_malformed_json_body(designer_client):
    before = counts()
    r = designer_client.post("/api/workflows/", data='{"name": "x", "graph": {', content_type="application/json")
    assert r.status_code == 400 and "JSON" in str(r.data["detail"])
    assert counts() == before


@pytest.mark.parametrize("payload, field", [
    ({"name": 42, "graph": triage_graph()}, None),
    ({"name": "", "graph": triage_graph()}, "name"),
    ({"name": "x", "graph": "not a graph"}, "graph"),
    ({"name": "x", "graph": {"nodes": "many"}}, "graph"),
    ({"name": "x", "graph": {"nodes": [{"id": "a", "type": "extract", "config": "fast"}]}}, "graph"),
    ({"name": "x" * 201}, "name"),
])
def test_wrong_types_are_400_with_the_field(designer_client, payload, field):
    before = counts()
    r = designer_client.post("/api/workflows/", payload, format="json")
    assert r.status_code == 400, r.data
    if field:
        assert field in r.data
    assert counts() == before


def test_save_version_wrong_types(designer_client, personas):
    wf = make_workflow(personas["designer"])
    before = counts()
    for payload in ({"graph": triage_graph()}, {"graph": triage_graph(), "parent": "one"}, {"graph": [], "parent": 1},
                    {"graph": triage_graph(), "parent": -1}):
        r = designer_client.post(f"/api/workflows/{wf.pk}/versions/", payload, format="json")
        assert r.status_code == 400, (payload, r.data)
    assert counts() == before


def test_too_many_nodes(designer_client):
    before = counts()
    r = designer_client.post("/api/workflows/", {"name": "huge", "graph": chain_graph(520)}, format="json")
    assert r.status_code == 400 and "limit is 500" in json.dumps(r.data)
    assert counts() == before


def test_graph_over_one_megabyte(designer_client):
    graph = triage_graph()
    graph["nodes"][0]["config"]["notes"] = "x" * (1024 * 1024 + 10)
    before = counts()
    r = designer_client.post("/api/workflows/", {"name": "fat", "graph": graph}, format="json")
    assert r.status_code == 400 and "limit is 1024 KB" in json.dumps(r.data)
    assert counts() == before


def test_request_body_over_the_upload_limit(designer_client, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    before = counts()
    r = designer_client.post("/api/workflows/", {"name": "x", "graph": triage_graph(), "pad": "y" * 5000},
                             format="json")
    assert r.status_code == 400 and "too large" in r.data["detail"]
    assert counts() == before


def test_unknown_node_type_is_refused_on_save_and_named_by_validate(designer_client, personas):
    graph = triage_graph()
    graph["nodes"].append(node("x", "teleport"))
    wf = make_workflow(personas["designer"])
    before = counts()
    for url, payload in (("/api/workflows/", {"name": "x", "graph": graph}),
                         (f"/api/workflows/{wf.pk}/versions/", {"graph": graph, "parent": 1})):
        r = designer_client.post(url, payload, format="json")
        assert r.status_code == 400 and "unknown type 'teleport'" in json.dumps(r.data)
    assert counts() == before
    r = designer_client.post("/api/workflows/validate/", {"graph": graph}, format="json")
    assert r.status_code == 200 and not r.data["runnable"]
    assert any(p["code"] == "unknown_type" and p["node"] == "x" for p in r.data["problems"])


def test_unknown_workflow_and_version_are_404(designer_client, personas):
    wf = make_workflow(personas["designer"])
    assert designer_client.get("/api/workflows/999999/").status_code == 404
    assert designer_client.get(f"/api/workflows/{wf.pk}/versions/42/").status_code == 404
    assert designer_client.get(f"/api/workflows/{wf.pk}/export/", {"version": "abc"}).status_code == 404


@pytest.mark.parametrize("path", ["/audit/?action=%00", "/review/?queue=x%00y", "/promotions/?status=%00",
                                  "/runs/?workflow=%00", "/api/audit/?action=%00", "/api/review/?queue=%00"])
def test_a_nul_in_the_query_string_is_a_400_everywhere(path, personas, client):
    """PostgreSQL text cannot hold NUL: refused before any view could filter on it (was a 500 on pages)."""
    client.force_login(personas["admin"])
    response = client.get(path)
    assert response.status_code == 400 and "NUL" in response.content.decode()
