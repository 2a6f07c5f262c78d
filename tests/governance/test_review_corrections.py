"""Reviewers see everything the line produced for an item (label with its alternatives, extracted
fields, summary, drafted answer, the large model's suggestion) and correct any of it: corrections
become field-level labels and the corrected values are what goes downstream."""

from __future__ import annotations

import html

import pytest

from tests.builders import edge, ledger_decision, ledger_item, ledger_run, make_workflow, node, register_model
from tests.engine.helpers import drain
from workflows.engine import launch
from workflows.models import Decision, Item, Label, LLMEndpoint, ReviewTask

pytestmark = pytest.mark.django_db

IBAN_TEXT = "fattura IT60 X054 2811 1010 0000 0123 456 da mario.rossi@example.it"


def extract_graph():
    """src → extract (patterns: no model) → classify (keyword classifier) → review → export."""
    return {
        "nodes": [node("src", "source.upload", fields=["text"]),
                  node("ext", "extract", patterns=["iban", "email", "vat"], entities=[]),
                  node("cls", "classify", model="tickets@production"),
                  node("rev", "review", labels=["account", "billing", "technical"]),
                  node("out", "sink.export")],
        "edges": [edge("src", "ext"), edge("ext", "cls"), edge("cls", "rev"), edge("rev", "out")],
    }


def drafted_graph():
    """src → cascade (small model, then the large one) → extract → summarise → llm (drafts the answer)
    → review → export: the help-desk line, with the cascade's suggestion."""
    return {
        "nodes": [node("src", "source.upload", fields=["text"]),
                  node("cls", "cascade", model="tickets@production", endpoint="local-smollm2",
                       labels={"billing": "invoices", "technical": "errors", "account": "logins"}),
                  node("ext", "extract", patterns=["iban", "email"], entities=[]),
                  node("sum", "summarise", method="extractive", model="minilm@production", sentences=1),
                  node("draft", "llm", endpoint="local-smollm2", prompt="Answer politely: {text}",
                       output_field="answer"),
                  node("rev", "review", queue="helpdesk", labels=["account", "billing", "technical"],
                       instructions="Check the large model's suggestion and the drafted answer."),
                  node("out", "sink.export")],
        "edges": [edge("src", "cls"), edge("cls", "ext", source_port="review"),
                  edge("cls", "out", source_port="decided"), edge("ext", "sum"), edge("sum", "draft"),
                  edge("draft", "rev"), edge("rev", "out")],
    }


SUMMARY = "The customer was charged twice for invoice 4471."
ANSWER = "Dear customer, we are sorry: we will refund the second charge within five days."
SUGGESTION = "label: billing; confidence: 0.55"


def drafted_line(user):
    """A run parked at its review node, its ledger rows as the executor writes them (the large model
    and the summariser are not run here: their outputs are what the reviewer checks)."""
    register_model("tickets", "classifier", labels=["account", "billing", "technical"])
    register_model("minilm", "embedder")
    LLMEndpoint.objects.get_or_create(name="local-smollm2", defaults={
        "base_url": "http://127.0.0.1:9/v1", "model_name": "smollm2", "location": LLMEndpoint.ON_PREMISE,
        "region": "local"})
    workflow = make_workflow(user, drafted_graph(), name="Help desk")
    run = ledger_run(workflow, user, status="waiting", items_total=1, items_parked=1)
    item = ledger_item(run, 0, received=run.created_at, status=Item.PARKED,
                       payload={"text": "I was charged twice for invoice 4471. IBAN IT60X0542811101000000123456."})
    ledger_decision(run, item, "src", output={})
    ledger_decision(run, item, "cls", label="technical", confidence=0.41, port="review", model_ref="tickets:v1",
                    output={"decided_by": "human", "large_answer": SUGGESTION,
                            "scores": {"technical": 0.41, "billing": 0.38, "account": 0.21}})
    iban = {"value": "IT60X0542811101000000123456", "start": 50, "end": 77, "confidence": 1.0, "source": "pattern"}
    ledger_decision(run, item, "ext", output={"fields": {"iban": [iban], "email": []}}, model_ref="patterns")
    ledger_decision(run, item, "sum", output={"summary": SUMMARY}, model_ref="minilm:v1")
    ledger_decision(run, item, "draft", output={"answer": ANSWER, "llm": {"tokens_in": 40, "tokens_out": 20}},
                    model_ref="local-smollm2/smollm2")
    ledger_decision(run, item, "rev", port="parked")
    task = ReviewTask.objects.create(
        run=run, item=item, node="rev", queue="helpdesk", instructions="Check the large model's suggestion.",
        proposal={"labels": ["account", "billing", "technical"], "label": "technical", "confidence": 0.41,
                  "fields": {"iban": [iban], "email": []}, "summary": SUMMARY, "answer": ANSWER,
                  "large_answer": SUGGESTION, "decided_by": "human"})
    return run, item, task


def exported_row(run, item) -> dict:
    return Decision.objects.get(run=run, item=item, node="out").output["row"]


def escalated_invoice(personas):
    """The invoice line run on IBAN_TEXT until the item waits at its review node: (run, task, the spans
    the extractor found)."""
    workflow = make_workflow(personas["designer"], extract_graph(), name="Invoices")
    run = launch.create_run(workflow, user=personas["operator"], items=[{"text": IBAN_TEXT}])
    drain()
    task = ReviewTask.objects.get(run=run, kind=ReviewTask.ESCALATION)
    return run, task, Decision.objects.get(run=run, node="ext").output["fields"]


def test_the_page_shows_the_extracted_fields_and_the_alternatives(personas, keyword_models, client):
    run, task, spans = escalated_invoice(personas)
    iban, email = spans["iban"][0]["value"], spans["email"][0]["value"]
    client.force_login(personas["operator"])
    page = html.unescape(client.get("/review/").content.decode())
    # Each extracted field is an input of its own, holding what the extractor found.
    assert f'name="field.iban" value="{iban}"' in page and f'name="field.email" value="{email}"' in page
    # A field the extractor looked for and did not find is there too, empty, to be filled in.
    assert 'name="field.vat" value=""' in page
    # The label with its alternatives, each with its score.
    scores = Decision.objects.get(run=run, node="cls").output["scores"]
    assert len(scores) == 3
    for label in scores:
        assert f'data-alternative="{label}"' in page
    assert f'href="/runs/{run.pk}/items/{task.item_id}/"' in page


def test_a_corrected_field_becomes_a_field_label_and_goes_downstream(personas, keyword_models, client):
    run, task, spans = escalated_invoice(personas)
    found_iban, found_email = spans["iban"][0]["value"], spans["email"][0]["value"]
    client.force_login(personas["operator"])
    response = client.post(f"/review/{task.pk}/decide/", {
        "label": "billing", "field.iban": "IT60X0542811101000000999999", "field.email": "",
        "field.vat": "IT12345678903"})
    assert response.status_code == 302
    labels = {lab.field: lab for lab in Label.objects.filter(item=task.item)}
    assert set(labels) == {"", "fields.iban", "fields.email", "fields.vat"}
    assert (labels[""].label, labels[""].predicted, labels[""].review_task) == ("billing", "technical", task)
    assert (labels["fields.iban"].label, labels["fields.iban"].predicted) == ("IT60X0542811101000000999999",
                                                                             found_iban)
    assert (labels["fields.email"].label, labels["fields.email"].predicted) == ("", found_email)
    assert (labels["fields.vat"].label, labels["fields.vat"].predicted) == ("IT12345678903", "")
    assert all(lab.source == Label.REVIEW and lab.node == "ext" for f, lab in labels.items() if f)
    assert all(lab.text == IBAN_TEXT for lab in labels.values())
    drain()
    row = exported_row(run, task.item)
    assert row["fields.iban"] == "IT60X0542811101000000999999" and row["fields.vat"] == "IT12345678903"
    assert row["fields.email"] == "" and row["label"] == "billing"
    # Field labels never count as class labels in live accuracy.
    from workflows.governance.accuracy import node_accuracy

    assert [(a.node, a.escalated.n) for a in node_accuracy()] == [("cls", 1)]


def test_summary_answer_and_the_large_models_suggestion_are_shown(personas, client):
    drafted_line(personas["designer"])
    client.force_login(personas["operator"])
    page = html.unescape(client.get("/review/?queue=helpdesk").content.decode())
    assert f">{SUMMARY}</textarea>" in page and f">{ANSWER}</textarea>" in page
    assert 'name="text.summary"' in page and 'name="text.answer"' in page
    assert SUGGESTION in page and "Large model" in page
    assert 'name="field.iban" value="IT60X0542811101000000123456"' in page


def test_the_edited_answer_is_what_goes_downstream(personas, client):
    run, item, task = drafted_line(personas["designer"])
    long_answer = "Dear customer, " + "we checked invoice 4471 and refunded the second charge. " * 6
    client.force_login(personas["operator"])
    client.post(f"/review/{task.pk}/decide/", {
        "label": "billing", "text.summary": "Charged twice.\r\n", "text.answer": long_answer,
        "field.iban": "IT60X0542811101000000123456", "field.email": ""})
    labels = {lab.field: lab for lab in Label.objects.filter(item=item)}
    assert set(labels) == {"", "summary", "answer"}  # the unchanged IBAN and email are no corrections
    assert (labels["summary"].label, labels["summary"].predicted, labels["summary"].node) == (
        "Charged twice.", SUMMARY, "sum")
    assert labels["answer"].label == long_answer.strip()[:120] and labels["answer"].predicted == ANSWER
    task.refresh_from_db()
    assert task.result["answer"] == long_answer.strip() and task.result["summary"] == "Charged twice."
    drain()
    row = exported_row(run, item)
    assert row["answer"] == long_answer.strip() and row["summary"] == "Charged twice." and row["label"] == "billing"


def test_the_api_lists_everything_and_accepts_corrections(personas, api):
    run, item, task = drafted_line(personas["designer"])
    client = api(personas["operator"])
    listed = client.get("/api/review/").data["tasks"]
    assert len(listed) == 1
    shown = listed[0]
    assert shown["kind"] == "escalation" and shown["summary"] == SUMMARY and shown["answer"] == ANSWER
    assert shown["fields"] == {"iban": ["IT60X0542811101000000123456"], "email": []}
    assert shown["suggestion"] == SUGGESTION
    assert [a["label"] for a in shown["alternatives"]] == ["technical", "billing", "account"]
    response = client.post(f"/api/reviews/{task.pk}/decide/", {
        "label": "billing", "fields": {"iban": "IT60X0542811101000000000001", "email": ["help@example.it"]},
        "answer": "Refunded."}, format="json")
    assert response.status_code == 200, response.data
    assert sorted(response.data["corrections"]) == ["answer", "fields.email", "fields.iban"]
    assert Label.objects.get(item=item, field="fields.email").label == "help@example.it"
    drain()
    row = exported_row(run, item)
    assert row["answer"] == "Refunded." and row["fields.email"] == "help@example.it"


def test_an_unknown_field_is_refused_naming_it(personas, api):
    _, item, task = drafted_line(personas["designer"])
    client = api(personas["operator"])
    response = client.post(f"/api/reviews/{task.pk}/decide/", {"label": "billing", "fields": {"ibn": "x"}},
                           format="json")
    assert response.status_code == 400 and "fields.ibn" in str(response.data)
    for endpoint in (f"/api/reviews/{task.pk}/decide/", f"/api/review/{task.pk}/label/"):
        for body, kind in (({"label": "billing", "fields": "false"}, "json"),
                           ({"label": "billing", "fields": "false"}, "multipart")):
            response = client.post(endpoint, body, format=kind)
            assert response.status_code == 400 and "fields" in str(response.data)
    response = client.post(f"/api/review/{task.pk}/label/", {"label": "billing", "summry": "x"}, format="json")
    assert response.status_code == 400 and "summry" in str(response.data)
    task.refresh_from_db()
    assert task.status == "open" and not Label.objects.exists()
    response = client.post(f"/api/review/{task.pk}/label/", {"label": "billing", "summary": "Short."}, format="json")
    assert response.status_code == 200 and response.data["corrected"] is True
    assert response.data["corrections"] == ["summary"]
    assert Label.objects.get(item=item, field="summary").label == "Short."
