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
        Row("team-delete", "post", "/teams/{team}/delete/", ADMINS, {}, api=False),
        Row("api-teams", "get", "/api/teams/", ADMINS),
        Row("api-teams", "post", "/api/teams/", ADMINS, {"name": "API team {n}"}),
        Row("api-team", "get", "/api/teams/{team}/", ADMINS),
        Row("api-team", "patch", "/api/teams/{team}/", ADMINS, {"name": "Patched {n}"}),
        Row("api-team", "delete", "/api/teams/{team}/", ADMINS),
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


@pytest.mark.django_db(transaction=True)
def test_runs_items_review_tasks_and_sockets_of_another_team_are_not_found(personas):
    """Every run-level route and both sockets, for an operator of one team: their team's answer, and
    for another team's the same answer as for an object that does not exist (404, socket close 4404)."""
    import datetime as dt

    from tests.builders import ledger_item, ledger_run
    from tests.live.sockets import communicator, run_async
    from workflows.live.groups import CLOSE_NOT_FOUND
    from workflows.models import ReviewTask

    sales, legal = Team.objects.create(name="Sales"), Team.objects.create(name="Legal")
    member = make_user("olga")  # no group role: an operator in Sales only
    Membership.objects.create(team=sales, user=member, role="operator")
    made: dict[str, dict[str, Any]] = {}
    for key, team in (("ours", sales), ("theirs", legal)):
        workflow = make_workflow(personas["admin"], rest_graph(), name=f"{key} line")
        Workflow.objects.filter(pk=workflow.pk).update(team=team)
        run = ledger_run(workflow, personas["admin"], status="waiting")
        item = ledger_item(run, 1, received=dt.datetime(2026, 12, 1, tzinfo=dt.UTC), status="parked",
                           payload={"text": f"{key} document"})
        task = ReviewTask.objects.create(run=run, item=item, node="out", proposal={"label": "billing"})
        made[key] = {"workflow": workflow.pk, "run": run.pk, "item": item.pk, "task": task.pk}
    client = Client()
    client.force_login(member)
    paths = ["/runs/{run}/", "/api/runs/{run}/", "/api/runs/{run}/items/", "/api/runs/{run}/items/{item}/",
             "/api/runs/{run}/export/?as=jsonl"]
    for path in paths:
        assert client.get(path.format(**made["ours"])).status_code == 200, path
        assert client.get(path.format(**made["theirs"])).status_code == 404, path
    for path, body in (("/api/runs/{run}/cancel/", {}), ("/api/runs/{run}/retry/", {}),
                       ("/api/review/{task}/label/", {"label": "billing"})):
        answer = client.post(path.format(**made["theirs"]), body, content_type="application/json")
        assert answer.status_code == 404, (path, answer.status_code)
    assert client.post(f"/review/{made['theirs']['task']}/decide/", {"label": "billing"}).status_code == 404
    assert ReviewTask.objects.get(pk=made["theirs"]["task"]).status == ReviewTask.OPEN  # nothing written
    queue = client.get("/api/review/").content.decode() + client.get("/review/").content.decode()
    assert "ours document" in queue and "theirs document" not in queue

    async def sockets() -> dict[str, tuple[bool, int | None]]:
        answers = {}
        for key in ("ours", "theirs"):
            for kind, path in (("run", f"/ws/runs/{made[key]['run']}/"),
                               ("canvas", f"/ws/workflows/{made[key]['workflow']}/live/")):
                com = communicator(path, member)
                connected, code = await com.connect()
                answers[f"{key} {kind}"] = (connected, None if connected else code)
                await com.disconnect()
        return answers

    answers = run_async(sockets)
    assert answers["ours run"][0] and answers["ours canvas"][0], answers
    assert answers["theirs run"] == (False, CLOSE_NOT_FOUND) and answers["theirs canvas"] == (False, CLOSE_NOT_FOUND)
