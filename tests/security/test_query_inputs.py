"""Query-string inputs that reach a database filter or a response header are checked first: a bad
one is a 4xx that says what to fix, never a 500 or a header an attacker shapes."""

from __future__ import annotations

import pytest

from tests.engine.helpers import drain, make_runnable_workflow, tickets
from workflows.engine import launch

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("query", ["since=yesterday", "until=2025-13-40", "since=31/03/2025"])
def test_the_audit_log_refuses_a_date_it_cannot_read(client, personas, query):
    client.force_login(personas["validator"])
    response = client.get(f"/audit/?{query}")
    assert response.status_code == 400
    assert "YYYY-MM-DD" in response.content.decode()


def test_the_audit_log_filters_by_a_good_date(client, personas):
    client.force_login(personas["validator"])
    assert client.get("/audit/?since=2025-01-01&until=2099-12-31").status_code == 200


@pytest.mark.parametrize("node", ['a"b', "out\r\nSet-Cookie: x=1", "../../etc", "nosuchnode"])
def test_an_export_names_only_a_node_of_the_run(client, api, personas, node):
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(2))
    drain()
    client.force_login(personas["operator"])
    page = client.get(f"/runs/{run.pk}/download.csv", {"node": node})
    api_answer = api(personas["operator"]).get(f"/api/runs/{run.pk}/export/", {"as": "csv", "node": node})
    for response in (page, api_answer):
        assert response.status_code == 404, response.status_code
        assert "Set-Cookie" not in response.headers or "x=1" not in response.headers["Set-Cookie"]


def test_an_export_of_a_real_node_is_named_after_it(client, personas):
    workflow = make_runnable_workflow(personas["designer"])
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(2))
    drain()
    client.force_login(personas["operator"])
    response = client.get(f"/runs/{run.pk}/download.jsonl", {"node": "ext"})
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="run-{run.pk}-ext.jsonl"'
