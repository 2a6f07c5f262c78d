"""Erasure on request: a person's identifier is found in every place that can hold it (case-insensitive,
JSON searched as text, on PostgreSQL and SQLite alike), shown masked, and erased on confirmation; the
audit log records the request without the identifier."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.test import Client
from django.utils import timezone

from tests.builders import ledger_decision, ledger_item, ledger_run, make_workflow
from workflows.lifecycle import erasure, matching
from workflows.models import (
    AuditEntry,
    Dataset,
    Decision,
    ErasureRequest,
    Item,
    Label,
    LabelledSet,
    Mailbox,
    MailboxMessage,
    Notification,
    Original,
    ReviewTask,
    blobs,
)

pytestmark = pytest.mark.django_db

EMAIL = "mario.rossi@example.it"
TAX_CODE = "RSSMRA80A01H501U"
NAME = "Mario Rossi"
ERASED = matching.PLACEHOLDER


@pytest.fixture
def world(personas, settings, tmp_path):
    """The identifier planted once in every place that can hold it, beside rows that do not hold it."""
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    root = settings.ARTIFACTS_DIR / "originals"
    workflow = make_workflow(personas["designer"])
    run = ledger_run(workflow, personas["operator"])
    now = timezone.now()
    sha = blobs.put_bytes(b"%PDF the contract", facts={"content_type": "application/pdf", "pages": 1})
    Original.objects.create(run=run, sha256=sha, name="contratto.pdf", content_type="application/pdf", size=17,
                            pages=1)
    named = blobs.put_bytes(b"%PDF a CV", facts={"content_type": "application/pdf", "pages": 1})
    Original.objects.create(run=run, sha256=named, name=f"CV {NAME}.pdf", content_type="application/pdf", size=9,
                            pages=1)
    theirs = ledger_item(run, 0, received=now, finished=now, payload={
        "text": f"Buongiorno, sono {NAME} ({EMAIL}), codice fiscale {TAX_CODE}.", "lang": "it",
        "original": sha, "file_name": "contratto.pdf"})
    other = ledger_item(run, 1, received=now, finished=now, payload={"text": "Nessun dato personale.", "lang": "it"})
    ledger_decision(run, theirs, "ext", output={"fields": {"email": [{"value": EMAIL.upper(), "start": 30}]},
                                                "decided_by": "small", "llm": {"tokens_in": 40}},
                    label="billing", confidence=0.9)
    ledger_decision(run, other, "ext", output={"fields": {"email": []}}, label="billing", confidence=0.8)
    task = ReviewTask.objects.create(run=run, item=theirs, node="rev", proposal={"fields": {"email": [EMAIL]}},
                                     result={"fields": {"email": [{"value": EMAIL, "source": "review"}]}})
    Label.objects.create(run=run, item=theirs, review_task=task, node="cls", text=theirs.payload["text"],
                         label="billing", predicted="technical")
    Label.objects.create(run=run, item=theirs, node="ext", field="fields.email", text="…", label=EMAIL,
                         predicted="")
    Label.objects.create(run=run, item=other, node="cls", text="Nessun dato personale.", label="billing")
    Dataset.objects.create(name="weekly", filename="weekly.csv", content=f"text;lang\n{EMAIL} chiede;it\nciao;it\n"
                           .encode(), size=1, rows=2, columns=["text", "lang"])
    Dataset.objects.create(name="only-theirs", filename="only.jsonl",
                           content=json.dumps({"text": f"scrive {NAME}"}).encode() + b"\n", size=1, rows=1,
                           columns=["text"])
    Dataset.objects.create(name="clean", filename="clean.csv", content=b"text\nciao\n", size=1, rows=1,
                           columns=["text"])
    labelled = LabelledSet.objects.create(name="eval", source="upload", labels=["billing", "technical"], items=[
        {"text": f"fattura per {NAME}", "label": "billing"}, {"text": "errore", "label": "technical"},
        {"text": "pagamento", "label": "billing"}])
    Notification.objects.create(user=personas["admin"], kind="run.failed", key="k1", params={"about": EMAIL})
    Notification.objects.create(user=personas["admin"], kind="run.failed", key="k2", params={"run": 1})
    mailbox = Mailbox.objects.create(workflow=workflow, host="imap.example.it", username="fatture",
                                     password_encrypted="x")
    MailboxMessage.objects.create(mailbox=mailbox, message_key="<1@example.it>", sender=f"{NAME} <{EMAIL}>",
                                  subject="Fattura", status=MailboxMessage.TAKEN)
    return {"run": run, "theirs": theirs, "other": other, "task": task, "labelled": labelled, "sha": sha,
            "named": named, "root": root}


# By e-mail: the document, its output, its two labels, the review, a data-set row, the document's original
# file, a notification and the e-mail it came in.
BY_EMAIL = {"items": 1, "decisions": 1, "labels": 2, "review_tasks": 1, "datasets": 1, "labelled_sets": 0,
            "originals": 1, "notifications": 1, "mail_messages": 1}
# By name: the document, its class label, a data set whose only row names them, a labelled-set row, the
# document's file and a file named after them, and the e-mail's sender.
BY_NAME = {"items": 1, "decisions": 0, "labels": 1, "review_tasks": 0, "datasets": 1, "labelled_sets": 1,
           "originals": 2, "notifications": 0, "mail_messages": 1}


def counts(data) -> dict[str, int]:
    return {f["kind"]: f["count"] for f in data["found"]}


def test_finds_everywhere_shows_masked_and_erases_on_confirmation(personas, world, api):
    client = api(personas["admin"])
    found = client.post("/api/erasure/", {"identifier": EMAIL}, format="json")
    assert found.status_code == 200, found.data
    assert counts(found.data) == BY_EMAIL
    assert found.data["kind"] == "email" and found.data["total"] == sum(counts(found.data).values())
    shown = json.dumps(found.data, default=str, ensure_ascii=False)
    assert EMAIL not in shown.lower() and "m••" in shown
    # Nothing is erased by a search.
    assert Item.objects.get(pk=world["theirs"].pk).payload["text"].startswith("Buongiorno")

    done = client.post("/api/erasure/confirm/", {"token": found.data["token"], "identifier": EMAIL}, format="json")
    assert done.status_code == 200, done.data
    assert done.data["erased"] == BY_EMAIL

    theirs = Item.objects.get(pk=world["theirs"].pk)
    assert theirs.payload["text"] == ERASED and theirs.payload["lang"] == "it" and theirs.payload["original"]
    assert Item.objects.get(pk=world["other"].pk).payload["text"] == "Nessun dato personale."
    decision = Decision.objects.get(item=world["theirs"], node="ext")
    assert decision.output["fields"]["email"][0]["value"] == ERASED
    # What the KPIs read of the decision stays: its label, confidence, path and tokens.
    assert (decision.label, decision.confidence, decision.output["decided_by"]) == ("billing", 0.9, "small")
    assert decision.output["llm"] == {"tokens_in": 40}
    task = ReviewTask.objects.get(pk=world["task"].pk)
    assert EMAIL not in json.dumps([task.proposal, task.result])
    assert list(Label.objects.values_list("text", flat=True)) == ["Nessun dato personale."]
    weekly = Dataset.objects.get(name="weekly")
    assert bytes(weekly.content).decode() == "text;lang\r\nciao;it\r\n" and weekly.rows == 1
    assert set(Dataset.objects.values_list("name", flat=True)) == {"weekly", "only-theirs", "clean"}
    assert not Original.objects.filter(sha256=world["sha"]).exists()
    assert not blobs.exists(world["sha"])
    assert list(Notification.objects.values_list("key", flat=True)) == ["k2"]
    assert MailboxMessage.objects.get().sender == ERASED
    # Searched again: nothing holds it any more.
    again = client.post("/api/erasure/", {"identifier": EMAIL}, format="json")
    assert again.data["total"] == 0


def test_the_audit_log_and_the_request_keep_no_personal_data(personas, world, api):
    client = api(personas["admin"])
    found = client.post("/api/erasure/", {"identifier": NAME}, format="json")
    assert found.data["kind"] == "name" and counts(found.data) == BY_NAME
    client.post("/api/erasure/confirm/", {"token": found.data["token"], "identifier": NAME}, format="json")
    entries = list(AuditEntry.objects.filter(action__startswith="erasure."))
    assert [e.action for e in entries] == ["erasure.search", "erasure.erase"]
    for entry in AuditEntry.objects.all():
        text = json.dumps([entry.data, entry.object_id, entry.actor_name]).lower()
        assert "rossi" not in text, entry.action
    request = ErasureRequest.objects.get()
    assert "rossi" not in json.dumps([request.identifier_hash, request.found, request.erased, request.kind]).lower()
    erase = entries[1]
    assert erase.actor == personas["admin"] and erase.data["identifier_hash"] == request.identifier_hash
    assert erase.data["erased"] == BY_NAME
    # A data set whose every row named them is gone; the labelled set lost that row only; so did the files.
    assert set(Dataset.objects.values_list("name", flat=True)) == {"weekly", "clean"}
    assert len(LabelledSet.objects.get(pk=world["labelled"].pk).items) == 2
    assert not Original.objects.exists()
    assert not blobs.exists(world["named"])
    # The hash is salted and keyed: recomputable with the salt, and not a bare hash of the name.
    assert erasure.identifier_hash(request.salt, NAME) == request.identifier_hash
    import hashlib

    assert request.identifier_hash not in {hashlib.sha256(v.encode()).hexdigest() for v in (NAME, NAME.lower())}


@pytest.mark.parametrize("typed, kind", [(EMAIL.upper(), "email"), ("rssmra80a01h501u", "tax_code"),
                                         ("MARIO   ROSSI", "name")])
def test_search_ignores_case_and_spacing(personas, world, typed, kind):
    found = erasure.search(typed, user=personas["admin"])
    assert found.request.kind == kind
    assert found.found["items"].count == 1


def test_accented_names_are_found_whatever_their_case(personas, world):
    run = world["run"]
    now = timezone.now()
    ledger_item(run, 5, received=now, finished=now, payload={"text": "Firmato: Nicolò Bianchi"})
    Label.objects.create(run=run, node="cls", text="NICOLÒ BIANCHI ringrazia", label="billing")
    found = erasure.search("nicolò bianchi", user=personas["admin"])
    assert found.found["items"].count == 1 and found.found["labels"].count == 1


def test_a_key_is_not_a_value(personas, world):
    """JSON searched as text must not take a key for the person's data."""
    run = world["run"]
    now = timezone.now()
    ledger_item(run, 6, received=now, finished=now, payload={"Anna Verdi": "x", "text": "nulla"})
    assert erasure.search("Anna Verdi", user=personas["admin"]).total == 0


def test_the_page_searches_then_erases(personas, world):
    client = Client()
    client.force_login(personas["admin"])
    assert client.get("/erasure/").status_code == 200
    page = client.post("/erasure/", {"action": "search", "identifier": TAX_CODE})
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="erasure-confirm"' in html and TAX_CODE not in html.replace(f'value="{TAX_CODE}"', "")
    token = page.context["search"].token
    done = client.post("/erasure/", {"action": "confirm", "token": token, "identifier": TAX_CODE})
    assert done.status_code == 200 and 'id="erasure-done"' in done.content.decode()
    assert ERASED == Item.objects.get(pk=world["theirs"].pk).payload["text"]


@pytest.mark.parametrize("who", ["designer", "operator", "validator", "business_owner", "trainer", "outsider"])
def test_only_administrators_may_search_or_erase(personas, world, api, who):
    token = erasure.search(EMAIL, user=personas["admin"]).token
    client = api(personas[who])
    assert client.post("/api/erasure/", {"identifier": EMAIL}, format="json").status_code in (403, 404)
    refused = client.post("/api/erasure/confirm/", {"token": token, "identifier": EMAIL}, format="json")
    assert refused.status_code in (403, 404)
    page = Client()
    page.force_login(personas[who])
    assert page.get("/erasure/").status_code in (403, 404)
    assert Item.objects.get(pk=world["theirs"].pk).payload["text"].startswith("Buongiorno")
    assert api().post("/api/erasure/", {"identifier": EMAIL}, format="json").status_code == 401


@pytest.mark.parametrize("typed", ["", "Rossi", "ab@c", "12345678", "x" * 300, "Mario 2 Rossi"])
def test_an_identifier_that_is_not_one_is_refused_saying_what_to_type(personas, api, typed):
    response = api(personas["admin"]).post("/api/erasure/", {"identifier": typed}, format="json")
    assert response.status_code == 400
    assert "identifier" in response.data and ("e-mail" in response.data["detail"] or "blank" in response.data["detail"])
    assert not ErasureRequest.objects.exists()


def test_a_confirmation_must_match_its_search_and_is_used_once(personas, world, api):
    client = api(personas["admin"])
    token = client.post("/api/erasure/", {"identifier": EMAIL}, format="json").data["token"]
    other = client.post("/api/erasure/confirm/", {"token": token, "identifier": "luigi.verdi@example.it"},
                        format="json")
    assert other.status_code == 400 and "not the one" in other.data["detail"]
    unknown = client.post("/api/erasure/confirm/", {"token": "nope", "identifier": EMAIL}, format="json")
    assert unknown.status_code == 400 and "unknown" in unknown.data["detail"]
    assert Item.objects.get(pk=world["theirs"].pk).payload["text"].startswith("Buongiorno")
    assert client.post("/api/erasure/confirm/", {"token": token, "identifier": EMAIL}, format="json").status_code == 200
    again = client.post("/api/erasure/confirm/", {"token": token, "identifier": EMAIL}, format="json")
    assert again.status_code == 400 and "already" in again.data["detail"]


def test_a_search_expires(personas, world, api):
    client = api(personas["admin"])
    token = client.post("/api/erasure/", {"identifier": EMAIL}, format="json").data["token"]
    ErasureRequest.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    expired = client.post("/api/erasure/confirm/", {"token": token, "identifier": EMAIL}, format="json")
    assert expired.status_code == 400 and "expired" in expired.data["detail"]
    assert Item.objects.get(pk=world["theirs"].pk).payload["text"].startswith("Buongiorno")


def test_mask_and_snippet():
    assert matching.mask(EMAIL) == "m••••••••••@e••••••.it"
    assert matching.mask(TAX_CODE) == "R••••••••••••••U"
    assert matching.mask(NAME) == "M•••• R••••"
    text = f"Scrive {NAME.upper()} per la fattura"
    assert matching.snippet(text, NAME) == "Scrive M•••• R•••• per la fattura"


def test_a_name_is_found_and_erased_in_either_order(personas, world, api):
    # Italian forms and registers write the surname first ("Rossi Mario"): a request for "Mario Rossi"
    # must reach those rows too, and count a row holding both orders once.
    run = world["run"]
    now = timezone.now()
    surname_first = ledger_item(run, 2, received=now, finished=now,
                                payload={"text": "Cliente: ROSSI MARIO, via Roma 1.", "lang": "it"})
    both = ledger_item(run, 3, received=now, finished=now,
                       payload={"text": "Mario Rossi (in anagrafica Rossi Mario).", "lang": "it"})
    client = api(personas["admin"])
    found = client.post("/api/erasure/", {"identifier": NAME}, format="json")
    assert found.status_code == 200, found.data
    assert counts(found.data)["items"] == BY_NAME["items"] + 2
    done = client.post("/api/erasure/confirm/", {"token": found.data["token"], "identifier": NAME}, format="json")
    assert done.status_code == 200, done.data
    assert done.data["erased"]["items"] == BY_NAME["items"] + 2
    assert Item.objects.get(pk=surname_first.pk).payload["text"] == ERASED
    assert Item.objects.get(pk=both.pk).payload["text"] == ERASED
