"""The webhook sink sends documents only where an administrator registered, as the residency policy
allows, redacted when the workflow requires it, never along a redirect, and says nothing about the
network when a delivery fails. Real HTTP servers on loopback receive (or do not receive) the POSTs."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.builders import edge, node
from tests.engine.helpers import drain, make_runnable_workflow
from workflows.engine import launch
from workflows.models import DeadLetter, Item, WebhookDestination, Workflow

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _personal_data_model(packaged_models):
    """Workflows require redaction by default, and names and addresses need the real personal-data
    model (registered before the tests' pattern-only workflows register their placeholder)."""


class Receiver:
    """A loopback HTTP server that records every request and answers with `status` (and `location`)."""

    def __init__(self, status: int = 200, location: str = ""):
        self.requests: list[dict] = []
        self.status, self.location = status, location
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(self.rfile.read(length) or b"{}")})
                self.send_response(receiver.status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    servers = []

    def make(**kwargs):
        servers.append(Receiver(**kwargs))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def webhook_graph(**config) -> dict:
    return {"nodes": [node("src", "source.upload", fields=["text"]), node("hook", "sink.webhook", retries=0, **config)],
            "edges": [edge("src", "hook")]}


def destination(name: str, url: str, location: str = WebhookDestination.ON_PREMISE) -> WebhookDestination:
    return WebhookDestination.objects.create(name=name, url=url, location=location, region="local")


def test_a_url_typed_on_the_canvas_reaches_nothing(personas, receiver):
    """The exploit: a designer typed a loopback URL, and every document was POSTed there."""
    inside = receiver()
    workflow = Workflow.objects.create(name="Exfiltrate", created_by=personas["designer"])
    from workflows.design.versions import save_version
    from workflows.graph import parse_graph

    version = save_version(workflow, parse_graph(webhook_graph(url=inside.url + "/steal")), user=personas["designer"],
                           parent=0)
    assert not version.is_runnable
    assert {p["code"] for p in version.problems} >= {"missing_config", "unknown_config"}
    with pytest.raises(launch.StartError):
        launch.create_run(workflow, user=personas["operator"], items=[{"text": "IBAN IT60X0542811101000000123456"}])
    drain()
    assert inside.requests == []


def test_a_registered_destination_receives_each_result_redacted_with_its_key(personas, receiver):
    inside = receiver()
    destination("crm", inside.url + "/hook?source=factory")
    workflow = make_runnable_workflow(personas["designer"], webhook_graph(destination="crm"))
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": "Write to mario.rossi@example.it"}])
    drain()
    (request,) = inside.requests
    assert request["path"] == "/hook?source=factory"
    assert request["headers"]["Idempotency-Key"] == f"{run.pk}:hook:{Item.objects.get(run=run).pk}"
    assert request["body"]["data"]["text"] == "Write to [EMAIL]"  # the workflow requires redaction by default
    assert Item.objects.get(run=run).status == Item.DONE


def test_names_and_addresses_are_redacted_though_the_graph_has_no_extract_step(personas, receiver):
    """Redaction must not depend on what else the graph uses: a line of a source and a webhook sink
    pins no personal-data model, and names went out in clear (patterns alone never find a name)."""
    inside = receiver()
    destination("crm", inside.url + "/hook")
    workflow = make_runnable_workflow(personas["designer"], webhook_graph(destination="crm"))
    text = "Il signor Mario Rossi abita in Via Roma 12, Milano. Scrivere a m.rossi@example.it"
    launch.create_run(workflow, user=personas["operator"], items=[{"text": text}])
    drain()
    (request,) = inside.requests
    text = request["body"]["data"]["text"]
    assert "Mario Rossi" not in text and "Via Roma 12" not in text and "m.rossi@example.it" not in text, text


def test_a_redirect_is_not_followed(personas, receiver):
    metadata = receiver()
    inside = receiver(status=302, location=metadata.url + "/latest/meta-data/")
    destination("crm", inside.url + "/hook")
    workflow = make_runnable_workflow(personas["designer"], webhook_graph(destination="crm"))
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": "hello"}])
    drain()
    assert len(inside.requests) == 1 and metadata.requests == []
    assert "redirect" in DeadLetter.objects.get(run=run).reason


def test_an_external_destination_must_resolve_to_a_public_address(personas, receiver):
    inside = receiver()
    destination("partner", inside.url + "/hook", location=WebhookDestination.EXTERNAL)
    workflow = make_runnable_workflow(personas["designer"], webhook_graph(destination="partner"))
    Workflow.objects.filter(pk=workflow.pk).update(allow_external_endpoints=True)
    workflow.refresh_from_db()
    from workflows.design.publishing import publish

    publish(workflow, workflow.latest, user=personas["designer"])  # the policy kept it unpublished until now
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": "hello"}])
    drain()
    assert inside.requests == []
    reason = DeadLetter.objects.get(run=run).reason
    assert "address its registration does not allow" in reason and "127.0.0.1" not in reason


def test_the_residency_policy_covers_external_destinations(personas, receiver):
    outside = receiver()
    destination("partner", outside.url, location=WebhookDestination.EXTERNAL)
    workflow = make_runnable_workflow(personas["designer"], webhook_graph(destination="partner"))
    with pytest.raises(launch.StartError, match="data-residency policy"):
        launch.create_run(workflow, user=personas["designer"], items=[{"text": "hello"}], version=workflow.latest)
    assert workflow.live is None and outside.requests == []


def test_a_failed_delivery_says_nothing_about_the_network(personas):
    destination("crm", "http://127.0.0.1:9/hook")  # the discard port: nothing listens there
    workflow = make_runnable_workflow(personas["designer"], webhook_graph(destination="crm"))
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": "hello"}])
    drain()
    reason = DeadLetter.objects.get(run=run).reason
    assert "did not take the delivery" in reason
    assert not any(word in reason for word in ("refused", "Errno", "127.0.0.1", ":9", "timed out"))
