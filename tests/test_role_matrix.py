"""Every endpoint × every role: allowed → 2xx, denied → 403/404, anonymous → 401 or the login page.

The matrix is also a checklist: a URL pattern without a row here fails `test_every_route_has_a_row`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.builders import make_workflow, triage_graph
from workflows.models import AuditEntry
from workflows.roles import ROLES

pytestmark = pytest.mark.django_db

EDITORS = {"designer", "admin"}
EVERY_ROLE = set(ROLES)
AUTHENTICATED = EVERY_ROLE | {"outsider", "validator2"}
ROLE_OF = {**{role: role for role in ROLES}, "validator2": "validator", "outsider": None}


@dataclass
class Row:
    name: str  # URL pattern name
    method: str
    path: str  # formatted with {wf}
    allowed: set[str]
    payload: Any = None
    api: bool = True


def rows() -> list[Row]:
    return [
        Row("workflow-list", "get", "/api/workflows/", EVERY_ROLE),
        Row("workflow-list", "post", "/api/workflows/", EDITORS, {"name": "New", "graph": triage_graph()}),
        Row("workflow-detail", "get", "/api/workflows/{wf}/", EVERY_ROLE),
        Row("workflow-detail", "patch", "/api/workflows/{wf}/", EDITORS, {"description": "changed"}),
        Row("workflow-versions", "get", "/api/workflows/{wf}/versions/", EVERY_ROLE),
        Row("workflow-versions", "post", "/api/workflows/{wf}/versions/", EDITORS, {"graph": triage_graph(), "parent": 1}),
        Row("workflow-version", "get", "/api/workflows/{wf}/versions/1/", EVERY_ROLE),
        Row("workflow-restore", "post", "/api/workflows/{wf}/versions/1/restore/", EDITORS, {}),
        Row("workflow-diff", "get", "/api/workflows/{wf}/diff/?from=1&to=1", EVERY_ROLE),
        Row("workflow-export", "get", "/api/workflows/{wf}/export/", EVERY_ROLE),
        Row("workflow-import", "post", "/api/workflows/import/", EDITORS,
            {"format": "cognitive-factory/workflow", "format_version": 1, "name": "Imp", "graph": triage_graph()}),
        Row("workflow-validate", "post", "/api/workflows/validate/", EVERY_ROLE, {"graph": triage_graph()}),
        Row("api-catalog", "get", "/api/catalog/", EVERY_ROLE),
        Row("api-me", "get", "/api/me/", AUTHENTICATED),
        Row("workflow-list", "get", "/", EVERY_ROLE, api=False),
        Row("workflow-create", "post", "/workflows/new/", EDITORS, {"name": "From page"}, api=False),
        Row("workflow-detail", "get", "/workflows/{wf}/", EVERY_ROLE, api=False),
        Row("workflow-diff", "get", "/workflows/{wf}/diff/?from=1&to=1", EVERY_ROLE, api=False),
    ]


# Routes outside the role matrix, each with the reason.
EXEMPT = {
    "login": "public login page",
    "logout": "ends the caller's own session",
    "api-token": "exchanges a username and password for a token",
    "api-schema": "public API description",
    "api-docs": "public API description",
    "api-redoc": "public API description",
}


def _request(client: Client, row: Row, wf: int):
    path = row.path.format(wf=wf)
    if row.method == "get":
        return client.get(path)
    if row.api:
        return getattr(client, row.method)(path, row.payload, content_type="application/json")
    return client.post(path, row.payload)


@pytest.mark.parametrize("row", rows(), ids=lambda r: f"{r.method} {r.path}")
def test_role_matrix(personas, row):
    wf = make_workflow(personas["designer"]).pk
    for who in sorted(AUTHENTICATED):
        client = Client()
        client.force_login(personas[who])
        response = _request(client, row, wf)
        if who in row.allowed or ROLE_OF[who] in row.allowed:
            assert 200 <= response.status_code < 400, (who, response.status_code, getattr(response, "content", b"")[:300])
            if row.method == "post" and row.name == "workflow-versions":
                wf = make_workflow(personas["designer"]).pk  # the next saver starts from a fresh head
        else:
            assert response.status_code in (403, 404), (who, response.status_code)
    anonymous = _request(Client(), row, wf)
    if row.api:
        assert anonymous.status_code == 401
    else:
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_refusals_are_audited(personas, api):
    wf = make_workflow(personas["designer"])
    api(personas["operator"]).post(f"/api/workflows/{wf.pk}/versions/", {"graph": triage_graph(), "parent": 1}, format="json")
    entry = AuditEntry.objects.filter(action="access.denied").latest("id")
    assert entry.actor == personas["operator"] and entry.data["capability"] == "workflow.edit"
    assert entry.object_id == str(wf.pk)


def test_token_auth_for_scripts(personas):
    from rest_framework.test import APIClient

    client = APIClient()
    r = client.post("/api/auth/token/", {"username": "designer", "password": "correct-horse-battery-staple"}, format="json")
    assert r.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {r.data['token']}")
    assert client.get("/api/workflows/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert client.get("/api/workflows/").status_code == 401


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                continue
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield p.name, prefix + str(p.pattern)


def test_every_route_has_a_row():
    covered = {r.name for r in rows()} | set(EXEMPT)
    missing = sorted({f"{name} ({route})" for name, route in _walk(get_resolver().url_patterns) if name not in covered})
    assert not missing, f"Routes without a role-matrix row: {missing}"
