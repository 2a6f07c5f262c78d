"""Deleting a team (administrators, on the Teams page and through the API): only a team that owns
nothing is deleted, with its memberships, and audited; a team that still owns workflows or data sets
is refused with what it owns, and General, every new workflow's default team, stays."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.builders import make_workflow
from tests.test_publishing import rest_graph
from workflows.models import AuditEntry, Dataset, Membership, Team, Workflow
from workflows.models.teams import GENERAL, general_team_pk

pytestmark = pytest.mark.django_db


def admin_client(personas) -> Client:
    client = Client()
    client.force_login(personas["admin"])
    return client


def test_an_empty_team_is_deleted_with_its_memberships_and_audited(personas, api):
    for how in ("page", "api"):
        team = Team.objects.create(name=f"Short-lived {how}")
        Membership.objects.create(team=team, user=personas["operator"], role="operator")
        if how == "page":
            answer = admin_client(personas).post(f"/teams/{team.pk}/delete/", follow=True)
            assert answer.status_code == 200 and "Team &#x27;Short-lived page&#x27; deleted" in answer.content.decode()
        else:
            assert api(personas["admin"]).delete(f"/api/teams/{team.pk}/").status_code == 204
        assert not Team.objects.filter(pk=team.pk).exists()
        assert not Membership.objects.filter(team_id=team.pk).exists()
        entry = AuditEntry.objects.filter(action="team.delete").latest("id")
        assert entry.data["name"] == f"Short-lived {how}"


def test_a_team_that_owns_workflows_or_data_is_refused_and_general_stays(personas, api):
    sales = Team.objects.create(name="Sales")
    workflow = make_workflow(personas["admin"], rest_graph(), name="Sales line")
    Workflow.objects.filter(pk=workflow.pk).update(team=sales)
    Dataset.objects.create(name="leads", filename="l.csv", content=b"text\nx\n", size=7, rows=1, columns=["text"],
                           team=sales)
    page = admin_client(personas).post(f"/teams/{sales.pk}/delete/")
    assert page.status_code == 400
    text = page.content.decode()
    assert "1 workflow" in text and "1 data set" in text
    answer = api(personas["admin"]).delete(f"/api/teams/{sales.pk}/")
    assert answer.status_code == 400 and "1 workflow" in answer.json()["detail"]
    assert Team.objects.filter(pk=sales.pk).exists() and Workflow.objects.get(pk=workflow.pk).team_id == sales.pk
    general = general_team_pk()
    Workflow.objects.filter(team_id=general).delete()
    Dataset.objects.filter(team_id=general).delete()
    answer = api(personas["admin"]).delete(f"/api/teams/{general}/")
    assert answer.status_code == 400 and GENERAL in answer.json()["detail"]
    assert Team.objects.filter(pk=general).exists()
    assert not AuditEntry.objects.filter(action="team.delete").exists()
