"""The role matrix of teams and publications (tests/test_role_matrix.py walks every route; these rows are
in a module of their own), and role × team: a member of one team acts there as their role allows and
learns nothing of another team's workflows, runs and data sets, pages and API alike; an
organisation-wide (group) role acts everywhere."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.builders import make_user, make_workflow
from tests.test_publishing import rest_graph
from tests.test_role_matrix import EVERY_ROLE, Row, check_row
from workflows.design.publishing import publish
from workflows.design.versions import save_version
from workflows.graph import parse_graph
from workflows.models import Membership, Team, Workflow

pytestmark = pytest.mark.django_db

ADMINS = {"admin"}
PUBLISHERS = {"designer", "admin"}
# Four eyes: a designer or validator who neither asked nor edited the draft (the admin did both).
APPROVERS = {"designer", "validator"}


def team_rows() -> list[Row]:
    return [
        Row("team-list", "get", "/teams/", ADMINS, api=False),
        Row("team-list", "post", "/teams/", ADMINS, {"name": "Page team {n}"}, api=False),
        Row("team-rename", "post", "/teams/{team}/rename/", ADMINS, {"name": "Renamed {n}"}, api=False),
        Row("team-member-add", "post", "/teams/{team}/members/", ADMINS, {"username": "operator", "role": "operator"},
            api=False),
        Row("team-member-remove", "post", "/teams/{team}/members/{member}/remove/", ADMINS, {}, api=False),
        Row("api-teams", "get", "/api/teams/", ADMINS),
        Row("api-teams", "post", "/api/teams/", ADMINS, {"name": "API team {n}"}),
        Row("api-team", "get", "/api/teams/{team}/", ADMINS),
        Row("api-team", "patch", "/api/teams/{team}/", ADMINS, {"name": "Patched {n}"}),
        Row("api-team-members", "post", "/api/teams/{team}/members/", ADMINS,
            {"username": "operator", "role": "operator"}),
        Row("api-team-member", "delete", "/api/teams/{team}/members/{member}/", ADMINS),
    ]


def publication_rows() -> list[Row]:
    return [
        Row("canvas-publication", "get", "/workflows/{wf}/publication/", EVERY_ROLE, api=False),
        Row("canvas-publish", "post", "/workflows/{wf}/publish/", PUBLISHERS, {"version": "2"}, api=False),
        Row("canvas-publish-decide", "post", "/workflows/{wf}/publish/decide/", APPROVERS, {"decision": "approve"},
            api=False),
        Row("canvas-publish-policy", "post", "/workflows/{wf}/publish/policy/", ADMINS, {"needs_approval": "on"},
            api=False),
        Row("workflow-publish", "post", "/api/workflows/{wf}/publish/", PUBLISHERS, {"version": 2}),
        Row("workflow-publish-request", "get", "/api/workflows/{wf}/publish/request/", EVERY_ROLE),
        Row("workflow-publish-request", "post", "/api/workflows/{wf}/publish/request/", APPROVERS,
            {"decision": "approve"}),
        Row("workflow-publish-policy", "post", "/api/workflows/{wf}/publish/policy/", ADMINS, {"needs_approval": True}),
    ]


def _objects(personas, n: int, *, requested: bool) -> dict[str, Any]:
    """A team with a member, and a workflow whose runnable draft v2 the administrator saved (and, for
    the rows that decide, asked to publish under the four-eyes policy)."""
    admin = personas["admin"]
    team = Team.objects.create(name=f"Team {n} {requested}")
    member = Membership.objects.create(team=team, user=personas["trainer"], role="trainer")
    workflow = make_workflow(admin, rest_graph(), name=f"Line {n}")
    draft = save_version(workflow, parse_graph(rest_graph(sink=f"table{n}")), user=admin, parent=1)
    if requested:
        Workflow.objects.filter(pk=workflow.pk).update(publish_needs_approval=True)
        workflow.refresh_from_db()
        assert publish(workflow, draft, user=admin) is not None
    return {"team": team.pk, "member": member.pk, "wf": workflow.pk}


def _request(personas, client: Client, row: Row, n: int):
    ids = _objects(personas, n, requested="decide" in row.name or "publish-request" in row.name)
    path = row.path.format(**ids)
    payload = {k: v.format(n=n) if isinstance(v, str) else v for k, v in (row.payload or {}).items()}
    if row.method == "get":
        return client.get(path)
    if row.api:
        return getattr(client, row.method)(path, payload, content_type="application/json")
    return client.post(path, payload)


@pytest.mark.parametrize("row", team_rows() + publication_rows(), ids=lambda r: f"{r.method} {r.path}")
def test_team_and_publication_role_matrix(personas, row):
    check_row(personas, row, lambda client, n: _request(personas, client, row, n))


# --- role × team ----------------------------------------------------------------------------------


def test_a_team_member_acts_in_their_team_and_gets_404_in_another(personas):
    from tests.builders import ledger_run
    from workflows.models import Dataset

    sales, legal = Team.objects.create(name="Sales"), Team.objects.create(name="Legal")
    member = make_user("anna")  # no group: her only roles are her team's
    Membership.objects.create(team=sales, user=member, role="designer")
    ours = make_workflow(personas["admin"], rest_graph(), name="Ours")
    theirs = make_workflow(personas["admin"], rest_graph(), name="Theirs")
    Workflow.objects.filter(pk=ours.pk).update(team=sales)
    Workflow.objects.filter(pk=theirs.pk).update(team=legal)
    their_run = ledger_run(theirs, personas["admin"])
    their_data = Dataset.objects.create(name="legal-data", filename="d.csv", content=b"text\nx\n", size=7, rows=1,
                                        columns=["text"], team=legal)
    client = Client()
    client.force_login(member)
    assert client.get(f"/workflows/{ours.pk}/").status_code == 200
    assert client.get(f"/api/workflows/{ours.pk}/").status_code == 200
    for path in (f"/workflows/{theirs.pk}/", f"/api/workflows/{theirs.pk}/", f"/runs/{their_run.pk}/",
                 f"/api/runs/{their_run.pk}/"):
        assert client.get(path).status_code == 404, path
    listed = client.get("/api/workflows/").json()
    names = {w["name"] for w in (listed["results"] if isinstance(listed, dict) else listed)}
    assert "Ours" in names and "Theirs" not in names
    assert "legal-data" not in client.get("/api/datasets/").content.decode()
    assert Dataset.objects.filter(pk=their_data.pk).exists()
    # An organisation-wide designer (a group role) sees both teams' workflows.
    boss = Client()
    boss.force_login(personas["designer"])
    assert boss.get(f"/workflows/{theirs.pk}/").status_code == 200
