"""Documents through the run page and the API: items with text, file name, pages and original; the
originals kept and served to those who may see the run; scanned pages read by OCR at the source, in the
run's own process, before the first station."""

from __future__ import annotations

import hashlib
import html
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.builders import edge, node, register_model
from tests.documents.files import image_bytes, scan, scanned_pdf, text_pdf, zip_of
from tests.engine.helpers import drain, make_runnable_workflow
from workflows import statuses
from workflows.engine import documents
from workflows.engine.documents import OCR_PIN, items_from_file
from workflows.engine.intake import IntakeError
from workflows.engine.launch import create_run
from workflows.models import DeadLetter, Decision, Item, Original, Run, blobs

pytestmark = pytest.mark.django_db
INVOICE = "Fattura 118 del 12/03/2025: importo 1.234,56 EUR, scrivere a amministrazione@example.it"
TRIAGE_LABELS = {
    "billing": "invoices, payments, refunds, charges and bank transfers",
    "technical": "the product or app does not work: errors, bugs, crashes, outages",
    "account": "login, password, profile and account access",
}


def document_graph(fields: tuple[str, ...] = ("text",)) -> dict:
    return {"nodes": [node("src", "source.upload", fields=list(fields)),
                      node("ext", "extract", patterns=["email", "amount", "date"], entities=[]),
                      node("out", "sink.table")],
            "edges": [edge("src", "ext"), edge("ext", "out")]}


@pytest.fixture
def store(settings, tmp_path) -> Path:
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    return tmp_path / "artifacts" / "originals"


@pytest.fixture
def workflow(personas, store):
    return make_runnable_workflow(personas["designer"], document_graph(), name="Documents")


def upload(api, user, workflow, name: str, data: bytes, **form):
    return api(user).post(f"/api/workflows/{workflow.pk}/runs/", {"file": SimpleUploadedFile(name, data), **form},
                          format="multipart")


def test_a_pdf_with_a_text_layer_becomes_an_item_with_its_original(personas, workflow, store, api):
    data = text_pdf([INVOICE, "Seconda pagina"])
    response = upload(api, personas["operator"], workflow, "fattura 118.pdf", data)
    assert response.status_code == 201, response.data
    run = Run.objects.get(pk=response.data["id"])
    sha = hashlib.sha256(data).hexdigest()
    assert run.items.get().payload == {"text": INVOICE + "\n\nSeconda pagina", "file_name": "fattura 118.pdf",
                                       "pages": 2, "original": sha}
    original = Original.objects.get(run=run)
    assert (original.sha256, original.name, original.content_type, original.size, original.pages,
            original.uploaded_by) == (sha, "fattura 118.pdf", "application/pdf", len(data), 2, personas["operator"])
    assert blobs.read_bytes(sha) == data
    assert OCR_PIN not in run.resolved_models  # nothing to read by OCR: no OCR model pinned
    drain()
    run.refresh_from_db()
    assert run.status == statuses.SUCCEEDED
    found = Decision.objects.get(run=run, node="ext").output["fields"]
    assert found["email"][0]["value"] == "amministrazione@example.it" and found["amount"]


def test_a_zip_gives_an_item_per_document_and_a_row_per_original(personas, workflow, api):
    letter, photo = text_pdf([INVOICE]), image_bytes(scan(["Reclamo"]), "PNG")
    register_model("ocr", "ocr")  # the photo needs OCR: a model must be there to read it
    response = upload(api, personas["operator"], workflow, "posta.zip",
                      zip_of({"a/fattura.pdf": letter, "foto.png": photo, "copia.pdf": letter}))
    assert response.status_code == 201, response.data
    run = Run.objects.get(pk=response.data["id"])
    payloads = [i.payload for i in run.items.order_by("seq")]
    assert [(p["file_name"], p.get("ocr_pages")) for p in payloads] == [("a/fattura.pdf", None), ("foto.png", [1]),
                                                                       ("copia.pdf", None)]
    rows = sorted(Original.objects.filter(run=run).values_list("name", "content_type", "pages"))
    assert rows == [("a/fattura.pdf", "application/pdf", 1), ("copia.pdf", "application/pdf", 1),
                    ("foto.png", "image/png", 1)]
    assert run.resolved_models[OCR_PIN]["ref"] == "ocr:v1"


def test_pages_per_document_splits_a_file(personas, workflow, api):
    register_model("ocr", "ocr")
    data = scanned_pdf([["uno"], ["due"], ["tre"]])
    response = upload(api, personas["operator"], workflow, "scan.pdf", data, pages_per_document="2")
    assert response.status_code == 201, response.data
    payloads = [i.payload for i in Run.objects.get(pk=response.data["id"]).items.order_by("seq")]
    assert [(p["pages"], p["page_from"], p["page_to"], p["ocr_pages"]) for p in payloads] == [(2, 1, 2, [1, 2]),
                                                                                              (1, 3, 3, [3])]
    bad = upload(api, personas["operator"], workflow, "scan.pdf", data, pages_per_document="due")
    assert bad.status_code == 400 and "Pages per document must be a whole number" in bad.data["detail"]


def test_scans_without_an_ocr_model_and_fields_documents_lack_are_refused(personas, workflow, api):
    before = (Run.objects.count(), Original.objects.count())
    response = upload(api, personas["operator"], workflow, "scan.pdf", scanned_pdf([["uno"], ["due"]]))
    assert response.status_code == 400
    assert "2 pages have no text layer and need OCR, but no OCR model is in production" in response.data["detail"]
    lang = make_runnable_workflow(personas["designer"], document_graph(("text", "lang")), name="Needs lang")
    response = upload(api, personas["operator"], lang, "fattura.pdf", text_pdf([INVOICE]))
    assert response.status_code == 400 and "The workflow's source needs 'lang'" in response.data["detail"]
    assert (Run.objects.count(), Original.objects.count()) == before


def test_previews_show_documents_pages_text_and_ocr(personas, workflow, api, client):
    register_model("ocr", "ocr")
    archive = zip_of({"fattura.pdf": text_pdf([INVOICE]), "scan.pdf": scanned_pdf([["uno"], ["due"]])})
    response = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/preview/",
                                              {"file": SimpleUploadedFile("posta.zip", archive)}, format="multipart")
    assert response.status_code == 200, response.data
    assert (response.data["format"], response.data["total"], response.data["pages"], response.data["ocr_pages"]) == (
        "documents", 2, 3, 2)
    assert [(d["name"], d["pages"], d["ocr_pages"], d["text"][:11]) for d in response.data["documents"]] == [
        ("fattura.pdf", 1, 0, "Fattura 118"), ("scan.pdf", 2, 2, "")]
    client.force_login(personas["operator"])
    page = client.post(f"/workflows/{workflow.pk}/run/", {"file": SimpleUploadedFile("posta.zip", archive),
                                                          "preview": "1"})
    text = html.unescape(page.content.decode())
    assert page.status_code == 200 and 'id="documents-preview"' in text
    assert "2 documents" in text and "Fattura 118 del 12/03/2025" in text and "needs OCR (2 pages)" in text
    assert "Column mapping" not in text
    started = client.post(f"/workflows/{workflow.pk}/run/", {"staged": page.context["staged"]["token"]})
    assert started.status_code == 302
    assert Run.objects.get().items.count() == 2


def test_the_original_is_served_to_those_who_may_see_the_run(personas, workflow, client, store):
    data = text_pdf([INVOICE])
    run = create_run(workflow, user=personas["operator"], items=items_from_file(data, 'fattura "118"\r\n.pdf'))
    sha = hashlib.sha256(data).hexdigest()
    item = run.items.get()
    client.force_login(personas["business_owner"])
    page = client.get(f"/runs/{run.pk}/items/{item.pk}/")
    assert f'href="/runs/{run.pk}/originals/{sha}/"' in page.content.decode()
    response = client.get(f"/runs/{run.pk}/originals/{sha}/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == data
    assert response["Content-Type"] == "application/pdf" and response["Content-Security-Policy"] == "sandbox"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;") and "\r" not in disposition and "\n" not in disposition
    other = create_run(workflow, user=personas["operator"], items=[{"text": "no original here"}])
    assert client.get(f"/runs/{other.pk}/originals/{sha}/").status_code == 404
    assert client.get(f"/runs/{run.pk}/originals/{'0' * 64}/").status_code == 404
    assert client.get(f"/runs/{run.pk}/originals/..%2F..%2Fsecret/").status_code == 404
    client.force_login(personas["outsider"])
    assert client.get(f"/runs/{run.pk}/originals/{sha}/").status_code == 404
    client.logout()
    assert client.get(f"/runs/{run.pk}/originals/{sha}/").status_code == 302
    blobs.delete(sha)
    client.force_login(personas["operator"])
    assert client.get(f"/runs/{run.pk}/originals/{sha}/").status_code == 404


def test_items_from_file_records_the_originals_of_a_given_run(personas, workflow):
    """The mailbox's way in: items for an attachment; the originals recorded for the run they join."""
    run = create_run(workflow, user=personas["operator"], items=[], live=True)
    items = items_from_file(text_pdf([INVOICE]), "allegato.pdf", user=personas["admin"], run=run)
    assert items[0]["file_name"] == "allegato.pdf" and Original.objects.get(run=run).uploaded_by == personas["admin"]
    with pytest.raises(IntakeError, match=r"'allegato\.docx' is neither a data file"):
        documents.load_upload(b"PK", "allegato.docx")
    with pytest.raises(IntakeError, match=r"The file is empty"):
        items_from_file(b"", "vuoto.pdf")


def test_items_naming_no_kept_file_link_nothing(personas, workflow):
    run = create_run(workflow, user=personas["operator"], items=[{"text": "x", "original": "f" * 64},
                                                                   {"text": "y", "original": "not a hash"}])
    assert run.items.count() == 2 and not Original.objects.filter(run=run).exists()


def test_json_items_cannot_link_an_original_another_run_kept(personas, workflow, api, client):
    """The sha of a kept file is no key: JSON items (the run API, REST intake, a mapped webhook) naming
    another run's original must not make it this run's, or whoever may see this run downloads it."""
    data = text_pdf([INVOICE])
    items_from_file(data, "riservata.pdf", user=personas["operator"],
                    run=create_run(workflow, user=personas["operator"], items=[], live=True))
    sha = hashlib.sha256(data).hexdigest()
    response = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/",
                                              {"items": [{"text": "x", "original": sha, "file_name": "mia.pdf"}]},
                                              format="json")
    assert response.status_code == 201, response.data
    run = Run.objects.get(pk=response.data["id"])
    assert not Original.objects.filter(run=run).exists()
    client.force_login(personas["operator"])
    assert client.get(f"/runs/{run.pk}/originals/{sha}/").status_code == 404


# --- OCR at the source, in this process (a real worker process: test_worker_ocr.py) ------------------


def ocr_workflow(personas):
    graph = {"nodes": [node("src", "source.upload", fields=["text"]),
                       node("cls", "classify", model="minilm@production", method="zero_shot", labels=TRIAGE_LABELS),
                       node("out", "sink.table")],
             "edges": [edge("src", "cls"), edge("cls", "out")]}
    return make_runnable_workflow(personas["designer"], graph, name="Scanned complaints")


def test_scanned_pages_are_read_at_the_source_before_the_classifier(personas, packaged_models, store, api):
    workflow = ocr_workflow(personas)
    scanned = scanned_pdf([["I was charged twice on my invoice,", "please refund the second payment"]])
    response = upload(api, personas["operator"], workflow, "complaint.pdf", scanned)
    assert response.status_code == 201, response.data
    run = Run.objects.get(pk=response.data["id"])
    assert run.resolved_models[OCR_PIN]["model"] == "ocr"
    assert run.items.get().payload["text"] == ""  # intake read no text: the worker reads the scan
    drain()
    run.refresh_from_db()
    assert run.status == statuses.SUCCEEDED, DeadLetter.objects.values_list("reason", flat=True)
    source = Decision.objects.get(run=run, node="src")
    assert "charged twice" in source.output["text"] and source.output["ocr"]["pages"] == 1
    assert source.model_ref == run.resolved_models[OCR_PIN]["ref"]
    assert Decision.objects.get(run=run, node="cls").label == "billing"


def test_a_lost_original_is_a_dead_letter_that_says_so(personas, packaged_models, store, api):
    workflow = ocr_workflow(personas)
    scanned = scanned_pdf([["Non riesco ad accedere"]])
    response = upload(api, personas["operator"], workflow, "scan.pdf", scanned)
    sha = hashlib.sha256(scanned).hexdigest()
    blobs.delete(sha)
    drain()
    letter = DeadLetter.objects.get(run_id=response.data["id"])
    assert letter.node == "src" and letter.error_code == "original_missing"
    assert "original file cannot be read" in letter.reason
    assert not Decision.objects.filter(run_id=response.data["id"], node="cls").exists()  # never reached a model
    assert Item.objects.get(run_id=response.data["id"]).status == Item.DEAD


def test_e_invoices_go_through_the_same_upload(personas, workflow, api):
    """FatturaPA XML (workflows/documents/fatturapa.py) from the run upload, alone or in a ZIP."""
    invoice = (Path(__file__).resolve().parents[1] / "data" / "fatturapa" / "IT01234567897_00001.xml").read_bytes()
    response = upload(api, personas["operator"], workflow, "IT01234567897_00001.xml", invoice)
    assert response.status_code == 201, response.data
    run = Run.objects.get(pk=response.data["id"])
    payload = run.items.get().payload
    assert payload["file_name"] == "IT01234567897_00001.xml" and payload["pages"] == 1 and payload["text"]
    assert payload["supplier_vat_id"] and payload["original"] == hashlib.sha256(invoice).hexdigest()
    assert Original.objects.get(run=run).content_type == "application/xml"
    archive = zip_of({"fatture/IT01234567897_00001.xml": invoice, "scontrino.pdf": text_pdf([INVOICE])})
    response = upload(api, personas["operator"], workflow, "fatture.zip", archive)
    assert response.status_code == 201, response.data
    assert Run.objects.get(pk=response.data["id"]).items.count() == 2
    response = upload(api, personas["operator"], workflow, "ordine.xml", b"<?xml version='1.0'?><Ordine/>")
    assert response.status_code == 400 and "'ordine.xml' is not a FatturaPA e-invoice" in response.data["detail"]


def test_the_api_serves_the_original_and_the_review_card_links_it(personas, store, api, client):
    """An API client (and a reviewer deciding on a document) needs the file the text came from."""
    from workflows.models import ReviewTask

    graph = {"nodes": [node("src", "source.upload", fields=["text"]), node("rev", "review", labels=["ok", "ko"]),
                       node("out", "sink.table")],
             "edges": [edge("src", "rev"), edge("rev", "out")]}
    workflow = make_runnable_workflow(personas["designer"], graph, name="Reviewed documents")
    data = text_pdf([INVOICE])
    sha = hashlib.sha256(data).hexdigest()
    run = create_run(workflow, user=personas["operator"], items=items_from_file(data, "fattura 118.pdf"))
    drain()
    item = run.items.get()
    reader = api(personas["business_owner"])
    trace = reader.get(f"/api/runs/{run.pk}/items/{item.pk}/").json()
    url = f"/api/runs/{run.pk}/originals/{sha}/"
    assert trace["original"] == {"sha256": sha, "name": "fattura 118.pdf", "url": url}
    response = reader.get(trace["original"]["url"])
    assert response.status_code == 200 and b"".join(response.streaming_content) == data
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Security-Policy"] == "sandbox"
    assert reader.get(f"/api/runs/{run.pk}/originals/{'0' * 64}/").status_code == 404
    assert api(personas["outsider"]).get(trace["original"]["url"]).status_code == 404
    assert ReviewTask.objects.filter(run=run, status=ReviewTask.OPEN).exists()
    client.force_login(personas["operator"])
    assert f'href="/runs/{run.pk}/originals/{sha}/"' in client.get("/review/").content.decode()
