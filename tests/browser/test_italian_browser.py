"""The product in Italian, in a real browser: the language picked in the top bar is kept, the checked
pages hold no English sentence the catalogue translates, and a decimal typed with a comma is stored
right."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.builders import make_user, make_workflow
from tests.kpi import ledger
from tests.test_translations import LOCALE, parse_po
from workflows.models import Baseline

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def english_left(text: str) -> list[str]:
    """English sentences of the catalogue (two words or more, translated differently) still on the page."""
    found = []
    visible = " ".join(text.split())
    for entry in parse_po(LOCALE / "django.po") + parse_po(LOCALE / "djangojs.po"):
        msgid, msgstr = entry["msgid"], entry["msgstr"].get(0, "")
        if "%" in msgid or "{" in msgid or msgid == msgstr or len(msgid.split()) < 2:
            continue  # placeholders are filled in, so the English text never shows verbatim
        if re.search(r"(?<![\w])" + re.escape(" ".join(msgid.split())) + r"(?![\w])", visible):
            found.append(msgid)
    return found


def test_an_italian_user_sees_italian_pages_and_types_decimal_commas(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer, name="Smistamento ticket")
    ledger.build(workflow, designer)
    admin = make_user("owner", "business_owner", "designer", "operator", "validator", "trainer", "admin")
    login(admin)

    # The language switcher in the top bar; the choice is kept for the next pages.
    page.select_option("#language-switcher select[name=language]", "it")
    page.wait_for_load_state()
    expect(page.locator("html")).to_have_attribute("lang", "it")

    pages = ["/", f"/workflows/{workflow.pk}/", "/templates/", "/runs/", "/review/", "/models/", "/promotions/",
             "/drift/", "/kpis/",
             f"/workflows/{workflow.pk}/kpis/?week=2025-W13", f"/workflows/{workflow.pk}/kpis/baseline/",
             "/audit/", "/datasets/"]
    leftovers = {}
    for url in pages:
        response = page.goto(url)
        assert response.status == 200, url
        expect(page.locator("html")).to_have_attribute("lang", "it")
        left = english_left(page.locator("body").inner_text())
        if left:
            leftovers[url] = left
    assert not leftovers, f"English left on Italian pages: {leftovers}"

    page.goto(f"/workflows/{workflow.pk}/kpis/baseline/")
    values = {"manual_minutes": "6", "hourly_cost": "28,50", "manual_accuracy": "95", "sla_hours": "24",
              "review_minutes": "2", "compute_eur_per_cpu_hour": "0,10", "grid_g_co2_per_kwh": "300",
              "watts_per_core": "20"}
    for name, value in values.items():
        page.fill(f"#baseline-form [name={name}]", value)
    page.click("#baseline-form button[type=submit]")
    page.wait_for_url(f"**/workflows/{workflow.pk}/kpis/")
    baseline = Baseline.objects.get(workflow=workflow)
    assert baseline.hourly_cost == Decimal("28.50") and baseline.compute_eur_per_cpu_hour == Decimal("0.10")

    page.goto(f"/workflows/{workflow.pk}/kpis/?week=2025-W13")
    savings = page.locator(".kpi-card").filter(has_text="Risparmi").locator(".kpi-value")
    expect(savings).to_have_text(re.compile(r"^\d{1,3}(\.\d{3})*,\d{2} €$"))  # € after the amount, decimal comma
    shot(page, "kpi-dashboard-it")
