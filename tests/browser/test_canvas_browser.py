"""The canvas in a real browser: build, validate, save, history, restore, export/import, templates,
conflicts, read-only roles and a 100-node graph."""

from __future__ import annotations

import json
import re
import time
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.builders import make_user, make_workflow, triage_graph
from workflows.design.gallery import templates as gallery_templates
from workflows.design.versions import save_version
from workflows.graph import parse_graph

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def node(page, node_id: str):
    return page.locator(f".drawflow-node[data-node-id='{node_id}']")


def canvas_ready(page) -> None:
    page.wait_for_selector("#drawflow[data-ready='true']")


def drop(page, node_type: str, x: int, y: int) -> None:
    page.drag_and_drop(f".palette-item[data-type='{node_type}']", "#drawflow", target_position={"x": x, "y": y})


def connect(page, source: str, target: str, port: int = 1) -> None:
    node(page, source).locator(f".outputs .output_{port}").drag_to(node(page, target).locator(".inputs .input_1"))


def open_panel(page, node_id: str) -> None:
    node(page, node_id).locator(".cf-node-title").click()
    page.wait_for_selector(f"#node-form[data-node='{node_id}']")
    page.wait_for_selector("#panel:not([aria-busy])", state="attached")
    form_ready(page)


def form_ready(page) -> None:
    """Wait until htmx has bound the swapped-in form's triggers (a change before that is not posted)."""
    # A function, not an expression: Playwright evals expressions in the page, which the CSP refuses.
    page.wait_for_function("() => (document.querySelector('#node-form') || {})['htmx-internal-data']?.initHash")


@contextmanager
def panel_post(page):
    """Wait for the panel form's post and for its answer to be swapped in."""
    with page.expect_response(lambda r: "/panel/" in r.url and r.request.method == "POST"):
        yield
    page.wait_for_selector("#panel:not([aria-busy])", state="attached")
    form_ready(page)


def test_designer_builds_validates_saves_diffs_restores_exports_and_imports(page, login, registry):
    designer = make_user("designer", "designer")
    login(designer)
    page.fill("input[name=name]", "Support replies")
    page.click("text=Create")
    canvas_ready(page)
    expect(page.locator(".drawflow-node")).to_have_count(0)

    # Four nodes dragged from the palette, then wired: upload → classify → large model → table.
    drop(page, "source.upload", 130, 90)
    drop(page, "classify", 420, 90)
    drop(page, "llm", 420, 300)
    drop(page, "sink.table", 710, 300)
    expect(page.locator(".drawflow-node")).to_have_count(4)
    connect(page, "upload", "classify")
    connect(page, "classify", "llm")
    connect(page, "llm", "table")
    expect(page.locator(".drawflow .connection")).to_have_count(3)
    edges = page.evaluate("cfCanvas.toGraph().edges")
    assert {(e["source"], e["source_port"], e["target"]) for e in edges} == {
        ("upload", "out", "classify"), ("classify", "out", "llm"), ("llm", "out", "table")}

    # The classifier has no model yet: the validator marks it.
    expect(node(page, "classify")).to_have_class(re.compile("cf-has-error"))

    # Configure the classifier: zero-shot on MiniLM with two labels.
    open_panel(page, "classify")
    with panel_post(page):
        page.select_option("#cfg-model", "minilm@production")
    with panel_post(page):
        page.select_option("#cfg-method", "zero_shot")
    page.fill("#cfg-labels", "billing: invoices and payments\ntechnical: errors and outages")
    with panel_post(page):
        page.click("#node-form button[type=submit]")
    expect(page.locator("#applied")).to_be_visible()
    expect(node(page, "classify")).not_to_have_class(re.compile("cf-has-error"))
    config = page.evaluate("cfCanvas.toGraph().nodes.find(n => n.id === 'classify').config")
    assert config["model"] == "minilm@production" and config["method"] == "zero_shot"
    assert config["labels"] == {"billing": "invoices and payments", "technical": "errors and outages"}

    # The large model's prompt needs a field nobody adds: marked on the node, with the fix.
    open_panel(page, "llm")
    with panel_post(page):
        page.select_option("#cfg-endpoint", "local-smollm2")
    page.fill("#cfg-prompt", "Reply to this ticket. Summary: {summary}")
    with panel_post(page):
        page.click("#node-form button[type=submit]")
    expect(node(page, "llm")).to_have_class(re.compile("cf-has-error"))
    expect(node(page, "llm")).to_have_attribute("title", re.compile("needs the field 'summary'"))
    expect(page.locator("#problems")).to_contain_text("Add a Summarise node upstream")
    shot(page, "canvas-validation-mark")

    # A draft with problems can be saved (Ctrl+S), and says it cannot run.
    page.fill("#save-message", "First draft")
    page.keyboard.press("Control+s")
    expect(page.locator("#save-result")).to_contain_text("Saved v2 as a draft")
    expect(page.locator("#version-status")).to_have_text("v2 · not runnable")

    # Fix the prompt, save with the button.
    open_panel(page, "llm")
    page.fill("#cfg-prompt", "Reply to this {label} ticket: {text}")
    with panel_post(page):
        page.click("#node-form button[type=submit]")
    expect(page.locator(".drawflow-node.cf-has-error")).to_have_count(0)
    page.fill("#save-message", "Prompt uses the ticket text")
    page.click("#save")
    expect(page.locator("#save-result")).to_have_text("Saved v3.")
    expect(page.locator("#version-status")).to_have_text("v3 · runnable")

    # History: versions with author and message; diff v2 → v3; restore v2.
    page.click("#history-box summary")
    history = page.locator("#history")
    expect(history).to_contain_text("Prompt uses the ticket text")
    expect(history).to_contain_text("designer")
    history.get_by_role("button", name="Compare A → B").click()
    expect(page.locator("#diff")).to_contain_text("v2 → v3")
    expect(page.locator("#diff")).to_contain_text("prompt")
    shot(page, "canvas-history-diff")
    with page.expect_navigation():
        page.click("[data-restore='2']")
    canvas_ready(page)
    expect(page.locator("#version-status")).to_contain_text("v4")
    expect(node(page, "llm")).to_have_class(re.compile("cf-has-error"))
    page.click("#history-box summary")
    expect(page.locator("#history")).to_contain_text("restored v2")

    # Export the latest version, import it as a new workflow.
    with page.expect_download() as download:
        page.click("#export")
    document = json.loads(open(download.value.path(), encoding="utf-8").read())
    assert document["exported_version"] == 4 and len(document["graph"]["nodes"]) == 4
    page.goto("/")
    page.set_input_files("#import input[type=file]", download.value.path())
    page.fill("#import input[name=name]", "Support replies (imported)")
    page.click("#import button[type=submit]")
    canvas_ready(page)
    expect(page.locator("h1")).to_have_text("Support replies (imported)")
    expect(page.locator(".drawflow-node")).to_have_count(4)
    expect(page.locator(".drawflow .connection")).to_have_count(3)


def test_delete_key_removes_the_selected_node(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    login(designer)
    page.goto(f"/workflows/{workflow.pk}/")
    canvas_ready(page)
    expect(page.locator(".drawflow-node")).to_have_count(6)
    node(page, "ext").locator(".cf-node-title").click()
    page.keyboard.press("Delete")
    expect(page.locator(".drawflow-node")).to_have_count(5)
    expect(page.locator("#dirty")).to_be_visible()
    assert "ext" not in [n["id"] for n in page.evaluate("cfCanvas.toGraph().nodes")]


def test_import_refuses_a_broken_file_and_says_why(page, login, tmp_path):
    login(make_user("designer", "designer"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "cognitive-factory/workflow", "format_version": 1, "name": "X", '
                   '"graph": {"nodes": [{"id": "a"}]}}')
    page.goto("/")
    page.set_input_files("#import input[type=file]", str(bad))
    page.click("#import button[type=submit]")
    expect(page.locator(".import-errors")).to_contain_text("'type' is required")


def test_every_template_opens_complete_on_the_canvas(page, login, registry):
    login(make_user("designer", "designer"))
    for template in gallery_templates():
        page.goto("/templates/")
        page.locator(f"article[data-template='{template['slug']}'] button").click()
        canvas_ready(page)
        expect(page.locator("h1")).to_have_text(template["name"])
        expect(page.locator(".drawflow-node")).to_have_count(len(template["graph"]["nodes"]))
        expect(page.locator(".drawflow .connection")).to_have_count(len(template["graph"]["edges"]))
        expect(page.locator("#problem-count")).to_have_text("runnable")
        shot(page, f"template-{template['slug']}")


def test_a_conflicting_save_is_refused_and_can_be_saved_as_a_copy(page, login, registry):
    designer = make_user("designer", "designer")
    admin = make_user("admin", "admin")
    workflow = make_workflow(designer, name="Triage")
    login(designer)
    page.goto(f"/workflows/{workflow.pk}/")
    canvas_ready(page)
    # Meanwhile an administrator saves version 2.
    save_version(workflow, parse_graph(triage_graph()), user=admin, parent=1, message="Admin tweak")
    drop(page, "sink.export", 500, 400)
    page.keyboard.press("Control+s")
    conflict = page.locator("#conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("Version 2 was saved by admin")
    expect(conflict).to_contain_text("Admin tweak")
    expect(page.locator("#version-status")).to_contain_text("v1")
    shot(page, "canvas-conflict")
    with page.expect_navigation():
        page.click("#conflict-copy")
    canvas_ready(page)
    expect(page.locator("h1")).to_have_text("Triage (copy)")
    expect(page.locator(".drawflow-node")).to_have_count(7)
    workflow.refresh_from_db()
    assert workflow.head == 2  # nothing was overwritten


def test_an_operator_can_look_but_not_drag_or_save(page, login, registry):
    designer = make_user("designer", "designer")
    workflow = make_workflow(designer)
    login(make_user("operator", "operator"))
    page.goto(f"/workflows/{workflow.pk}/")
    canvas_ready(page)
    expect(page.locator(".read-only-tag")).to_be_visible()
    expect(page.locator("#save")).to_have_count(0)
    expect(page.locator(".palette-item[draggable]")).to_have_count(0)
    drop(page, "classify", 300, 300)
    page.locator(".palette-item[data-type='classify']").click()
    expect(page.locator(".drawflow-node")).to_have_count(6)
    before = node(page, "cls").bounding_box()
    node(page, "cls").locator(".cf-node-title").drag_to(page.locator("#drawflow"), target_position={"x": 600, "y": 500})
    assert node(page, "cls").bounding_box() == before
    # The settings can be read, not changed.
    open_panel(page, "cls")
    expect(page.locator("#cfg-model")).to_be_disabled()
    expect(page.locator("#node-form button[type=submit]")).to_have_count(0)
    saves = []
    page.on("request", lambda r: saves.append(r.url) if r.method == "POST" and "/versions/" in r.url else None)
    node(page, "cls").locator(".cf-node-title").click()
    page.keyboard.press("Delete")
    page.keyboard.press("Control+s")
    page.wait_for_timeout(300)
    assert saves == []
    expect(page.locator(".drawflow-node")).to_have_count(6)
    shot(page, "canvas-read-only")


def test_a_hundred_node_workflow_opens_and_validates(page, login, registry):
    from rest_framework.test import APIClient

    designer = make_user("designer", "designer")
    nodes = [{"id": "src", "type": "source.upload", "config": {}, "position": {"x": 40, "y": 40}}]
    edges = []
    previous = "src"
    for i in range(98):
        row, col = divmod(i + 1, 10)
        nodes.append({"id": f"n{i}", "type": "extract", "config": {"patterns": ["email"], "entities": []},
                      "position": {"x": 40 + col * 240, "y": 40 + row * 120}})
        edges.append({"source": previous, "source_port": "out", "target": f"n{i}", "target_port": "in"})
        previous = f"n{i}"
    nodes.append({"id": "out", "type": "sink.table", "config": {}, "position": {"x": 40 + 9 * 240, "y": 40 + 9 * 120}})
    edges.append({"source": previous, "source_port": "out", "target": "out", "target_port": "in"})
    client = APIClient()
    client.force_authenticate(designer)
    response = client.post("/api/workflows/", {"name": "Hundred", "graph": {"nodes": nodes, "edges": edges}},
                           format="json")
    assert response.status_code == 201, response.data

    login(designer)
    started = time.monotonic()
    page.goto(f"/workflows/{response.data['id']}/")
    canvas_ready(page)
    expect(page.locator(".drawflow-node")).to_have_count(100)
    expect(page.locator(".drawflow .connection")).to_have_count(99)
    expect(page.locator("#problem-count")).to_have_text("runnable")
    elapsed = time.monotonic() - started
    assert elapsed < 8, f"opening a 100-node workflow took {elapsed:.1f} s"
    # Still editable at that size: drop a node, it gets a fresh id.
    drop(page, "sink.export", 400, 300)
    expect(page.locator(".drawflow-node")).to_have_count(101)
    assert page.evaluate("cfCanvas.toGraph().nodes.filter(n => n.id === 'export').length") == 1
    shot(page, "canvas-100-nodes")
