"""A validator's bell: it rises on its own poll when a promotion starts waiting for them, opens the
inbox, and a click on the notification goes to the request and marks it read."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.builders import make_user, register_model

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_validators_bell_count_rises_when_a_promotion_waits_for_them(page, login, transactional_db):
    from workflows.governance import promotion
    from workflows.governance.labelsets import create_labelled_set
    from workflows.models.registry import register_version

    trainer = make_user("tina", "trainer")
    validator = make_user("vera", "validator")
    make_user("otto", "operator")
    v1 = register_model("tickets", "classifier")
    v2, _ = register_version(model_name="tickets", kind="classifier", meta={"sha256": "b" * 64, "size": 2},
                             source="trained", runtime="head", parent=v1, author=trainer, trained_by=trainer)
    create_labelled_set(name="tickets-eval", items=[{"text": "invoice", "label": "billing"},
                                                    {"text": "crash", "label": "technical"}], user=None,
                        model=v1.model)

    page.clock.install()  # the bell polls every 45 s: the test moves the page's clock instead of waiting
    login(validator)
    page.goto("/")
    bell = page.locator("#notification-bell")
    expect(bell).to_have_attribute("data-count", "0")
    expect(page.locator(".bell-count")).to_have_count(0)

    request = promotion.request_promotion(v2, "production", user=trainer, reason="Better on Italian tickets")
    page.clock.run_for(46_000)
    expect(bell).to_have_attribute("data-count", "1")
    expect(page.locator("#notification-bell .bell-count")).to_have_text("1")

    bell.click()
    page.wait_for_url("**/notifications/")
    row = page.locator("#notifications tr.unread")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(f"tina asks to make tickets:v2 tickets@production (request #{request.pk})")
    shot(page, "notifications-inbox")
    row.locator("button.notification-open").click()
    page.wait_for_url(re.compile(rf"/promotions/{request.pk}/$"))
    expect(page.locator("#notification-bell")).to_have_attribute("data-count", "0")
