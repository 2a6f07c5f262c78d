"""POST /hooks/<slug>/: signature, replay window, idempotency, caps and the mapping, through Django's
test client against the real database. Each refusal names what to fix; a refused delivery creates
nothing."""

from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from tests.inbound.webhook_helpers import deliver, make_source, make_webhook_workflow, signed
from workflows.inbound import webhook_sources
from workflows.models import AuditEntry, Item, Run, WebhookDelivery

pytestmark = pytest.mark.django_db

TICKET = {"ticket": {"body": "Rimborso di EUR 12,50 a mario.rossi@example.it", "lang": "it"}}


@pytest.fixture
def hook(personas):
    workflow = make_webhook_workflow(personas["designer"])
    source, secret = make_source(workflow, personas["designer"])
    return source, secret


def numbered(n: int) -> dict:
    return {"ticket": {**TICKET["ticket"], "body": f"{TICKET['ticket']['body']} (n. {n})"}}


def nothing_made():
    return Item.objects.count() == 0 and not WebhookDelivery.objects.filter(status="accepted").exists()


def test_a_signed_delivery_is_taken_into_the_live_run_by_the_webhook_source(hook):
    source, secret = hook
    response = deliver(Client(), source, TICKET, secret)
    assert response.status_code == 202, response.content
    body = response.json()
    run = Run.objects.get(pk=body["run"])
    assert (run.origin, run.source_node, run.is_live) == ("webhook", "src", True)
    item = Item.objects.get(pk=body["item_ids"][0])
    assert item.run_id == run.pk and item.payload == {"text": TICKET["ticket"]["body"], "lang": "it"}
    delivery = WebhookDelivery.objects.get(pk=body["delivery"])
    assert (delivery.status, delivery.idempotency_key, delivery.item_ids) == ("accepted", "delivery-1", [item.pk])


def test_the_same_key_again_gets_the_same_answer_and_creates_nothing(hook):
    source, secret = hook
    client = Client()
    first = deliver(client, source, TICKET, secret, key="evt-7")
    # A retry re-signs (new timestamp) and may serialise the same JSON differently.
    again = client.post(f"/hooks/{source.slug}/", data=json.dumps(TICKET, indent=2).encode(),
                        content_type="application/json",
                        headers=signed(json.dumps(TICKET, indent=2).encode(), secret, key="evt-7",
                                       timestamp=int(time.time()) + 1))
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    assert Item.objects.count() == 1 and WebhookDelivery.objects.count() == 1


def test_a_key_reused_for_another_payload_is_refused_and_creates_nothing(hook):
    source, secret = hook
    deliver(Client(), source, TICKET, secret, key="evt-7")
    other = {"ticket": {"body": "Another document", "lang": "en"}}
    response = deliver(Client(), source, other, secret, key="evt-7")
    assert response.status_code == 409
    assert "'evt-7' was used for a different payload" in response.json()["detail"]
    assert Item.objects.count() == 1


def test_the_idempotency_key_may_come_from_the_payload(personas):
    workflow = make_webhook_workflow(personas["designer"])
    source, secret = make_source(workflow, personas["designer"], idempotency_pointer="/event/id")
    payload = {**TICKET, "event": {"id": 4471}}
    first = deliver(Client(), source, payload, secret, key=None)
    again = deliver(Client(), source, payload, secret, key=None)
    assert first.status_code == again.status_code == 202 and first.json() == again.json()
    assert WebhookDelivery.objects.get().idempotency_key == "4471"
    missing = deliver(Client(), source, TICKET, secret, key=None)
    assert missing.status_code == 400
    assert "'/event/id' found nothing: '/' has no member 'event'" in missing.json()["detail"]


def test_a_delivery_without_an_idempotency_key_is_refused_naming_the_header(hook):
    source, secret = hook
    response = deliver(Client(), source, TICKET, secret, key=None)
    assert response.status_code == 400 and response.json()["code"] == "missing_idempotency_key"
    assert "Idempotency-Key" in response.json()["detail"]
    assert nothing_made()


def test_a_bad_signature_is_refused_and_creates_nothing(hook, personas):
    source, secret = hook
    body = json.dumps(TICKET).encode()
    headers = signed(body, secret)
    tampered = client_post(source.slug, body.replace(b"12,50", b"99,99"), headers)
    assert tampered.status_code == 401 and tampered.json()["code"] == "bad_signature"
    assert "HMAC-SHA256" in tampered.json()["detail"]
    # Another source's secret does not open this one, and the answer says nothing of the other.
    _, other_secret = make_source(source.workflow, personas["designer"], name="Ticketing")
    wrong = deliver(Client(), source, TICKET, other_secret)
    assert wrong.status_code == 401 and wrong.json() == tampered.json()
    assert other_secret not in wrong.content.decode() and secret not in wrong.content.decode()
    malformed = client_post(source.slug, body, {**headers, "X-Factory-Signature": "md5=abc"})
    assert malformed.status_code == 401 and "'sha256='" in malformed.json()["detail"]
    assert nothing_made()


def client_post(slug, body, headers):
    return Client().post(f"/hooks/{slug}/", data=body, content_type="application/json", headers=headers)


@pytest.mark.parametrize("missing", [["X-Factory-Timestamp"], ["X-Factory-Signature"],
                                     ["X-Factory-Timestamp", "X-Factory-Signature"]])
def test_missing_signature_headers_are_named(hook, missing):
    source, secret = hook
    body = json.dumps(TICKET).encode()
    headers = {k: v for k, v in signed(body, secret).items() if k not in missing}
    response = client_post(source.slug, body, headers)
    assert response.status_code == 401 and response.json()["code"] == "missing_headers"
    assert all(name in response.json()["detail"] for name in missing)
    assert nothing_made()


@pytest.mark.parametrize("offset, said", [(-301, "301 s old"), (+400, "400 s in the future")])
def test_a_timestamp_outside_the_window_either_way_is_refused(hook, offset, said):
    source, secret = hook
    response = deliver(Client(), source, TICKET, secret, timestamp=int(time.time()) + offset)
    assert response.status_code == 401 and response.json()["code"] == "stale_timestamp"
    assert said in response.json()["detail"] and "within 300 s" in response.json()["detail"]
    assert nothing_made()
    assert deliver(Client(), source, TICKET, secret, timestamp=int(time.time()) - 250).status_code == 202


def test_a_timestamp_that_is_not_unix_seconds_is_refused(hook):
    source, secret = hook
    body = json.dumps(TICKET).encode()
    headers = {**signed(body, secret), "X-Factory-Timestamp": "2026-12-05T10:00:00Z"}
    response = client_post(source.slug, body, headers)
    assert response.status_code == 401 and "Unix time in seconds" in response.json()["detail"]


def test_an_unknown_address_is_a_404_that_names_nothing(hook):
    source, secret = hook
    response = deliver(Client(), "no-such-slug", TICKET, secret)
    assert response.status_code == 404 and response.json() == {"detail": "No inbound webhook at this address.",
                                                               "code": "not_found"}
    assert Client().get(f"/hooks/{source.slug}/").status_code == 405


def test_a_disabled_source_refuses_signed_deliveries_with_403(hook, personas):
    source, secret = hook
    webhook_sources.set_enabled(source, False, user=personas["designer"])
    assert deliver(Client(), source, TICKET, secret).status_code == 403
    assert deliver(Client(), source, TICKET, "whsec_wrong").status_code == 401  # no word on status without the secret
    assert nothing_made()
    webhook_sources.set_enabled(source, True, user=personas["designer"])
    assert deliver(Client(), source, TICKET, secret).status_code == 202


def test_rotation_invalidates_the_old_secret_at_once(hook, personas):
    source, secret = hook
    new = webhook_sources.rotate_secret(source, user=personas["designer"])
    assert new != secret
    assert deliver(Client(), source, TICKET, secret, key="a").status_code == 401
    assert deliver(Client(), source, TICKET, new, key="b").status_code == 202


def test_mapping_problems_name_the_pointer_and_the_field_and_are_kept_for_the_page(hook):
    source, secret = hook
    response = deliver(Client(), source, {"ticket": {"lang": "it"}}, secret)
    assert response.status_code == 400 and response.json()["code"] == "mapping"
    assert response.json()["problems"] == [
        "'/ticket/body' (for 'text') found nothing: '/ticket' has no member 'body'."]
    empty = deliver(Client(), source, {"ticket": {"body": " ", "lang": "it"}}, secret, key="k2")
    assert empty.json()["problems"] == ["'/ticket/body' (for 'text') is empty; 'text' needs text."]
    refused = WebhookDelivery.objects.filter(status="refused").order_by("id")
    assert [d.reason for d in refused] == [response.json()["detail"], empty.json()["detail"]]
    assert nothing_made()


def test_one_delivery_with_an_items_array_and_escaped_pointers_makes_many_items(personas):
    workflow = make_webhook_workflow(personas["designer"])
    source, secret = make_source(workflow, personas["designer"], items_pointer="/data/tickets~1open",
                                 mapping={"text": "/m~0body", "lang": "/meta/lang"})
    payload = {"data": {"tickets/open": [{"m~body": f"Documento {i}", "meta": {"lang": "it"}} for i in range(3)]}}
    response = deliver(Client(), source, payload, secret)
    assert response.status_code == 202, response.content
    items = Item.objects.filter(pk__in=response.json()["item_ids"]).order_by("seq")
    assert [i.payload for i in items] == [{"text": f"Documento {i}", "lang": "it"} for i in range(3)]
    bad = deliver(Client(), source, {"data": {"tickets/open": [{"meta": {"lang": "it"}}]}}, secret, key="k2")
    assert "'/data/tickets~1open/0/m~0body' (for 'text') found nothing" in bad.json()["detail"]


@pytest.mark.parametrize("body, code, said", [
    (b"", "empty_body", "The body is empty"),
    (b"{not json", "not_json", "The body is not usable JSON"),
    (b"[" * 100 + b"]" * 100, "not_json", "nested deeper than 64 levels"),
    (b'{"ticket": {"body": "a\\u0000b", "lang": "it"}}', "not_json", "NUL"),
    (b"\xff\xfe{}", "not_json", "not UTF-8"),
])
def test_a_body_that_is_not_usable_json_says_why(hook, body, code, said):
    source, secret = hook
    response = deliver(Client(), source, body, secret)
    assert response.status_code == 400 and response.json()["code"] == code
    assert said in response.json()["detail"]
    assert nothing_made()


def test_bodies_over_the_cap_are_refused_with_413(hook, settings):
    source, secret = hook
    settings.WEBHOOK_MAX_BYTES = 200
    big = {"ticket": {"body": "x" * 300, "lang": "it"}}
    response = deliver(Client(), source, big, secret)
    assert response.status_code == 413 and "at most 200" in response.json()["detail"]
    assert nothing_made()


def test_too_many_documents_or_too_long_a_text_is_refused(personas, settings):
    settings.ENGINE_INTAKE_MAX_ITEMS = 2
    workflow = make_webhook_workflow(personas["designer"])
    source, secret = make_source(workflow, personas["designer"], items_pointer="/t",
                                 mapping={"text": "/b", "lang": "/l"})
    response = deliver(Client(), source, {"t": [{"b": "x", "l": "it"}] * 3}, secret)
    assert response.status_code == 400 and "holds 3 documents; send at most 2" in response.json()["detail"]
    settings.ENGINE_INTAKE_MAX_ITEMS = 1000
    long = deliver(Client(), source, {"t": [{"b": "x" * 1_000_001, "l": "it"}]}, secret, key="k2")
    assert long.status_code == 400 and "item 0: 'text'" in long.json()["detail"]
    assert nothing_made()


def test_a_workflow_without_a_webhook_source_node_answers_409_with_the_reason(personas):
    from tests.engine.helpers import make_runnable_workflow, pattern_graph

    workflow = make_runnable_workflow(personas["designer"], pattern_graph())  # an upload source only
    source, secret = make_source(workflow, personas["designer"])
    response = deliver(Client(), source, TICKET, secret)
    assert response.status_code == 409 and "'source.webhook'" in response.json()["detail"]
    assert WebhookDelivery.objects.get().status == "refused" and nothing_made()


def test_failed_authentications_from_one_address_are_throttled(hook, settings):
    source, secret = hook
    settings.WEBHOOK_FAILURE_LIMIT = 3
    for _ in range(3):
        assert deliver(Client(), source, TICKET, "whsec_guess").status_code == 401
    refused = deliver(Client(), source, TICKET, secret)  # even the right secret, until the window ends
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert nothing_made()


def test_requests_over_the_rate_are_throttled(hook, settings):
    source, secret = hook
    settings.WEBHOOK_RATE_LIMIT = 2
    # Three deliveries of their own (one signed message is taken under one key only: see the replay test in
    # tests/security/test_channels_review.py).
    answers = [deliver(Client(), source, numbered(i), secret, key=f"k{i}").status_code for i in range(3)]
    assert answers[:2] == [202, 202] and answers[2] == 429


def test_deliveries_write_no_audit_entries_but_setting_up_does(hook, personas):
    source, secret = hook
    before = AuditEntry.objects.count()
    for i in range(3):
        assert deliver(Client(), source, numbered(i), secret, key=f"k{i}").status_code == 202
    # The live run's start is audited once (as every run start is); the deliveries themselves are not.
    assert AuditEntry.objects.count() - before == 1
    assert AuditEntry.objects.filter(action="webhook_source.create", object_id=str(source.pk)).exists()


@pytest.mark.parametrize("slug", ["a%00b", "%C3%A8", "x" * 41])
def test_an_address_that_could_not_be_a_source_is_a_404_too(hook, slug):
    _, secret = hook
    response = deliver(Client(), slug, TICKET, secret)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
