"""Every main page on a phone (390×844): nothing scrolls sideways. The top bar wraps, wide tables scroll
inside their own box, and the canvas is there to look at (pan and zoom), its palette and editing tools
hidden."""

from __future__ import annotations

import os

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.builders import make_baseline, make_user, make_workflow, register_model
from tests.kpi import ledger
from workflows.roles import ROLES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def overflow(page) -> int:
    """How many CSS pixels the page is wider than the window (0 when nothing scrolls sideways)."""
    page.wait_for_load_state("load")
    return page.evaluate(OVERFLOW)


def test_every_main_page_fits_a_phone_without_sideways_scrolling(page, login, registry):
    register_model("tickets", labels=["billing", "technical", "account"])
    boss = make_user("boss-with-every-role", *ROLES)
    workflow = make_workflow(boss, name="Ticket triage with a rather long name for a phone")
    run = ledger.build(workflow, boss)
    make_baseline(workflow, boss)
    from workflows.models import Membership, Team

    sales = Team.objects.create(name="Vendite e assistenza clienti della sede di Milano")
    Membership.objects.create(team=sales, user=boss, role="operator")
    page.set_viewport_size(PHONE)

    page.goto("/accounts/login/")
    wide = {"login": overflow(page)}
    login(boss)
    pages = {
        "workflow list": "/",
        "canvas": f"/workflows/{workflow.pk}/",
        "templates": "/templates/",
        "runs": "/runs/",
        "a run": f"/runs/{run.pk}/",
        "results": f"/runs/{run.pk}/results/",
        "review": "/review/",
        "models": "/models/",
        "a model": "/models/tickets/",
        "promotions": "/promotions/",
        "drift": "/drift/",
        "KPIs": "/kpis/",
        "a dashboard": f"/workflows/{workflow.pk}/kpis/?week=2025-W13",
        "a weekly pack": f"/workflows/{workflow.pk}/kpis/packs/2025-W13/",
        "baseline": f"/workflows/{workflow.pk}/kpis/baseline/",
        "audit": "/audit/",
        "datasets": "/datasets/",
        "teams": "/teams/",
        "endpoints": "/endpoints/",
        "notifications": "/notifications/",
    }
    failed = {}
    for name, url in pages.items():
        response = page.goto(url)
        if response.status != 200:
            failed[name] = response.status
        wide[name] = overflow(page)
        if os.environ.get("NARROW_SHOTS"):
            shot(page, f"narrow-{name.replace(' ', '-')}")
    too_wide = {name: px for name, px in wide.items() if px > 1}
    assert not too_wide, f"pages wider than a 390 px phone (extra pixels): {too_wide}"
    assert not failed, f"pages that did not answer 200: {failed}"


def test_the_top_bar_wraps_and_the_canvas_is_read_only_on_a_phone(page, login, registry):
    register_model("tickets")
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    page.set_viewport_size(PHONE)
    login(designer)

    page.goto("/")
    bar = page.locator("header.topbar").bounding_box()
    assert bar["width"] <= PHONE["width"]
    for link in page.locator("header.topbar nav a").all():
        box = link.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"] + 1, link.inner_text()

    page.goto(f"/workflows/{workflow.pk}/")
    expect(page.locator("#drawflow")).to_be_visible()
    expect(page.locator("#palette")).to_be_hidden()
    expect(page.locator("#save")).to_be_hidden()
    expect(page.locator("[data-zoom='in']")).to_be_visible()
    canvas = page.locator("#drawflow").bounding_box()
    assert canvas["width"] >= 300 and canvas["height"] >= 300
    assert overflow(page) <= 1
