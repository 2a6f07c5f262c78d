"""Which run the canvas shows: the workflow's latest, from the page's first render and on its socket,
even while an older live (intake) run is still open; and any one of its last runs, picked by hand."""

from __future__ import annotations

import pytest

from tests.live.test_consumers import connect_and_read
from workflows.engine import launch
from workflows.live.consumers import current_run_id

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_canvas_socket_shows_a_newer_run_than_an_open_live_run(make_run, workflow, personas):
    live = launch.create_run(workflow, user=personas["operator"], items=[], live=True)
    newer = make_run(16, run_now=True)
    assert newer.pk > live.pk
    assert current_run_id(workflow.pk) == newer.pk
    _, _, [html] = connect_and_read(f"/ws/workflows/{workflow.pk}/live/", personas["operator"])
    assert f'data-run="{newer.pk}"' in html and f'data-run="{live.pk}"' not in html


def test_the_canvas_page_names_the_latest_run_before_its_socket_says_anything(make_run, workflow, personas, client):
    make_run(8, run_now=True)
    latest = make_run(8, run_now=True)
    client.force_login(personas["operator"])
    page = client.get(f"/workflows/{workflow.pk}/").content.decode()
    assert f'id="cf-live-run" class="cf-live-run" data-run="{latest.pk}"' in page
    assert "No runs yet" not in page


def test_the_run_picker_lists_the_last_runs_newest_first(make_run, workflow, personas, client):
    runs = [make_run(4, run_now=True) for _ in range(3)]
    client.force_login(personas["operator"])
    page = client.get(f"/workflows/{workflow.pk}/").content.decode()
    picker = page[page.index('<select id="run-picker"'):]
    picker = picker[:picker.index("</select>")]
    positions = [picker.index(f'<option value="{r.pk}"') for r in reversed(runs)]
    assert positions == sorted(positions)
    assert "Succeeded" in picker or "succeeded" in picker


def test_a_picked_run_shows_its_own_final_stats(make_run, workflow, personas, client):
    first = make_run(16, run_now=True)
    make_run(24, run_now=True)
    client.force_login(personas["operator"])
    html = client.get(f"/workflows/{workflow.pk}/canvas-run/", {"run": first.pk}).content.decode()
    assert f'id="cf-live-run" class="cf-live-run" hx-swap-oob="true" data-run="{first.pk}"' in html
    assert 'id="cf-live-ext"' in html and f'data-run="{first.pk}"' in html
    assert '"route": {"else": 8, "italian": 8}' in html.replace("&quot;", '"')


def test_the_node_samples_read_the_picked_run(make_run, workflow, personas, client):
    first = make_run(4, run_now=True)
    second = make_run(4, run_now=True)
    client.force_login(personas["operator"])
    picked = client.get(f"/workflows/{workflow.pk}/samples/", {"node": "ext", "run": first.pk}).content.decode()
    latest = client.get(f"/workflows/{workflow.pk}/samples/", {"node": "ext"}).content.decode()
    assert f"/runs/{first.pk}/" in picked and f"/runs/{second.pk}/" in latest


def test_a_run_of_another_workflow_cannot_be_picked(make_run, workflow, personas, client):
    from tests.engine.helpers import make_runnable_workflow

    other = make_runnable_workflow(personas["designer"])
    theirs = launch.create_run(other, user=personas["operator"], items=[{"text": "x"}])
    client.force_login(personas["operator"])
    assert client.get(f"/workflows/{workflow.pk}/canvas-run/", {"run": theirs.pk}).status_code == 404
