"""Around the canvas: two versions side by side from the history, which run the canvas shows (the latest,
or one picked), and a phone's canvas that can be looked at but not changed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_canvas_browser import node
from tests.browser.test_canvas_traps_browser import open_canvas
from tests.builders import make_user, make_workflow, triage_graph
from workflows.design.versions import save_version
from workflows.graph import parse_graph

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_the_history_opens_two_versions_side_by_side(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    graph = triage_graph()
    graph["nodes"][1]["config"]["shadow"] = True
    save_version(workflow, parse_graph(graph), user=designer, parent=1, message="Shadow on")
    open_canvas(page, login, designer, workflow)

    page.locator("#history-box summary").click()
    page.get_by_role("link", name="Compare side by side").click()

    expect(page).to_have_url(f"{page.url.split('/workflows/')[0]}/workflows/{workflow.pk}/diff/?from=1&to=2")
    row = page.locator("tr[data-key='shadow']")
    expect(row.locator("th")).to_have_text("Run the shadow version alongside")
    expect(row.locator("td.old")).to_have_text("not set (default: no)")
    expect(row.locator("td.new")).to_have_text("yes")
    shot(page, "diff-side-by-side")


def test_the_side_by_side_link_follows_the_radios(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    for _ in range(2):
        save_version(workflow, parse_graph(triage_graph()), user=designer, parent=workflow.latest.number, message="")
    open_canvas(page, login, designer, workflow)
    page.locator("#history-box summary").click()
    page.get_by_label("Compare from v1").check()
    page.get_by_role("link", name="Compare side by side").click()
    expect(page.locator("th.side-a")).to_contain_text("A: v1")
    expect(page.locator("th.side-b")).to_contain_text("B: v3")


def test_on_a_phone_a_node_cannot_be_dragged_but_the_canvas_pans(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    page.set_viewport_size(PHONE)
    open_canvas(page, login, designer, workflow)
    assert page.evaluate("cfCanvas.editor.editor_mode") == "view"

    before = page.evaluate("cfCanvas.toGraph().nodes.find(n => n.id === 'cls').position")
    box = node(page, "cls").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 40, steps=6)
    page.mouse.up()

    assert page.evaluate("cfCanvas.toGraph().nodes.find(n => n.id === 'cls').position") == before
    assert page.evaluate("cfCanvas.state.dirty") is False
    moved = node(page, "cls").bounding_box()
    assert abs(moved["x"] - box["x"] - 60) < 2 and abs(moved["y"] - box["y"] - 40) < 2  # the view panned

    page.set_viewport_size({"width": 1280, "height": 900})  # a wider window: editing again
    page.wait_for_timeout(100)
    assert page.evaluate("cfCanvas.editor.editor_mode") == "edit"


def test_a_picked_run_shows_its_badges_and_its_samples(page, login, registry, settings):
    from tests.engine.helpers import drain, make_runnable_workflow, tickets
    from workflows.engine import launch

    settings.ENGINE_SHARD_SIZE = 40
    designer = make_user("designer", "designer", "operator")
    workflow = make_runnable_workflow(designer)
    first = launch.create_run(workflow, user=designer, items=tickets(6))
    drain()
    latest = launch.create_run(workflow, user=designer, items=tickets(10))
    drain()
    open_canvas(page, login, designer, workflow)
    expect(page.locator("#cf-live-run")).to_have_attribute("data-run", str(latest.pk))  # before any socket

    page.locator("#run-picker").select_option(str(first.pk))
    expect(page.locator("#cf-live-run")).to_have_attribute("data-run", str(first.pk))
    expect(page.locator("#cf-live-ext .cf-live-in")).to_have_text("6")
    expect(page.locator("#cf-live-edges")).to_have_attribute("data-run", str(first.pk))
    node(page, "ext").locator(".cf-node-title").click()
    expect(page.locator("#samples")).to_contain_text(f"Run #{first.pk}")
    shot(page, "canvas-run-picked")

    page.locator("#run-picker").select_option("")
    expect(page.locator("#cf-live-ext .cf-live-in")).to_have_text("10")
    expect(page.locator("#samples")).to_contain_text(f"Run #{latest.pk}")
