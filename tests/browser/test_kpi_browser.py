"""KPIs in a real browser: a business owner sets the baseline, reads the dashboard of a run with
reviews (the fixed synthetic ledger of tests/kpi/ledger.py), moves the what-if and signs the pack."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.builders import make_user, make_workflow
from tests.kpi import ledger
from workflows.models import AuditEntry, WeeklyPack

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_business_owner_sets_baseline_reads_dashboard_and_signs_the_pack(page, login):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer, name="Ticket triage")
    ledger.build(workflow, designer)
    owner = make_user("owner", "business_owner")
    login(owner)

    page.click("nav >> text=KPIs")
    expect(page.locator("h1")).to_contain_text("all my workflows")
    page.goto(f"/workflows/{workflow.pk}/kpis/baseline/")
    values = {"manual_minutes": "6", "hourly_cost": "30", "manual_accuracy": "95", "sla_hours": "24",
              "review_minutes": "2", "compute_eur_per_cpu_hour": "0.10", "grid_g_co2_per_kwh": "300",
              "watts_per_core": "20"}
    for name, value in values.items():
        page.fill(f"#baseline-form [name={name}]", value)
    page.click("text=Save baseline")
    page.wait_for_url(f"**/workflows/{workflow.pk}/kpis/")

    page.goto(f"/workflows/{workflow.pk}/kpis/?week=2025-W13")
    cards = page.locator(".kpi-card")
    expect(cards.filter(has_text="Documents completed")).to_contain_text("8")
    expect(cards.filter(has_text="Automation rate")).to_contain_text("62.5 %")
    expect(cards.filter(has_text="Cycle time")).to_contain_text("2.5 h")
    expect(cards.filter(has_text="Savings")).to_contain_text("€ 20.94")
    expect(page.locator(".kpi-chart[data-ready='true']")).to_have_count(4)
    expect(page.locator(".kpi-chart canvas")).to_have_count(4)
    funnel = page.locator(".funnel[data-node='cas']")
    expect(funnel.locator(".funnel-bar")).to_contain_text("small model 3")
    funnel.locator(".wi-slider").fill("50")
    expect(funnel.locator(".wi-threshold")).to_have_text("0.50")
    expect(funnel.locator(".wi-automation")).to_have_text("85.0 %")
    shot(page, "kpi-dashboard")

    page.click("text=Weekly pack 2025-W13")
    expect(page.locator("#pack-status")).to_contain_text("Draft")
    page.fill("#pack-sign textarea[name=note]", "Reviewed with the team")
    page.click("#pack-sign button[type=submit]")
    expect(page.locator("#pack-status")).to_contain_text("Signed")
    expect(page.locator("#pack-sign")).to_have_count(0)
    shot(page, "kpi-pack-signed")
    pack = WeeklyPack.objects.get(workflow=workflow)
    assert pack.signed_by == owner and pack.intact and pack.note == "Reviewed with the team"
    assert AuditEntry.objects.filter(action="kpi.pack.sign", actor=owner).exists()
    page.goto(f"/workflows/{workflow.pk}/kpis/packs/")
    expect(page.locator("#pack-archive")).to_contain_text("signed by owner")
