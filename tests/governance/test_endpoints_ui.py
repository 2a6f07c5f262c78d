"""Endpoints, webhook destinations and data-residency policies, managed on a page and through the API
by the role holding `endpoint.manage`: everyone else may read and is refused any change."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from tests.builders import edge, make_workflow, node
from workflows.models import AuditEntry, LLMEndpoint, WebhookDestination, Workflow
from workflows.roles import CAPABILITIES, ROLES

pytestmark = pytest.mark.django_db
SECRET = "sk-live-0123456789abcdef"
ENDPOINT = {"name": "cloud-gpt", "base_url": "https://llm.example.com/v1", "model_name": "gpt-x",
            "location": "external", "region": "EU (Milan)", "api_key_env": "CF_TEST_LLM_KEY",
            "price_in_per_1k": "0,25", "price_out_per_1k": "1,5", "enabled": "on"}
DESTINATION = {"name": "crm", "url": "https://crm.example.com/hook", "location": "external", "region": "EU",
               "enabled": "on"}


def browser(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def make_endpoint(**changes) -> LLMEndpoint:
    values = {"name": "local-x", "base_url": "http://127.0.0.1:8088/v1", "model_name": "m",
              "location": LLMEndpoint.ON_PREMISE, "region": "local", "api_key_env": "CF_TEST_LLM_KEY", **changes}
    return LLMEndpoint.objects.create(**values)


def test_only_administrators_manage_and_every_role_reads():
    assert CAPABILITIES["endpoint.manage"] == frozenset({"admin"})
    assert CAPABILITIES["endpoint.view"] == frozenset(ROLES)


def test_the_admin_registers_an_external_endpoint_with_italian_prices_and_it_is_audited(personas):
    response = browser(personas["admin"]).post("/endpoints/llm/new/", ENDPOINT)
    assert response.status_code == 302
    endpoint = LLMEndpoint.objects.get(name="cloud-gpt")
    assert (endpoint.price_in_per_1k, endpoint.price_out_per_1k) == (Decimal("0.25"), Decimal("1.5"))
    assert endpoint.location == LLMEndpoint.EXTERNAL and endpoint.enabled
    entry = AuditEntry.objects.filter(action="endpoint.create").latest("id")
    assert entry.actor == personas["admin"] and entry.data["before"] is None
    assert entry.data["after"]["base_url"] == "https://llm.example.com/v1"


def test_the_admin_edits_and_disables_an_endpoint_and_the_audit_has_before_and_after(personas):
    make_endpoint()
    form = {"name": "local-x", "base_url": "http://10.0.0.5:8088/v1", "model_name": "m2", "location": "on_premise",
            "region": "local", "api_key_env": "", "price_in_per_1k": "0", "price_out_per_1k": "0"}
    assert browser(personas["admin"]).post("/endpoints/llm/local-x/", form).status_code == 302
    endpoint = LLMEndpoint.objects.get(name="local-x")
    assert not endpoint.enabled and endpoint.model_name == "m2" and endpoint.api_key_env == ""
    entry = AuditEntry.objects.filter(action="endpoint.update").latest("id")
    assert entry.data["before"]["model_name"] == "m" and entry.data["before"]["enabled"] is True
    assert entry.data["after"]["enabled"] is False


@pytest.mark.parametrize("who", ["designer", "trainer", "validator", "operator", "business_owner", "outsider"])
def test_others_are_refused_every_change_and_nothing_is_written(personas, who):
    endpoint = make_endpoint()
    workflow = make_workflow(personas["designer"])
    client = browser(personas[who])
    before = AuditEntry.objects.exclude(action="access.denied").count()
    assert client.post("/endpoints/llm/new/", ENDPOINT).status_code == 403
    assert client.get("/endpoints/llm/new/").status_code == 403
    assert client.post("/endpoints/llm/local-x/", {**ENDPOINT, "name": "local-x"}).status_code == 403
    assert client.post("/endpoints/webhooks/new/", DESTINATION).status_code == 403
    assert client.post(f"/endpoints/residency/{workflow.pk}/", {"allow_external_endpoints": "on"}).status_code == 403
    assert client.post("/api/endpoints/", ENDPOINT, content_type="application/json").status_code == 403
    assert client.patch("/api/endpoints/local-x/", {"enabled": False},
                        content_type="application/json").status_code == 403
    assert client.post("/api/destinations/", DESTINATION, content_type="application/json").status_code == 403
    assert client.put(f"/api/workflows/{workflow.pk}/residency/", {"allow_external_endpoints": True},
                      content_type="application/json").status_code == 403
    assert not LLMEndpoint.objects.filter(name="cloud-gpt").exists() and not WebhookDestination.objects.exists()
    endpoint.refresh_from_db()
    workflow.refresh_from_db()
    assert endpoint.enabled and endpoint.model_name == "m" and not workflow.allow_external_endpoints
    assert AuditEntry.objects.exclude(action="access.denied").count() == before
    assert AuditEntry.objects.filter(action="access.denied", data__capability="endpoint.manage").count() == 9
    # Reading is for roles only: the outsider, with none, sees nothing.
    reading = client.get("/endpoints/").status_code, client.get("/api/endpoints/").status_code
    assert reading == ((403, 403) if who == "outsider" else (200, 200))


def test_an_external_endpoint_must_use_https_and_the_page_says_so(personas):
    response = browser(personas["admin"]).post("/endpoints/llm/new/",
                                               {**ENDPOINT, "base_url": "http://llm.example.com/v1"})
    assert response.status_code == 400
    assert b"https://" in response.content and b"encrypted" in response.content
    assert not LLMEndpoint.objects.exists()
    on_premise = {**ENDPOINT, "base_url": "http://127.0.0.1:8088/v1", "location": "on_premise"}
    assert browser(personas["admin"]).post("/endpoints/llm/new/", on_premise).status_code == 302


def test_validation_errors_for_prices_names_and_destinations(personas):
    make_endpoint(name="cloud-gpt")
    client = browser(personas["admin"])
    response = client.post("/endpoints/llm/new/", {**ENDPOINT, "price_in_per_1k": "a lot", "price_out_per_1k": "-1"})
    assert response.status_code == 400
    text = response.content.decode()
    assert "An endpoint with this name already exists." in text
    assert "A price cannot be negative." in text
    assert 'class="error"' in text and text.count('class="error"') >= 3
    assert client.post("/endpoints/llm/new/", {**ENDPOINT, "name": "new"}).status_code == 400
    response = client.post("/endpoints/webhooks/new/", {**DESTINATION, "url": "http://crm.example.com/hook"})
    assert response.status_code == 400 and not WebhookDestination.objects.exists()
    assert client.post("/endpoints/webhooks/new/", DESTINATION).status_code == 302
    assert AuditEntry.objects.filter(action="destination.create").count() == 1
    assert client.post("/endpoints/webhooks/new/", DESTINATION).status_code == 400


def test_the_api_validates_like_the_page(personas, api):
    client = api(personas["admin"])
    payload = {**ENDPOINT, "enabled": True, "base_url": "http://llm.example.com/v1"}
    response = client.post("/api/endpoints/", payload, format="json")
    assert response.status_code == 400 and "base_url" in response.data
    response = client.post("/api/endpoints/", {**payload, "base_url": "https://llm.example.com/v1"}, format="json")
    assert response.status_code == 201, response.data
    assert response.data["price_in_per_1k"] == "0.250000" and response.data["api_key_set"] is False
    assert client.post("/api/endpoints/", {**payload, "base_url": "https://x.example.com/v1"},
                       format="json").status_code == 400  # the name is taken
    # Switching an on-premise http endpoint to external is refused too (the check reads the whole object).
    make_endpoint()
    assert client.patch("/api/endpoints/local-x/", {"location": "external"}, format="json").status_code == 400
    response = client.patch("/api/endpoints/local-x/", {"enabled": False}, format="json")
    assert response.status_code == 200 and response.data["enabled"] is False
    local = LLMEndpoint.objects.get(name="local-x")
    assert AuditEntry.objects.filter(action="endpoint.update", object_id=str(local.pk)).count() == 1


def test_the_residency_policy_is_set_on_the_page_and_through_the_api(personas, api):
    workflow = make_workflow(personas["designer"])
    assert (workflow.allow_external_endpoints, workflow.require_redaction) == (False, True)
    client = browser(personas["admin"])
    assert client.post(f"/endpoints/residency/{workflow.pk}/", {"allow_external_endpoints": "on"}).status_code == 302
    workflow.refresh_from_db()
    assert (workflow.allow_external_endpoints, workflow.require_redaction) == (True, False)
    entry = AuditEntry.objects.filter(action="workflow.residency").latest("id")
    assert entry.data == {"before": {"allow_external_endpoints": False, "require_redaction": True},
                          "after": {"allow_external_endpoints": True, "require_redaction": False}}
    response = api(personas["admin"]).patch(f"/api/workflows/{workflow.pk}/residency/",
                                            {"require_redaction": True}, format="json")
    assert response.status_code == 200 and response.data == {"allow_external_endpoints": True,
                                                              "require_redaction": True}
    assert Workflow.objects.get(pk=workflow.pk).require_redaction


def test_the_list_shows_location_region_prices_and_the_workflows_that_use_each(personas):
    make_endpoint(name="cloud-gpt", location=LLMEndpoint.EXTERNAL, region="EU (Milan)",
                  base_url="https://llm.example.com/v1", price_in_per_1k=Decimal("0.25"))
    graph = {"nodes": [node("src", "source.upload"), node("ask", "llm", endpoint="cloud-gpt", prompt="{text}"),
                       node("out", "sink.table")],
             "edges": [edge("src", "ask"), edge("ask", "out")]}
    make_workflow(personas["designer"], graph=graph, name="Uses the cloud")
    for language, price in (("en", "0.250000"), ("it", "0,250000")):
        client = browser(personas["operator"])
        client.cookies["django_language"] = language
        text = client.get("/endpoints/").content.decode()
        row = text.split('id="endpoint-cloud-gpt"')[1].split("</tr>")[0]
        assert "EU (Milan)" in row and "https://llm.example.com/v1" in row and price in row
        assert "Uses the cloud" in row
        assert "/endpoints/llm/cloud-gpt/" not in text  # no edit link for a reader


def test_secrets_never_appear_in_any_answer(personas, api, monkeypatch):
    monkeypatch.setenv("CF_TEST_LLM_KEY", SECRET)
    make_endpoint()
    client = browser(personas["admin"])
    pages = [client.get("/endpoints/"), client.get("/endpoints/llm/local-x/"),
             client.get("/api/endpoints/"), client.get("/api/endpoints/local-x/")]
    for response in pages:
        assert response.status_code == 200
        assert SECRET.encode() not in response.content
    assert pages[2].json()[0]["api_key_set"] is True
    assert "api_key" not in pages[2].json()[0]
    assert b"The API key is set on the server." in pages[1].content
    monkeypatch.delenv("CF_TEST_LLM_KEY")
    assert client.get("/api/endpoints/local-x/").json()["api_key_set"] is False


def test_the_registry_nav_links_the_page(personas):
    assert b'href="/endpoints/"' in browser(personas["designer"]).get("/models/").content


def test_a_team_member_sees_only_their_team_s_workflows_among_the_users_of_an_endpoint_or_a_model(personas, api):
    from tests.builders import make_user, register_model
    from workflows.models import Membership, Team

    make_endpoint(name="cloud-gpt", location=LLMEndpoint.EXTERNAL, base_url="https://llm.example.com/v1")
    register_model("tickets", "classifier")
    graph = {"nodes": [node("src", "source.upload"), node("cls", "classify", model="tickets@production"),
                       node("ask", "llm", endpoint="cloud-gpt", prompt="{text}"), node("out", "sink.table")],
             "edges": [edge("src", "cls"), edge("cls", "ask"), edge("ask", "out")]}
    sales, legal = Team.objects.create(name="Sales"), Team.objects.create(name="Legal")
    for name, team in (("Sales line", sales), ("Legal line", legal)):
        Workflow.objects.filter(pk=make_workflow(personas["designer"], graph=graph, name=name).pk).update(team=team)
    member = make_user("sam")  # no group role: an operator in Sales only
    Membership.objects.create(team=sales, user=member, role="operator")
    answers = [browser(member).get(path).content.decode()
               for path in ("/endpoints/", "/models/tickets/", "/models/tickets/1/")]
    answers += [api(member).get(path).content.decode() for path in ("/api/endpoints/", "/api/models/tickets/")]
    for answer in answers:
        assert "Legal line" not in answer
    assert "Sales line" in answers[0] and "Sales line" in answers[1]
    assert "Legal line" in browser(personas["operator"]).get("/endpoints/").content.decode()  # a group role sees all
