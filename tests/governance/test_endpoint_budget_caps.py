"""An endpoint's monthly caps (tokens and euros), set by an administrator on the endpoint form and the
API: money and counts read the way people type them, never negative, audited, and what the workers'
budgets hold the endpoint to from the next call on."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from workflows.engine.budgets import endpoint_budget, month_of
from workflows.models import AuditEntry, LLMEndpoint

pytestmark = pytest.mark.django_db

FORM = {"name": "cloud", "base_url": "https://llm.example.com/v1", "model_name": "m", "location": "external",
        "region": "EU", "api_key_env": "", "price_in_per_1k": "0,25", "price_out_per_1k": "1", "enabled": "on"}


def browser(user, language: str = "en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def test_the_form_sets_the_monthly_caps_as_an_italian_types_them(personas):
    page = browser(personas["admin"], "it")
    form = page.get("/endpoints/llm/new/").content.decode()
    assert 'name="monthly_budget_tokens"' in form and 'name="monthly_budget_eur"' in form
    response = page.post("/endpoints/llm/new/", {**FORM, "monthly_budget_tokens": "1.000.000",
                                                 "monthly_budget_eur": "28,50"})
    assert response.status_code == 302, response.content.decode()[:2000]
    endpoint = LLMEndpoint.objects.get(name="cloud")
    assert (endpoint.monthly_budget_tokens, endpoint.monthly_budget_eur) == (1_000_000, Decimal("28.50"))
    after = AuditEntry.objects.get(action="endpoint.create").data["after"]
    assert after["monthly_budget_tokens"] == "1000000" and Decimal(after["monthly_budget_eur"]) == Decimal("28.5")
    # Shown back in the reader's language; the workers' monthly budget holds the endpoint to it.
    assert 'value="28,50"' in page.get("/endpoints/llm/cloud/").content.decode()
    row = endpoint_budget("cloud", month_of())
    assert (row.cap_tokens, row.cap_eur) == (1_000_000, Decimal("28.50"))


def test_empty_caps_mean_no_cap(personas):
    assert browser(personas["admin"]).post("/endpoints/llm/new/", FORM).status_code == 302
    endpoint = LLMEndpoint.objects.get(name="cloud")
    assert (endpoint.monthly_budget_tokens, endpoint.monthly_budget_eur) == (0, Decimal("0"))


@pytest.mark.parametrize("tokens, eur, field, said", [
    ("-1", "0", "monthly_budget_tokens", "cannot be negative"),
    ("0", "-0,01", "monthly_budget_eur", "cannot be negative"),
    ("12,5", "0", "monthly_budget_tokens", "whole number"),
    ("tanti", "0", "monthly_budget_tokens", "whole number"),
    ("0", "dieci", "monthly_budget_eur", "28,50"),
    ("0", "1,2345", "monthly_budget_eur", "2 decimal places"),
])
def test_a_bad_cap_is_refused_on_the_form_saying_what_to_type(personas, tokens, eur, field, said):
    response = browser(personas["admin"]).post("/endpoints/llm/new/", {**FORM, "monthly_budget_tokens": tokens,
                                                                       "monthly_budget_eur": eur})
    assert response.status_code == 400
    assert said in " ".join(response.context["form"].errors[field])
    assert not LLMEndpoint.objects.exists()


def test_the_api_sets_and_refuses_caps(personas, api):
    LLMEndpoint.objects.create(name="cloud", base_url="https://llm.example.com/v1", model_name="m",
                               location="external", region="EU")
    admin = api(personas["admin"])
    changed = admin.patch("/api/endpoints/cloud/", {"monthly_budget_tokens": 5000, "monthly_budget_eur": "28,50"},
                          format="json")
    assert changed.status_code == 200, changed.data
    assert changed.data["monthly_budget_tokens"] == 5000
    assert Decimal(changed.data["monthly_budget_eur"]) == Decimal("28.5")
    for bad in ({"monthly_budget_tokens": -5}, {"monthly_budget_eur": -1}, {"monthly_budget_eur": "abc"},
                {"monthly_budget_tokens": 1.5}):
        refused = admin.patch("/api/endpoints/cloud/", bad, format="json")
        assert refused.status_code == 400 and next(iter(bad)) in refused.data, (bad, refused.data)
    endpoint = LLMEndpoint.objects.get(name="cloud")
    assert (endpoint.monthly_budget_tokens, endpoint.monthly_budget_eur) == (5000, Decimal("28.50"))
    assert api(personas["designer"]).patch("/api/endpoints/cloud/", {"monthly_budget_tokens": 0},
                                           format="json").status_code == 403
