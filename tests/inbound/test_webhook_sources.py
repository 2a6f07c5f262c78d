"""Setting up inbound webhooks from the pages and the API: the secret shown once (at creation and
rotation) and stored only encrypted, settings checked with a message per setting, a sample payload
tried without storing anything, audit entries, and the curl example run for real with openssl."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from django.db import connection
from django.test import Client

from tests.inbound.webhook_helpers import deliver, make_source, make_webhook_workflow
from workflows.inbound import secrets
from workflows.models import AuditEntry, Item, Run, WebhookDelivery, WebhookSource

pytestmark = pytest.mark.django_db

SETTINGS = {"name": "CRM", "mapping": {"text": "/ticket/body", "lang": "/ticket/lang"}}


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def raw_row(source_id: int) -> str:
    """Every column of the source's row as the database holds it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM workflows_webhooksource WHERE id = %s", [source_id])
        return " ".join(str(value) for value in cursor.fetchone())


def test_the_api_answers_the_secret_once_and_stores_it_only_encrypted(personas, api):
    workflow = make_webhook_workflow(personas["designer"])
    client = api(personas["designer"])
    created = client.post(f"/api/workflows/{workflow.pk}/webhook-sources/", SETTINGS, format="json")
    assert created.status_code == 201, created.content
    secret = created.data["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40 and created["Cache-Control"] == "no-store"
    slug = WebhookSource.objects.get().slug
    assert created.data["secret_last4"] == secret[-4:] and created.data["url"].endswith(f"/hooks/{slug}/")
    assert secret in created.data["curl"]
    source = WebhookSource.objects.get()
    assert secret not in raw_row(source.pk) and secrets.decrypt(source.secret_encrypted) == secret
    for answer in (client.get(f"/api/workflows/{workflow.pk}/webhook-sources/"),
                   client.get(f"/api/workflows/{workflow.pk}/webhook-sources/{source.pk}/")):
        assert answer.status_code == 200 and secret not in answer.content.decode()
    assert not AuditEntry.objects.filter(data__icontains=secret[6:]).exists()
    assert deliver(Client(), source, {"ticket": {"body": "ciao", "lang": "it"}}, secret).status_code == 202


def test_the_api_rotates_and_the_old_secret_stops_working(personas, api):
    workflow = make_webhook_workflow(personas["designer"])
    source, old = make_source(workflow, personas["designer"])
    rotated = api(personas["admin"]).post(f"/api/workflows/{workflow.pk}/webhook-sources/{source.pk}/rotate/")
    assert rotated.status_code == 200 and rotated["Cache-Control"] == "no-store"
    new = rotated.data["secret"]
    assert new != old and secrets.decrypt(WebhookSource.objects.get().secret_encrypted) == new
    assert new not in raw_row(source.pk)
    payload = {"ticket": {"body": "ciao", "lang": "it"}}
    assert deliver(Client(), source, payload, old, key="a").status_code == 401
    assert deliver(Client(), source, payload, new, key="b").status_code == 202
    entry = AuditEntry.objects.get(action="webhook_source.rotate")
    assert entry.actor == personas["admin"] and entry.data["new_last4"] == new[-4:]
    assert new not in json.dumps(entry.data) and old not in json.dumps(entry.data)


def test_the_api_refuses_bad_settings_naming_each_setting(personas, api):
    workflow = make_webhook_workflow(personas["designer"])
    client = api(personas["designer"])
    url = f"/api/workflows/{workflow.pk}/webhook-sources/"
    bad = client.post(url, {"name": "CRM", "mapping": {"text": "ticket/body"}, "items_pointer": "/a~2",
                            "replay_window": 5}, format="json")
    assert bad.status_code == 400
    assert "'text': 'ticket/body' is not a JSON pointer" in " ".join(bad.data["mapping"])
    assert "Map 'lang'" in " ".join(bad.data["mapping"])
    assert "'~' must be followed by 0" in bad.data["items_pointer"][0]
    assert "from 30 to 3600" in bad.data["replay_window"][0]
    assert WebhookSource.objects.count() == 0 and not AuditEntry.objects.filter(action__startswith="webhook").exists()
    client.post(url, SETTINGS, format="json")
    twice = client.post(url, SETTINGS, format="json")
    assert twice.status_code == 400 and "already has an inbound webhook with this name" in twice.data["name"][0]


def test_the_api_patches_the_mapping_and_disables_with_audit_entries(personas, api):
    workflow = make_webhook_workflow(personas["designer"])
    source, secret = make_source(workflow, personas["designer"])
    url = f"/api/workflows/{workflow.pk}/webhook-sources/{source.pk}/"
    client = api(personas["designer"])
    changed = client.patch(url, {"mapping": {"text": "/body", "lang": "/lang"}}, format="json")
    assert changed.status_code == 200 and changed.data["mapping"] == {"text": "/body", "lang": "/lang"}
    assert deliver(Client(), source, {"body": "ciao", "lang": "it"}, secret).status_code == 202
    disabled = client.patch(url, {"enabled": False}, format="json")
    assert disabled.status_code == 200 and disabled.data["enabled"] is False
    assert disabled.data["deliveries"][0]["status"] == "accepted"
    assert deliver(Client(), source, {"body": "x", "lang": "it"}, secret, key="k2").status_code == 403
    actions = list(AuditEntry.objects.filter(action__startswith="webhook_source").values_list("action", flat=True))
    assert actions == ["webhook_source.create", "webhook_source.update", "webhook_source.disable"]


def test_testing_a_sample_shows_the_items_and_stores_nothing(personas, api):
    workflow = make_webhook_workflow(personas["designer"])
    source, _ = make_source(workflow, personas["designer"])
    url = f"/api/workflows/{workflow.pk}/webhook-sources/{source.pk}/test/"
    client = api(personas["designer"])
    ok = client.post(url, {"payload": {"ticket": {"body": "ciao", "lang": "it"}}}, format="json")
    assert ok.status_code == 200 and ok.data["items"] == [{"text": "ciao", "lang": "it"}]
    # Unsaved settings are tried as they are, and every problem comes back.
    unsaved = client.post(url, {"payload": {"rows": [{"b": "x"}, {"l": "en"}]}, "items_pointer": "/rows",
                                "mapping": {"text": "/b", "lang": "/l"}}, format="json")
    assert unsaved.status_code == 400 and unsaved.data["problems"] == [
        "'/rows/0/l' (for 'lang') found nothing: '/rows/0' has no member 'l'.",
        "'/rows/1/b' (for 'text') found nothing: '/rows/1' has no member 'b'."]
    assert WebhookSource.objects.get().mapping == {"text": "/ticket/body", "lang": "/ticket/lang"}
    assert Run.objects.count() == 0 and Item.objects.count() == 0 and WebhookDelivery.objects.count() == 0


def test_the_page_shows_the_secret_once_and_then_only_its_last_four(personas):
    workflow = make_webhook_workflow(personas["designer"])
    client = signed_in(personas["designer"])
    page = client.get(f"/workflows/{workflow.pk}/webhooks/")
    assert page.status_code == 200 and "text = /text" in page.content.decode()  # the default mapping
    created = client.post(f"/workflows/{workflow.pk}/webhooks/", {
        "name": "Ticketing", "mapping": "text = /ticket/body\nlang = /ticket/lang", "items_pointer": "",
        "idempotency_pointer": "", "replay_window": "300"})
    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    source = WebhookSource.objects.get()
    secret = secrets.decrypt(source.secret_encrypted)
    html = created.content.decode()
    assert secret in html and "shown only this once" in html and "openssl dgst -sha256 -hmac" in html
    for path in (f"/workflows/{workflow.pk}/webhooks/", f"/workflows/{workflow.pk}/webhooks/{source.pk}/"):
        again = client.get(path).content.decode()
        assert secret not in again and secret[-4:] in again
    rotated = client.post(f"/workflows/{workflow.pk}/webhooks/{source.pk}/rotate/")
    new = secrets.decrypt(WebhookSource.objects.get().secret_encrypted)
    assert new != secret and new in rotated.content.decode() and secret not in rotated.content.decode()


def test_the_page_names_each_bad_line_and_setting(personas):
    workflow = make_webhook_workflow(personas["designer"])
    client = signed_in(personas["designer"])
    response = client.post(f"/workflows/{workflow.pk}/webhooks/", {
        "name": "CRM", "mapping": "text /ticket/body\nlang = lang", "replay_window": "300"})
    assert response.status_code == 400
    assert "Line 1: write &#x27;field = /pointer&#x27;" in response.content.decode()
    response = client.post(f"/workflows/{workflow.pk}/webhooks/", {
        "name": "CRM", "mapping": "text = /body\nlang = lang", "replay_window": "300"})
    assert "&#x27;lang&#x27;: &#x27;lang&#x27; is not a JSON pointer" in response.content.decode()
    assert WebhookSource.objects.count() == 0


def test_the_page_tests_a_sample_with_htmx_and_without(personas):
    workflow = make_webhook_workflow(personas["designer"])
    source, _ = make_source(workflow, personas["designer"])
    client = signed_in(personas["designer"])
    form = {"name": "CRM", "mapping": "text = /t\nlang = /l", "items_pointer": "/docs", "idempotency_pointer": "",
            "replay_window": "300", "sample": json.dumps({"docs": [{"t": "uno", "l": "it"}, {"t": "due", "l": "it"}]})}
    url = f"/workflows/{workflow.pk}/webhooks/{source.pk}/test/"
    partial = client.post(url, form, headers={"HX-Request": "true"})
    html = partial.content.decode()
    assert partial.status_code == 200 and "<html" not in html
    assert "It makes 2 items" in html and "&quot;due&quot;" in html
    full = client.post(url, {**form, "sample": "{}"})
    assert full.status_code == 200 and "<html" in full.content.decode()
    assert "found nothing: &#x27;/&#x27; has no member &#x27;docs&#x27;" in full.content.decode()
    assert WebhookSource.objects.get().items_pointer == "" and Item.objects.count() == 0


def test_the_page_disables_and_enables(personas):
    workflow = make_webhook_workflow(personas["designer"])
    source, _ = make_source(workflow, personas["designer"])
    client = signed_in(personas["admin"])
    url = f"/workflows/{workflow.pk}/webhooks/{source.pk}/enabled/"
    assert client.post(url, {}).status_code == 302 and not WebhookSource.objects.get().enabled
    assert client.post(url, {"enabled": "on"}).status_code == 302 and WebhookSource.objects.get().enabled
    assert list(AuditEntry.objects.filter(action__in=["webhook_source.disable", "webhook_source.enable"])
                .values_list("action", flat=True)) == ["webhook_source.disable", "webhook_source.enable"]


def test_a_source_of_another_workflow_is_not_found(personas):
    one = make_webhook_workflow(personas["designer"], name="One")
    two = make_webhook_workflow(personas["designer"], name="Two")
    source, _ = make_source(one, personas["designer"])
    client = signed_in(personas["designer"])
    assert client.get(f"/workflows/{two.pk}/webhooks/{source.pk}/").status_code == 404
    assert client.post(f"/workflows/{two.pk}/webhooks/{source.pk}/rotate/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_curl_example_signs_with_openssl_and_is_accepted(personas, live_server):
    """The example the page shows, run as a sender would run it: bash, openssl and curl."""
    from workflows.inbound import webhook_sources

    workflow = make_webhook_workflow(personas["designer"])
    source, secret = make_source(workflow, personas["designer"])
    script = webhook_sources.curl_example(source, f"{live_server.url}/hooks/{source.slug}/", secret)
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LC_ALL": "C"})
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["item_ids"], answer
    assert Item.objects.get(pk=answer["item_ids"][0]).payload == {"text": "A sample text", "lang": "A sample lang"}


def test_the_canvas_panel_of_a_webhook_source_links_its_setup_for_editors_only(personas):
    workflow = make_webhook_workflow(personas["designer"])
    path = f"/workflows/{workflow.pk}/panel/?node=src&type=source.webhook&config=%7B%7D"
    assert f"/workflows/{workflow.pk}/webhooks/" in signed_in(personas["designer"]).get(path).content.decode()
    assert "webhook-sources-link" not in signed_in(personas["operator"]).get(path).content.decode()
