"""A workflow that requires redaction sends no name and no address to a large model, even when its
line has no extract node: the personal-data model is loaded for the large-model node itself.

The endpoint is a stand-in provider on loopback that records what it receives (what an external
service would see); the personal-data model is the real packaged one."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.builders import edge, make_workflow, node
from tests.engine.helpers import drain
from workflows.models import Decision, LLMEndpoint, Run

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

TICKET = ("Please call Mario Rossi back about the invoice: he lives at Via Giuseppe Garibaldi 8, 24122 Bergamo "
          "and his email is mario.rossi@example.it.")


class Recorder(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Recorder.seen.append(body["messages"][-1]["content"])
        reply = {"choices": [{"message": {"content": "We will call the customer back."}}],
                 "usage": {"prompt_tokens": 30, "completion_tokens": 7}}
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(reply).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def recorder():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def run_llm_line(user, base_url: str, *, require_redaction: bool, redact: bool = True) -> Run:
    from workflows.engine.launch import create_run

    LLMEndpoint.objects.create(name="recorder", base_url=base_url, model_name="m", location=LLMEndpoint.ON_PREMISE,
                               region="local")
    graph = {"nodes": [node("src", "source.upload", fields=["text"]),
                       node("llm", "llm", endpoint="recorder", prompt="Draft a reply to: {text}", redact=redact),
                       node("out", "sink.table")],
             "edges": [edge("src", "llm"), edge("llm", "out")]}
    workflow = make_workflow(user, graph, name="Call-backs")
    workflow.require_redaction = require_redaction
    workflow.save(update_fields=["require_redaction"])
    run = create_run(workflow, user=user, items=[{"text": TICKET}])
    drain()
    run.refresh_from_db()
    return run


def test_names_and_addresses_are_redacted_without_an_extract_node(packaged_models, personas, recorder):
    run = run_llm_line(personas["designer"], recorder, require_redaction=True)
    assert run.items_done == 1, list(run.dead_letters.values_list("reason", flat=True))
    (sent,) = Recorder.seen
    assert "Mario Rossi" not in sent and "Rossi" not in sent
    assert "Garibaldi" not in sent and "Bergamo" not in sent
    assert "mario.rossi@example.it" not in sent
    assert "[PERSON]" in sent and "[ADDRESS]" in sent and "[EMAIL]" in sent
    redacted = Decision.objects.get(run=run, node="llm").output["llm"]["redacted"]
    assert {"person", "address", "email"} <= set(redacted)


def test_a_required_redaction_overrides_the_nodes_own_setting(packaged_models, personas, recorder):
    run_llm_line(personas["designer"], recorder, require_redaction=True, redact=False)
    (sent,) = Recorder.seen
    assert "Mario Rossi" not in sent and "[PERSON]" in sent


def test_without_the_personal_data_model_a_required_redaction_sends_nothing(db, personas, recorder):
    # No packaged models registered: names cannot be found, so the item must not leave at all.
    run = run_llm_line(personas["designer"], recorder, require_redaction=True)
    assert Recorder.seen == []
    assert run.items_done == 0
    decision = Decision.objects.get(run=run, node="llm")
    assert "personal-data model" in decision.error
