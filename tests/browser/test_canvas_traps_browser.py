"""The canvas without traps: a readable view with a true zoom label, arranging, placing, deleting
connections, undo and redo, unsaved work kept, panel typing kept, no sink no run, a node's last items."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.browser.test_canvas_browser import canvas_ready, form_ready, node, open_panel
from tests.builders import (
    chain_graph,
    edge,
    ledger_decision,
    ledger_item,
    ledger_run,
    make_user,
    make_workflow,
    triage_graph,
)
from tests.builders import node as graph_node

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

READABLE = 0.7  # the smallest zoom at which node titles (13 px) can still be read


def zoom(page) -> float:
    return page.evaluate("cfCanvas.editor.zoom")


def zoom_label(page) -> str:
    return page.locator("[data-zoom=reset]").inner_text().strip()


def inside(box, frame) -> bool:
    return (box["x"] >= frame["x"] - 1 and box["y"] >= frame["y"] - 1
            and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1
            and box["y"] + box["height"] <= frame["y"] + frame["height"] + 1)


def overlaps(a, b) -> bool:
    return not (a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"])


def boxes(page) -> dict[str, dict]:
    return {el.get_attribute("data-node-id"): el.bounding_box() for el in page.locator(".drawflow-node").all()}


def open_canvas(page, login, user, workflow) -> None:
    login(user)
    page.goto(f"/workflows/{workflow.pk}/")
    canvas_ready(page)


def test_a_large_workflow_opens_readable_with_a_true_zoom_label_and_scrolls(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer, chain_graph(14), name="Long chain")
    open_canvas(page, login, designer, workflow)
    assert zoom(page) >= READABLE
    assert zoom_label(page) == f"{round(zoom(page) * 100)}%"
    frame = page.locator("#drawflow").bounding_box()
    assert inside(node(page, "src").bounding_box(), frame)  # starts where the workflow starts
    # Fit never shrinks below readable: it shows what fits and the rest scrolls.
    page.click("[data-zoom=fit]")
    assert zoom(page) >= READABLE
    assert zoom_label(page) == f"{round(zoom(page) * 100)}%"
    page.click("[data-zoom=in]")
    assert zoom_label(page) == f"{round(zoom(page) * 100)}%"
    before = node(page, "src").bounding_box()
    page.mouse.move(frame["x"] + frame["width"] / 2, frame["y"] + frame["height"] / 2)
    page.mouse.wheel(0, 300)
    page.wait_for_timeout(100)
    after = node(page, "src").bounding_box()
    assert after["y"] < before["y"] - 100 and after["width"] == pytest.approx(before["width"])
    shot(page, "canvas-traps-readable")


def test_a_small_workflow_opens_whole_at_full_size(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    open_canvas(page, login, designer, workflow)
    frame = page.locator("#drawflow").bounding_box()
    assert all(inside(box, frame) for box in boxes(page).values())
    assert zoom_label(page) == f"{round(zoom(page) * 100)}%"
    assert zoom(page) >= READABLE


def test_arrange_lays_the_graph_out_left_to_right(page, login, registry):
    designer = make_user("designer", "designer")
    graph = triage_graph()
    for i, n in enumerate(reversed(graph["nodes"])):  # drawn backwards: the sink first, the source last
        n["position"] = {"x": 40 + i * 120, "y": 40 + (i % 2) * 30}
    workflow = make_workflow(designer, graph)
    open_canvas(page, login, designer, workflow)
    page.click("#arrange")
    placed = boxes(page)
    for e in graph["edges"]:
        assert placed[e["source"]]["x"] + placed[e["source"]]["width"] < placed[e["target"]]["x"], e
    ids = list(placed)
    assert not any(overlaps(placed[a], placed[b]) for i, a in enumerate(ids) for b in ids[i + 1:])
    expect(page.locator("#dirty")).to_be_visible()


def test_a_palette_click_places_the_node_in_free_space_after_the_selected_one(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    open_canvas(page, login, designer, workflow)
    node(page, "ext").locator(".cf-node-title").click()
    page.locator(".palette-item[data-type='sink.export']").click()
    expect(page.locator(".drawflow-node")).to_have_count(7)
    edges = page.evaluate("cfCanvas.toGraph().edges")
    assert {"source": "ext", "source_port": "out", "target": "export", "target_port": "in"} in edges
    placed = boxes(page)
    new = placed.pop("export")
    assert new["x"] > placed["ext"]["x"] + placed["ext"]["width"]
    assert not any(overlaps(new, other) for other in placed.values())
    # With nothing selected the node still lands where nothing else is.
    page.mouse.click(*_empty_spot(page))
    page.locator(".palette-item[data-type='summarise']").click()
    expect(page.locator(".drawflow-node")).to_have_count(8)
    placed = boxes(page)
    new = placed.pop("summarise")
    assert not any(overlaps(new, other) for other in placed.values())
    assert inside(new, page.locator("#drawflow").bounding_box())


def _empty_spot(page) -> tuple[float, float]:
    frame = page.locator("#drawflow").bounding_box()
    return frame["x"] + frame["width"] - 15, frame["y"] + frame["height"] - 15


@pytest.mark.parametrize("key", ["Delete", "Backspace"])
def test_delete_or_backspace_removes_the_selected_connection(page, login, registry, key):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    open_canvas(page, login, designer, workflow)
    expect(page.locator(".drawflow .connection")).to_have_count(6)
    path = page.locator(".connection.node_in_node-6.node_out_node-4 .main-path")  # ext → out
    box = path.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator(".main-path.selected")).to_have_count(1)
    page.keyboard.press(key)
    expect(page.locator(".drawflow .connection")).to_have_count(5)
    expect(page.locator(".drawflow-node")).to_have_count(6)
    assert {"source": "ext", "source_port": "out", "target": "out", "target_port": "in"} not in page.evaluate(
        "cfCanvas.toGraph().edges")
    expect(page.locator("#dirty")).to_be_visible()


def test_undo_and_redo_walk_the_edits_since_the_last_save(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    open_canvas(page, login, designer, workflow)
    page.mouse.click(*_empty_spot(page))
    page.locator(".palette-item[data-type='sink.export']").click()
    expect(page.locator(".drawflow-node")).to_have_count(7)
    node(page, "rev").locator(".cf-node-title").click()
    page.keyboard.press("Delete")
    expect(page.locator(".drawflow-node")).to_have_count(6)
    page.mouse.click(*_empty_spot(page))
    page.keyboard.press("Control+z")
    expect(page.locator(".drawflow-node")).to_have_count(7)
    expect(node(page, "rev")).to_have_count(1)
    expect(page.locator(".drawflow .connection")).to_have_count(6)  # its connections came back too
    page.keyboard.press("Control+z")
    expect(page.locator(".drawflow-node")).to_have_count(6)
    expect(node(page, "export")).to_have_count(0)
    page.keyboard.press("Control+Shift+z")
    expect(node(page, "export")).to_have_count(1)
    page.keyboard.press("Control+Shift+z")
    expect(node(page, "rev")).to_have_count(0)
    # Saving starts a new history: nothing before the save is undone.
    page.keyboard.press("Control+s")
    expect(page.locator("#save-result")).to_contain_text("Saved v2")
    page.mouse.click(*_empty_spot(page))
    page.keyboard.press("Control+z")
    expect(page.locator(".drawflow-node")).to_have_count(6)
    expect(page.locator("#dirty")).to_be_hidden()


def test_leaving_with_unsaved_changes_asks_first(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    open_canvas(page, login, designer, workflow)
    dialogs = []
    page.on("dialog", lambda d: dialogs.append(d.type))
    page.locator(".palette-item[data-type='sink.export']").click()
    expect(page.locator("#dirty")).to_be_visible()
    page.goto("/")
    assert "beforeunload" in dialogs


def test_a_test_run_asks_to_save_unsaved_changes_first(page, login, registry):
    # Ordinary runs use the live version, which the screen's edits do not touch; a test run of the draft
    # uses the saved draft, so with edits on screen it offers to save them and runs what was on screen.
    from workflows.design.versions import save_version
    from workflows.graph import parse_graph

    designer = make_user("designer", "designer", "operator")
    workflow = make_workflow(designer, chain_graph(2), name="Short chain")
    save_version(workflow, parse_graph(chain_graph(3)), user=designer, parent=1)  # draft v2, live v1
    open_canvas(page, login, designer, workflow)
    messages = []
    page.on("dialog", lambda d: messages.append(d.message))
    node(page, "n1").locator(".cf-node-title").click()
    page.locator(".palette-item[data-type='sink.export']").click()
    expect(page.locator("#dirty")).to_be_visible()
    with page.expect_navigation(url=re.compile(r"/run/\?version=3$")):
        page.click("#test-run")
    assert any("unsaved" in m for m in messages)
    workflow.refresh_from_db()
    assert workflow.head == 3 and workflow.published == 1  # what the test run uses was on screen; live stays


def test_typing_a_name_right_after_editing_labels_keeps_every_letter(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    open_canvas(page, login, designer, workflow)
    open_panel(page, "cls")
    page.fill("#cfg-labels", "billing: invoices and payments\ntechnical: errors")
    with page.expect_response(lambda r: "/panel/" in r.url and r.request.method == "POST"):
        page.click("#cfg--label")  # the labels' change event posts the form while the name is typed
        page.keyboard.type("Ticket classifier", delay=40)
    page.wait_for_timeout(300)
    expect(page.locator("#cfg--label")).to_have_value("Ticket classifier")
    expect(page.locator("#cfg--label")).to_be_focused()
    page.keyboard.press("Tab")
    expect(node(page, "cls").locator(".cf-node-title")).to_have_text("Ticket classifier")
    form_ready(page)
    config = page.evaluate("cfCanvas.toGraph().nodes.find(n => n.id === 'cls').config")
    assert config["labels"] == {"billing": "invoices and payments", "technical": "errors"}


def test_a_workflow_without_a_sink_is_not_runnable(page, login, registry):
    designer = make_user("designer", "designer", "operator")
    graph = {"nodes": [graph_node("src", "source.upload"), graph_node("ext", "extract", patterns=["email"])],
             "edges": [edge("src", "ext")]}
    workflow = make_workflow(designer, graph, name="No sink")
    open_canvas(page, login, designer, workflow)
    expect(page.locator("#problem-count")).to_have_text("1 error")
    expect(page.locator("#problems")).to_contain_text("no sink")
    expect(page.locator("#version-status")).to_contain_text("not runnable")
    expect(page.get_by_role("link", name="Run…")).to_have_count(0)


def test_a_node_shows_its_last_inputs_outputs_and_dead_letters(page, login, registry):
    from django.utils import timezone

    from workflows.models import DeadLetter

    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    run = ledger_run(workflow, designer)
    now = timezone.now()
    for seq in range(25):
        item = ledger_item(run, seq, received=now, payload={"text": f"ticket number {seq}"})
        if seq == 24:
            ledger_decision(run, item, "ext", port="dead", error="pattern engine crashed")
            DeadLetter.objects.create(run=run, item=item, node="ext", reason="pattern engine crashed", attempts=3)
        else:
            ledger_decision(run, item, "cls", label="billing", confidence=0.9)
            ledger_decision(run, item, "ext", output={"fields": {"email": f"a{seq}@example.com"}})
    open_canvas(page, login, designer, workflow)
    node(page, "ext").locator(".cf-node-title").click()
    samples = page.locator("#samples")
    expect(samples.locator("tbody tr")).to_have_count(20)
    expect(samples).to_contain_text("ticket number 23")
    expect(samples).to_contain_text("billing")  # what reached the node: the classifier's label
    expect(samples).to_contain_text("a23@example.com")
    expect(samples).not_to_contain_text("ticket number 4")
    expect(samples.locator("tr.dead")).to_contain_text("pattern engine crashed")
    expect(samples.locator(".dead-letters")).to_contain_text("pattern engine crashed")
    shot(page, "canvas-node-samples")
