"""The gallery's "Fatture passive" (Incoming invoices): it validates in both languages, its demo documents
are the sample invoices as read today, and it runs end to end through a real worker: clean invoices to
the "da registrare" export, doubtful ones to a person with the reason, who decides them."""

from __future__ import annotations

import json
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.documents.files import zip_of
from tests.documents.test_fatturapa import BLU, GIALLI, NERI, ROSSI, VERDI, sample, signed
from tests.engine.helpers import register_model
from workflows import statuses
from workflows.design import gallery
from workflows.design.versions import create_workflow
from workflows.documents.fatturapa import read_fatturapa
from workflows.governance import review
from workflows.graph import parse_graph, validate
from workflows.models import Decision, ReviewTask, Run

SLUG = "fatture-passive"
SAMPLES = (ROSSI, VERDI, NERI, GIALLI, BLU)


def invoices() -> list[dict]:
    return [item for name in SAMPLES for item in read_fatturapa(sample(name), name)]


def make_workflow(user, language: str = "it"):
    register_model()  # rampart@production resolves; the extract step uses patterns only and never loads it
    template = gallery.in_language(gallery.get(SLUG), language)
    workflow, version = create_workflow(name=template["name"], description=template["description"],
                                        graph=parse_graph(template["graph"]), user=user, message="test",
                                        template=SLUG)
    return workflow, version


@pytest.mark.parametrize("language", ["en", "it"])
def test_the_template_validates_and_can_run_in_both_languages(db, personas, language):
    template = gallery.in_language(gallery.get(SLUG), language)
    assert validate(parse_graph(template["graph"])) == []
    _, version = make_workflow(personas["designer"], language)
    assert version.is_runnable, version.problems
    assert template["name"] == {"en": "Incoming invoices", "it": "Fatture passive"}[language]


def test_the_demo_documents_are_the_sample_invoices_as_read_today():
    assert gallery.sample_items(SLUG) == [{**item, "language": "it"} for item in invoices()]
    assert {item["check"] for item in gallery.sample_items(SLUG, "it")} == {"ok", "da_verificare"}


def wait_until(run: Run, pool, done, timeout: float = 120) -> Run:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if done(run):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run.pk} is {run.status}: {run.items_done} done, {run.items_parked} parked of "
                         f"{run.items_total}\n{pool.logs()}")


@pytest.mark.worker
@pytest.mark.slow
def test_invoices_run_end_to_end_through_a_worker_and_a_person(transactional_db, personas, workers, api):
    workflow, _ = make_workflow(personas["designer"])
    altered = signed(sample(ROSSI)).replace(b"<Numero>FT-2025/0042", b"<Numero>FT-2025/0043")
    items = invoices() + read_fatturapa(altered, "alterata.xml.p7m")
    # The items as read_fatturapa gives them, through the run API as JSON: the upload dispatcher
    # (documents/read.py) hands the same dicts to the intake.
    response = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/", {"items": items},
                                              format="json")
    assert response.status_code == 201, response.data
    run = Run.objects.get(pk=response.data["id"])
    pool = workers()
    pool.start()
    # The monitor marks the run waiting once nothing but the parked items is left.
    run = wait_until(run, pool, lambda r: r.status == statuses.WAITING)
    assert (run.status, run.items_total, run.items_done, run.items_parked) == (statuses.WAITING, 7, 4, 3)

    rows = {d.item.payload["number"]: d.output["row"]
            for d in Decision.objects.filter(run=run, node="to_register").select_related("item")}
    assert set(rows) == {"FT-2025/0042", "27/A", "12/2025", "13/2025"}
    assert rows["FT-2025/0042"] == {
        "file_name": ROSSI, "supplier": "Officine Meccaniche Rossi S.r.l.", "supplier_vat_id": "IT01234567897",
        "document_type": "TD01", "number": "FT-2025/0042", "date": "2025-01-31", "currency": "EUR",
        "taxable_amount": 437.0, "vat_amount": 96.14, "total_amount": 533.14, "withholding_amount": 0.0,
        "amount_due": 533.14, "due_date": "2025-02-28", "iban": "IT60X0542811101000000123456"}
    assert rows["12/2025"]["amount_due"] == 1224.0

    tasks = list(ReviewTask.objects.filter(run=run).select_related("item", "run__version", "run__workflow"))
    assert sorted(t.item.payload["number"] for t in tasks) == ["2025-000881", "5", "FT-2025/0043"]
    assert all(t.queue == "fatture" and t.instructions.startswith("La prima riga della fattura") for t in tasks)
    # What the reviewer sees: the reason first, the extracted fields to correct, the two choices.
    views = {v.task.item.payload["number"]: v for v in review.task_views(tasks)}
    gialli = views["2025-000881"]
    assert gialli.text.startswith("Da verificare: Il totale del documento (723,00 €) non è imponibile più IVA")
    assert gialli.choices == ["registrare", "contestare"]
    assert "IT07654321095" in gialli.fields["vat"] and gialli.fields["iban"] == []  # its IBAN fails mod-97
    assert views["FT-2025/0043"].text.startswith("Da verificare: La firma digitale non è valida: il documento è "
                                                 "stato modificato dopo la firma.")

    reviewer = api(personas["operator"])
    for task in tasks:
        label = "contestare" if task.item.payload["number"] == "2025-000881" else "registrare"
        answer = reviewer.post(f"/api/reviews/{task.pk}/decide/", {"label": label}, format="json")
        assert answer.status_code == 200, answer.data
    run = wait_until(run, pool, lambda r: r.status in statuses.FINAL_RUN_STATUSES)
    assert (run.status, run.items_done, run.items_parked) == (statuses.SUCCEEDED, 7, 0)
    reviewed = Decision.objects.filter(run=run, node="reviewed").select_related("item")
    assert sorted(d.item.payload["number"] for d in reviewed) == ["2025-000881", "5", "FT-2025/0043"]
    json.dumps([d.item.payload for d in reviewed])


@pytest.mark.worker
@pytest.mark.slow
def test_uploaded_xml_and_p7m_invoices_reach_the_template_through_the_dispatcher(transactional_db, personas, workers,
                                                                                  api, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    workflow, _ = make_workflow(personas["designer"])
    files = {name: sample(name) for name in SAMPLES}
    files["IT01234567897_00002.xml.p7m"] = signed(sample(ROSSI).replace(b"<Numero>FT-2025/0042",
                                                                        b"<Numero>FT-2025/0044"))
    response = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/",
                                              {"file": SimpleUploadedFile("fatture.zip", zip_of(files))},
                                              format="multipart")
    assert response.status_code == 201, response.data
    run = Run.objects.get(pk=response.data["id"])
    assert run.items_total == 7  # one item per invoice body: the file of two bills gives two
    pool = workers(ARTIFACTS_DIR=str(settings.ARTIFACTS_DIR))
    pool.start()
    run = wait_until(run, pool, lambda r: r.status == statuses.WAITING)
    registered = {d.item.payload["number"]: d.item.payload
                  for d in Decision.objects.filter(run=run, node="to_register").select_related("item")}
    assert set(registered) == {"FT-2025/0042", "FT-2025/0044", "27/A", "12/2025", "13/2025"}
    assert registered["FT-2025/0044"]["signature_verified"] is True
    assert registered["FT-2025/0044"]["file_name"] == "IT01234567897_00002.xml.p7m"
    assert registered["27/A"]["text"].startswith("Fattura n. 27/A del 14/02/2025")
    parked = {t.item.payload["number"]: t.item.payload["problem_codes"] for t in ReviewTask.objects.filter(run=run)}
    assert parked == {"2025-000881": ["total_mismatch", "due_date_missing", "iban_invalid"],
                      "5": ["supplier_vat_invalid"]}
