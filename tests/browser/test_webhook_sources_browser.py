"""A designer sets up an inbound webhook in the browser: the secret on one page only, a sample payload
tried in place (htmx, no reload), and the curl example to copy; no CSP violation on the way."""

from __future__ import annotations

import json

import pytest

from tests.browser.conftest import accept_dialog, shot
from workflows.inbound import secrets
from workflows.models import Item, WebhookSource

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_designer_creates_a_webhook_sees_the_secret_once_and_tries_a_sample(page, login, personas):
    from tests.inbound.webhook_helpers import make_webhook_workflow

    workflow = make_webhook_workflow(personas["designer"])
    login(personas["designer"])
    page.goto(f"/workflows/{workflow.pk}/webhooks/")
    page.fill("input[name=name]", "CRM")
    page.fill("textarea[name=mapping]", "text = /ticket/body\nlang = /ticket/lang")
    page.click("#webhook-source-create button[type=submit]")
    secret = page.input_value("#webhook-secret-value")
    source = WebhookSource.objects.get()
    assert secret == secrets.decrypt(source.secret_encrypted)
    assert secret in page.input_value("#webhook-curl") and "openssl dgst" in page.input_value("#webhook-curl")
    shot(page, "webhook-secret")

    page.click("text=I have copied it: continue")
    assert secret not in page.content() and secret[-4:] in page.content()
    sample = {"ticket": {"body": "Doppio addebito fattura 118", "lang": "it"}}
    page.fill("textarea[name=sample]", json.dumps(sample))
    url = page.url
    page.click("text=Test with this sample")
    page.wait_for_selector("#webhook-preview >> text=It makes 1 item")
    assert page.url == url and "Doppio addebito fattura 118" in page.inner_text("#webhook-preview")
    shot(page, "webhook-detail")
    assert Item.objects.count() == 0

    # Rotating ends the old secret at once: the page asks first, and a dismissed question rotates nothing.
    asked: list[str] = []

    def answer(dialog, accept: bool) -> None:
        asked.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    page.remove_listener("dialog", accept_dialog)
    page.once("dialog", lambda dialog: answer(dialog, False))
    page.click("text=Rotate the secret")
    page.wait_for_timeout(300)
    assert asked and "old one stops working" in asked[0]
    assert secrets.decrypt(WebhookSource.objects.get().secret_encrypted) == secret
    page.once("dialog", lambda dialog: answer(dialog, True))
    page.click("text=Rotate the secret")
    page.wait_for_selector("#webhook-secret-value")
    assert secrets.decrypt(WebhookSource.objects.get().secret_encrypted) != secret
