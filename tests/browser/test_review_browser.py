"""A reviewer corrects an extracted field and the summary on the review page; once the item resumes,
its trace shows the corrected values, which are what went downstream."""

from __future__ import annotations

import pytest

from tests.browser.conftest import shot
from tests.builders import make_user
from tests.engine.helpers import drain
from tests.governance.test_review_corrections import ANSWER, SUGGESTION, SUMMARY, drafted_line

pytestmark = [pytest.mark.browser]

NEW_IBAN = "IT60X0542811101000000999999"
NEW_SUMMARY = "Charged twice for invoice 4471; refund the second charge."


def test_a_reviewer_corrects_a_field_and_the_summary_and_the_trace_shows_them(page, login, transactional_db):
    from workflows.models import Decision, Label, ReviewTask

    designer = make_user("dario", "designer")
    operator = make_user("olga", "operator")
    run, item, task = drafted_line(designer)

    login(operator)
    page.goto("/review/")
    card = page.locator(f'[data-task="{task.pk}"]')
    # Everything the line produced is there: the suggestion, the summary, the drafted answer, the fields.
    assert SUGGESTION in card.inner_text()
    assert card.locator('textarea[name="text.summary"]').input_value() == SUMMARY
    assert card.locator('textarea[name="text.answer"]').input_value() == ANSWER
    assert card.locator('input[name="field.iban"]').input_value() == "IT60X0542811101000000123456"
    shot(page, "review-everything-the-line-produced")
    card.locator('input[name="field.iban"]').fill(NEW_IBAN)
    card.locator('textarea[name="text.summary"]').fill(NEW_SUMMARY)
    card.locator("button.pick", has_text="billing").click()
    page.wait_for_selector(".messages, .message, [role=status], #empty")
    assert "2 outputs corrected" in page.inner_text("body")

    task.refresh_from_db()
    assert task.status == ReviewTask.DECIDED
    assert set(Label.objects.filter(item=item).values_list("field", flat=True)) == {"", "fields.iban", "summary"}
    drain()  # the worker's part: the item resumes downstream of the review node
    row = Decision.objects.get(run=run, item=item, node="out").output["row"]
    assert row["fields.iban"] == NEW_IBAN and row["summary"] == NEW_SUMMARY

    page.goto(f"/runs/{run.pk}/items/{item.pk}/")
    out = page.locator("#node-out").inner_text()
    assert NEW_IBAN in out and NEW_SUMMARY in out
    reviewed = page.locator(".trace-summary").inner_text()
    assert NEW_IBAN in reviewed and "olga" in reviewed
