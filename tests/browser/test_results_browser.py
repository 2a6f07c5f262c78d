"""The results table in a real browser: filter by label and by an extracted field, sort by a node's
confidence, open an item and read its trace node by node, with the raw JSON one click away."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.builders import register_model
from tests.test_results_table import classified_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_person_filters_the_results_and_reads_an_items_trace(page, login, personas):
    register_model("rampart", "extractor")
    register_model("tickets", "classifier", labels=["billing", "technical", "account"])
    run = classified_run(personas["designer"], personas["operator"])
    login(personas["operator"])
    page.goto(f"/runs/{run.pk}/results/")
    rows = page.locator("table.results-table tbody tr")
    expect(rows).to_have_count(9)
    expect(page.locator("select[name=label] option")).to_have_count(4)  # "any" and each label once

    page.select_option("select[name=label]", "technical")
    page.click("#results-search button")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("technical")

    page.select_option("select[name=label]", "")
    page.select_option("select[name=field]", "ext:fields.iban")
    page.fill("input[name=value]", "0007")
    page.click("#results-search button")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("IT60X054281110100000000007")

    page.click("a:text-is('Clear')")
    page.click("th[data-column='cls:confidence'] a")
    expect(page.locator("th[data-column='cls:confidence']")).to_have_attribute("aria-sort", "ascending")
    page.click("th[data-column='cls:confidence'] a")
    expect(page.locator("th[data-column='cls:confidence']")).to_have_attribute("aria-sort", "descending")
    expect(rows.first.locator("td").first).to_have_text("8")
    shot(page, "results-table")

    rows.nth(1).locator("td a").first.click()  # item 7: confident, fields extracted
    page.wait_for_url(lambda url: "/items/" in url)
    expect(page.locator("table.trace-summary tbody tr")).to_have_count(4)
    step = page.locator("#node-ext")
    expect(step.locator("table[data-io=out]")).to_contain_text("fields.iban")
    expect(step.locator("table[data-io=in]")).to_contain_text("ticket number 7")
    raw = step.locator("details.raw pre")
    expect(raw).to_be_hidden()
    step.locator("details.raw summary").click()
    expect(raw).to_be_visible()
    expect(raw).to_contain_text('"model_ref": "patterns"')
    shot(page, "item-trace")
