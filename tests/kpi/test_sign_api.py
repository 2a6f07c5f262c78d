"""Signing a weekly pack through the API: the page's checks, refusals and audit entry, through the same
service (workflows/kpi/pack.py `sign`)."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.builders import make_baseline, make_workflow
from tests.kpi import ledger
from workflows.kpi.isoweeks import current_week, week_label
from workflows.models import AuditEntry, WeeklyPack

pytestmark = pytest.mark.django_db


@pytest.fixture
def workflow(personas):
    wf = make_workflow(personas["designer"], name="Mine")
    ledger.build(wf, personas["designer"])
    make_baseline(wf)
    return wf


def sign_url(workflow, week: str = "2025-W13") -> str:
    return f"/api/workflows/{workflow.pk}/kpis/packs/{week}/sign/"


def test_business_owner_signs_through_the_api(personas, workflow, api):
    response = api(personas["business_owner"]).post(sign_url(workflow), {"note": "fine"}, format="json")
    assert response.status_code == 201, response.content
    pack = WeeklyPack.objects.get(workflow=workflow)
    body = response.json()
    assert body["week"] == "2025-W13" and body["signed_by"] == "business_owner" and body["partial_week"] is False
    assert body["sha256"] == pack.sha256 and body["intact"] is True
    assert pack.note == "fine" and pack.content["documents"]["completed"] == 8
    entry = AuditEntry.objects.filter(action="kpi.pack.sign").get()
    assert entry.actor == personas["business_owner"]
    assert entry.data["sha256"] == pack.sha256 and entry.data["week"] == "2025-W13"
    listed = api(personas["designer"]).get(f"/api/workflows/{workflow.pk}/kpis/packs/").json()
    assert [p["sha256"] for p in listed] == [pack.sha256]


def test_page_and_api_write_the_same_audit_entry(personas, workflow, api):
    other = make_workflow(personas["designer"], name="Other")
    ledger.build(other, personas["designer"])
    page = Client()
    page.force_login(personas["business_owner"])
    assert page.post(f"/workflows/{other.pk}/kpis/packs/2025-W13/sign/").status_code == 302
    assert api(personas["business_owner"]).post(sign_url(workflow), {}, format="json").status_code == 201
    by_page, by_api = AuditEntry.objects.filter(action="kpi.pack.sign").order_by("id")
    assert set(by_page.data) == set(by_api.data)
    assert (by_page.object_type, by_page.data["workflow"]) == (by_api.object_type, other.pk)


@pytest.mark.parametrize("who", ["admin", "designer", "operator", "trainer", "validator", "outsider"])
def test_other_roles_are_refused(personas, workflow, api, who):
    response = api(personas[who]).post(sign_url(workflow), {}, format="json")
    assert response.status_code == 403 and response.json()["detail"]
    assert not WeeklyPack.objects.exists()
    assert AuditEntry.objects.filter(action="access.denied", actor=personas[who]).exists()


def test_anonymous_is_refused(workflow, api):
    assert api().post(sign_url(workflow), {}, format="json").status_code == 401
    assert not WeeklyPack.objects.exists()


def test_a_second_signature_is_refused_whichever_way_it_comes(personas, workflow, api):
    owner = api(personas["business_owner"])
    assert owner.post(sign_url(workflow), {}, format="json").status_code == 201
    again = owner.post(sign_url(workflow), {"note": "again"}, format="json")
    assert again.status_code == 409
    assert again.json()["code"] == "already_signed"
    assert "already signed" in again.json()["detail"]
    assert f"GET /api/workflows/{workflow.pk}/kpis/packs/" in again.json()["detail"]
    page = Client()
    page.force_login(personas["business_owner"])
    page.post(f"/workflows/{workflow.pk}/kpis/packs/2025-W13/sign/")
    assert WeeklyPack.objects.count() == 1 and AuditEntry.objects.filter(action="kpi.pack.sign").count() == 1


def test_a_week_not_over_needs_partial(personas, workflow, api):
    owner = api(personas["business_owner"])
    url = sign_url(workflow, week_label(current_week()))
    refused = owner.post(url, {}, format="json")
    assert refused.status_code == 409 and refused.json()["code"] == "week_not_over"
    assert "not over" in refused.json()["detail"] and '"partial": true' in refused.json()["detail"]
    assert not WeeklyPack.objects.exists()
    signed = owner.post(url, {"partial": True}, format="json")
    assert signed.status_code == 201 and signed.json()["partial_week"] is True


def test_a_malformed_week_or_body_is_a_400(personas, workflow, api):
    owner = api(personas["business_owner"])
    bad_week = owner.post(sign_url(workflow, "2025-13"), {}, format="json")
    assert bad_week.status_code == 400 and "2025-W14" in bad_week.json()["detail"]
    # The last week of the calendar: the pack's trend and bounds would leave it (a 400, not a 500).
    assert owner.post(sign_url(workflow, "9999-W52"), {"partial": True}, format="json").status_code == 400
    assert owner.post(sign_url(workflow), {"note": "x" * 2001}, format="json").status_code == 400
    assert not WeeklyPack.objects.exists()


def test_the_endpoint_is_in_the_openapi_schema(client):
    schema = client.get("/api/schema/?format=json").json()
    (path,) = [p for p in schema["paths"] if p.endswith("/kpis/packs/{week}/sign/")]
    operation = schema["paths"][path]["post"]
    assert {"201", "403", "409"} <= set(operation["responses"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][body]["properties"]) == {"note", "partial"}
