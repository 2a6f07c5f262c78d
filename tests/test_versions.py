"""Saving versions: immutable, conflict-safe, diffable, restorable, exportable."""

from __future__ import annotations

import copy

import pytest

from tests.builders import make_workflow, node, triage_graph
from workflows.models import AuditEntry, Workflow, WorkflowVersion
from workflows.models.immutable import ImmutableError

pytestmark = pytest.mark.django_db


def save(client, workflow_id, graph, parent, message=""):
    return client.post(f"/api/workflows/{workflow_id}/versions/",
                       {"graph": graph, "parent": parent, "message": message}, format="json")


def test_create_makes_version_one(personas, api, tickets_model):
    r = api(personas["designer"]).post("/api/workflows/", {"name": "Triage", "graph": triage_graph()}, format="json")
    assert r.status_code == 201, r.data
    assert r.data["head"] == 1 and r.data["latest"]["is_runnable"] is True
    v = WorkflowVersion.objects.get(workflow_id=r.data["id"])
    assert v.number == 1 and v.author == personas["designer"] and len(v.checksum) == 64


def test_saving_creates_new_immutable_versions(personas, api):
    client = api(personas["designer"])
    wf = make_workflow(personas["designer"])
    graph = triage_graph()
    graph["nodes"][1]["config"]["method"] = "tfidf"
    r = save(client, wf.pk, graph, parent=1, message="Try TF-IDF")
    assert r.status_code == 201, r.data
    assert r.data["number"] == 2 and r.data["parent"] == 1 and r.data["message"] == "Try TF-IDF"
    v1, v2 = WorkflowVersion.objects.get(workflow=wf, number=1), WorkflowVersion.objects.get(workflow=wf, number=2)
    assert v1.graph["nodes"][1]["config"].get("method") is None  # the old version did not change
    assert v2.checksum != v1.checksum
    with pytest.raises(ImmutableError):
        v1.message = "rewritten"
        v1.save()
    with pytest.raises(ImmutableError):
        v1.delete()
    history = client.get(f"/api/workflows/{wf.pk}/versions/").data["results"]
    assert [v["number"] for v in history] == [2, 1]


def test_saving_over_a_stale_version_is_a_conflict_naming_the_newer_version(personas, api):
    wf = make_workflow(personas["designer"])
    other = api(personas["admin"])
    assert save(other, wf.pk, triage_graph(), parent=1, message="Admin's edit").status_code == 201
    r = save(api(personas["designer"]), wf.pk, triage_graph(), parent=1, message="My edit")
    assert r.status_code == 409
    assert r.data["latest_version"] == 2 and r.data["latest_author"] == "admin"
    assert "version 2" in r.data["detail"].lower() and "admin" in r.data["detail"]
    assert Workflow.objects.get(pk=wf.pk).head == 2
    assert WorkflowVersion.objects.filter(workflow=wf).count() == 2


def test_a_parent_ahead_of_the_head_is_a_conflict_too(personas, api):
    wf = make_workflow(personas["designer"])
    assert save(api(personas["designer"]), wf.pk, triage_graph(), parent=7).status_code == 409


def test_a_draft_with_problems_can_be_saved_but_is_not_runnable(personas, api):
    wf = make_workflow(personas["designer"])
    graph = triage_graph()
    graph["nodes"][1]["config"] = {}
    r = save(api(personas["designer"]), wf.pk, graph, parent=1)
    assert r.status_code == 201
    assert r.data["is_runnable"] is False
    assert any(p["code"] == "missing_config" and p["node"] == "cls" for p in r.data["problems"])


def test_diff_between_two_versions(personas, api):
    client = api(personas["designer"])
    wf = make_workflow(personas["designer"])
    graph = copy.deepcopy(triage_graph())
    graph["nodes"].append(node("sum", "summarise"))
    graph["edges"].append({"source": "ext", "source_port": "out", "target": "sum", "target_port": "in"})
    graph["nodes"][1]["config"]["model"] = "tickets:v2"
    save(client, wf.pk, graph, parent=1)
    r = client.get(f"/api/workflows/{wf.pk}/diff/", {"from": 1, "to": 2})
    assert r.status_code == 200
    assert [n["id"] for n in r.data["nodes"]["added"]] == ["sum"]
    assert r.data["nodes"]["changed"][0]["id"] == "cls"
    assert len(r.data["edges"]["added"]) == 1
    assert client.get(f"/api/workflows/{wf.pk}/diff/", {"from": 1}).status_code == 400
    assert client.get(f"/api/workflows/{wf.pk}/diff/", {"from": 1, "to": 9}).status_code == 404


def test_restore_makes_a_new_version_with_the_old_graph(personas, api):
    client = api(personas["designer"])
    wf = make_workflow(personas["designer"])
    graph = triage_graph()
    graph["nodes"][1]["config"]["method"] = "tfidf"
    save(client, wf.pk, graph, parent=1)
    r = client.post(f"/api/workflows/{wf.pk}/versions/1/restore/", {}, format="json")
    assert r.status_code == 201
    assert r.data["number"] == 3 and r.data["restored_from"] == 1
    v1, v3 = WorkflowVersion.objects.get(workflow=wf, number=1), WorkflowVersion.objects.get(workflow=wf, number=3)
    assert v3.checksum == v1.checksum and v3.parent.number == 2
    # restoring from a stale view is refused like any other save
    assert client.post(f"/api/workflows/{wf.pk}/versions/1/restore/", {"parent": 2}, format="json").status_code == 409
    assert AuditEntry.objects.filter(action="workflow.version.restore").count() == 1


def test_export_then_import_round_trips(personas, api):
    client = api(personas["designer"])
    wf = make_workflow(personas["designer"], name="Contracts")
    r = client.get(f"/api/workflows/{wf.pk}/export/")
    assert r.status_code == 200 and "attachment" in r["Content-Disposition"]
    document = r.data
    assert document["format"] == "cognitive-factory/workflow" and document["exported_version"] == 1
    r = client.post("/api/workflows/import/", document, format="json")
    assert r.status_code == 201, r.data
    imported = Workflow.objects.get(pk=r.data["id"])
    assert imported.latest.checksum == wf.latest.checksum and imported.name == "Contracts"


def test_import_validates_the_document(personas, api):
    client = api(personas["designer"])
    before = Workflow.objects.count()
    r = client.post("/api/workflows/import/", {"format": "something-else", "format_version": 1, "name": "x",
                                               "graph": {}}, format="json")
    assert r.status_code == 400 and "format" in r.data
    r = client.post("/api/workflows/import/", {"format": "cognitive-factory/workflow", "format_version": 1, "name": "x",
                                               "graph": {"nodes": [{"id": 1}]}}, format="json")
    assert r.status_code == 400 and "graph" in r.data
    assert Workflow.objects.count() == before


def test_validate_endpoint_returns_problems_and_order(personas, api, tickets_model):
    client = api(personas["operator"])
    r = client.post("/api/workflows/validate/", {"graph": triage_graph()}, format="json")
    assert r.status_code == 200 and r.data["runnable"] is True and r.data["order"][0] == "src"
    graph = triage_graph()
    graph["nodes"][1]["config"] = {}
    r = client.post("/api/workflows/validate/", {"graph": graph}, format="json")
    assert r.data["runnable"] is False and r.data["order"] == []


def test_catalog_lists_every_node_type_with_ports_and_schema(personas, api):
    r = api(personas["designer"]).get("/api/catalog/")
    types = {t["type"]: t for t in r.data}
    assert {"source.upload", "source.rest", "source.schedule", "classify", "extract", "summarise", "embed", "route",
            "cascade", "llm", "review", "sink.table", "sink.export", "sink.webhook", "ocr"} <= set(types)
    assert types["cascade"]["outputs"] == ["decided", "review", "error"]
    assert types["route"]["dynamic_outputs"] is True
    assert any(f["name"] == "model" and f["required"] for f in types["classify"]["config"])


def test_listing_workflows_does_not_query_per_row(personas, api, django_assert_max_num_queries):
    for i in range(6):
        make_workflow(personas["designer"], name=f"wf {i}")
    client = api(personas["designer"])
    with django_assert_max_num_queries(8):
        r = client.get("/api/workflows/")
    assert [w["latest"]["number"] for w in r.data["results"]] == [1] * 6
