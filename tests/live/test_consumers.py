"""The live sockets: who may subscribe, the snapshot on connect, read-only, the canvas's run.

Async parts run in a loop of their own (tests/live/sockets.py); the rows they read are committed
(transactional tests).
"""

from __future__ import annotations

import re

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from tests.builders import make_workflow
from tests.live.sockets import communicator, receive, run_async
from workflows.live.groups import CLOSE_ANONYMOUS, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_READ_ONLY
from workflows.models import AuditEntry, NodeStats

pytestmark = pytest.mark.django_db(transaction=True)
NODES = ("src", "ext", "route", "out")


def connect_and_read(path: str, user=None, *, timeout: float = 3) -> tuple[bool, int | None, list[str]]:
    async def go():
        com = communicator(path, user)
        connected, code = await com.connect(timeout=timeout)
        messages = []
        if connected:  # the snapshot: one frame
            messages.append(await receive(com, timeout, frames=1))
            await com.disconnect()
        return connected, code, messages

    return run_async(go)


@pytest.mark.parametrize("route", ["run", "workflow"])
def test_anonymous_subscriptions_are_refused_and_audited(make_run, route):
    run = make_run(8)
    path = f"/ws/runs/{run.pk}/" if route == "run" else f"/ws/workflows/{run.workflow_id}/live/"
    connected, code, _ = connect_and_read(path)
    assert not connected and code == CLOSE_ANONYMOUS
    entry = AuditEntry.objects.filter(action="access.denied").latest("id")
    assert entry.actor is None and entry.data["channel"] == "websocket" and entry.data["reason"] == "anonymous"


def test_a_script_reconnecting_without_a_session_writes_one_audit_row_not_one_each(make_run):
    run = make_run(8)
    before = AuditEntry.objects.filter(action="access.denied").count()
    for _ in range(5):
        connected, code, _ = connect_and_read(f"/ws/runs/{run.pk}/")
        assert not connected and code == CLOSE_ANONYMOUS
    assert AuditEntry.objects.filter(action="access.denied").count() == before + 1


@pytest.mark.parametrize("route", ["run", "workflow"])
def test_an_outsider_is_refused_before_accept_and_audited(make_run, personas, route):
    run = make_run(8)
    path = f"/ws/runs/{run.pk}/" if route == "run" else f"/ws/workflows/{run.workflow_id}/live/"
    connected, code, _ = connect_and_read(path, personas["outsider"])
    assert not connected and code == CLOSE_FORBIDDEN
    entry = AuditEntry.objects.filter(action="access.denied").latest("id")
    assert entry.actor == personas["outsider"] and entry.data["capability"] == "run.view"
    assert entry.data["channel"] == "websocket"


def test_an_unknown_run_is_refused(personas, transactional_db):
    connected, code, _ = connect_and_read("/ws/runs/999999/", personas["operator"])
    assert not connected and code == CLOSE_NOT_FOUND
    connected, code, _ = connect_and_read("/ws/workflows/999999/live/", personas["operator"])
    assert not connected and code == CLOSE_NOT_FOUND


def _full_stack(path: str, headers: list[tuple[bytes, bytes]]) -> tuple[bool, int | None, str]:
    from factory.asgi import application

    async def go():
        com = WebsocketCommunicator(application, path, headers=headers)
        connected, code = await com.connect(timeout=3)
        text = ""
        if connected:
            text = await receive(com, frames=1)
            await com.disconnect()
        return connected, code, text

    return run_async(go)


def test_a_foreign_origin_is_refused_even_with_a_valid_session(make_run, personas):
    run = make_run(8)
    client = Client()
    client.force_login(personas["operator"])
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    connected, _, _ = _full_stack(f"/ws/runs/{run.pk}/", [(b"origin", b"http://evil.example"), (b"cookie", cookie)])
    assert not connected
    # The same session from our own origin gets in (the session middleware finds the user).
    connected, _, text = _full_stack(f"/ws/runs/{run.pk}/", [(b"origin", b"http://testserver"), (b"cookie", cookie)])
    assert connected and f'id="run-{run.pk}-status"' in text
    # And without a session it is anonymous.
    connected, _, _ = _full_stack(f"/ws/runs/{run.pk}/", [(b"origin", b"http://testserver")])
    assert not connected


@pytest.mark.parametrize("who", ["operator", "business_owner", "validator", "designer"])
def test_every_role_gets_the_full_snapshot_on_connect(make_run, personas, who):
    run = make_run(40, run_now=True)
    connected, _, [html] = connect_and_read(f"/ws/runs/{run.pk}/", personas[who])
    assert connected
    assert f'id="run-{run.pk}-status"' in html and 'data-status="succeeded"' in html
    assert f'<progress id="run-{run.pk}-progress" max="1" value="1.000"' in html
    for node in NODES:
        assert f'id="live-{run.pk}-{node}-stats"' in html
        assert f'id="live-{run.pk}-{node}-mix"' in html
        assert f'id="node-{node}-stats"' in html
    assert f'id="live-{run.pk}-errors"' in html
    assert html.count('hx-swap-oob="true"') == 1 + 3 * len(NODES) + 1
    processed = re.search(rf'id="live-{run.pk}-ext-stats".*?class="live-in">(\d+)<', html, re.S)
    assert processed and processed.group(1) == "40"


def test_the_canvas_socket_shows_the_latest_run_badges_and_edge_counts(make_run, personas):
    first = make_run(16, run_now=True)
    second = make_run(24, run_now=True)
    connected, _, [html] = connect_and_read(f"/ws/workflows/{first.workflow_id}/live/", personas["business_owner"])
    assert connected
    assert f'id="cf-live-run" class="cf-live-run" hx-swap-oob="true" data-run="{second.pk}"' in html
    for node in NODES:
        assert f'id="cf-live-{node}"' in html
    ports = re.search(r'id="cf-live-edges".*?data-ports="([^"]*)"', html, re.S).group(1).replace("&quot;", '"')
    assert '"route": {"else": 12, "italian": 12}' in ports


def test_a_workflow_without_runs_says_so(workflow, personas):
    connected, _, [html] = connect_and_read(f"/ws/workflows/{workflow.pk}/live/", personas["operator"])
    assert connected and "No runs yet" in html and 'data-run=""' in html


def test_the_socket_is_read_only(make_run, personas):
    run = make_run(8)

    async def go():
        com = communicator(f"/ws/runs/{run.pk}/", personas["admin"])
        assert (await com.connect())[0]
        await receive(com)
        await com.send_to(text_data='{"cancel": true}')
        output = await com.receive_output(timeout=2)
        await com.wait()
        return output

    output = run_async(go)
    assert output == {"type": "websocket.close", "code": CLOSE_READ_ONLY}
    run.refresh_from_db()
    assert run.status == "queued"  # nothing changed


def test_a_node_id_that_is_not_html_safe_gets_an_encoded_id(personas, transactional_db, small_engine):
    from tests.builders import edge, node
    from tests.engine.helpers import drain, register_model, tickets
    from workflows.engine import launch

    register_model()
    graph = {"nodes": [node("src", "source.upload", fields=["text", "lang"]),
                       node("my step", "extract", patterns=["email"], entities=[]),
                       node("out", "sink.table")],
             "edges": [edge("src", "my step"), edge("my step", "out")]}
    workflow = make_workflow(personas["designer"], graph, name="Odd ids")
    assert workflow.latest.is_runnable, workflow.latest.problems
    run = launch.create_run(workflow, user=personas["operator"], items=tickets(8))
    drain()
    assert NodeStats.objects.get(run=run, node="my step").items_in == 8
    _, _, [html] = connect_and_read(f"/ws/runs/{run.pk}/", personas["operator"])
    assert f'id="live-{run.pk}-my_20_step-stats"' in html
    _, _, [html] = connect_and_read(f"/ws/workflows/{workflow.pk}/live/", personas["operator"])
    assert 'id="cf-live-my_20_step"' in html


def test_cards_show_label_mix_confidence_histogram_and_an_error_colour(make_run, personas):
    run = make_run(8)
    NodeStats.objects.filter(run=run, node="ext").update(
        items_in=100, errors=9, batches=3, ports={"out": 91, "error": 9},
        labels={"billing": 60, "technical": 30, "account": 10},
        confidence_hist={"9": 50, "8": 30, "5": 20}, latency_hist={"4": 90, "7": 10})
    _, _, [html] = connect_and_read(f"/ws/runs/{run.pk}/", personas["operator"])
    stats = re.search(rf'<dl id="live-{run.pk}-ext-stats" class="live-stats health-(\w+)"', html)
    assert stats and stats.group(1) == "errors"  # 9 % of items failed
    mix = html.split(f'id="live-{run.pk}-ext-mix"')[1].split("</div>\n</div>")[0]
    assert re.findall(r'class="live-label-name">(\w+)<', mix) == ["billing", "technical", "account"]
    assert '<rect width="60.0" height="1"/>' in mix  # SVG bars: the Content-Security-Policy refuses style attributes
    assert mix.count('width="0.8" height="') == 10 and 'width="0.8" height="100"' in mix  # deciles, tallest = 100 %
    assert "1.6 / 13 ms" in html  # p50 / p95 from the log buckets
    _, _, [canvas] = connect_and_read(f"/ws/workflows/{run.workflow_id}/live/", personas["operator"])
    assert 'id="cf-live-ext" class="cf-live health-errors"' in canvas and "9 err" in canvas


def test_a_socket_gets_its_pages_language(make_run, personas):
    """The fragments a socket receives are in the language its page was rendered in (cookie, then
    Accept-Language), for the snapshot and for every broadcast update."""
    from django.utils import translation

    from workflows.design.texts import status_label
    from workflows.live import snapshot

    run = make_run(8)

    def read(headers):
        async def go():
            com = communicator(f"/ws/runs/{run.pk}/", personas["operator"])
            com.scope["headers"] = headers
            connected, _ = await com.connect(timeout=3)
            assert connected
            text = await receive(com, 3, frames=1)
            await com.disconnect()
            return text

        return run_async(go)

    with translation.override("it"):
        italian = status_label(run.status)
    with translation.override("en"):
        english = status_label(run.status)
    assert italian != english, "the Italian catalogue must translate the run status"
    assert italian in read([(b"accept-language", b"it-IT,it;q=0.9,en;q=0.5")])
    assert english in read([(b"accept-language", b"en-GB,en;q=0.9")])
    event = snapshot.message(snapshot.load(run.pk))
    assert italian in "".join(event["translated"]["it"]["run"]) and english in "".join(event["html"]["run"])
