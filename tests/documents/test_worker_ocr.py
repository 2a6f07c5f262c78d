"""End to end through a real `run_worker` process: a scanned PDF uploaded through the API, its page
rendered and read by OCR in the worker, and the text it read reaching the classifier."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.documents.files import scanned_pdf, text_pdf, zip_of
from tests.documents.test_intake import ocr_workflow
from tests.engine.test_worker import wait_for
from workflows import statuses
from workflows.engine.documents import OCR_PIN
from workflows.models import Decision, Original, Run

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def test_a_scanned_pdf_is_read_by_the_worker_and_classified(transactional_db, personas, packaged_models, workers,
                                                            api, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    workflow = ocr_workflow(personas)
    scanned = scanned_pdf([["I was charged twice on my invoice,", "please refund the second payment"]])
    typed = text_pdf(["I cannot log in: my password is refused and the account is locked"])
    response = api(personas["operator"]).post(
        f"/api/workflows/{workflow.pk}/runs/",
        {"file": SimpleUploadedFile("posta.zip", zip_of({"scan.pdf": scanned, "typed.pdf": typed}))},
        format="multipart")
    assert response.status_code == 201, response.data
    run = Run.objects.get(pk=response.data["id"])
    assert OCR_PIN in run.resolved_models
    pool = workers(ARTIFACTS_DIR=str(settings.ARTIFACTS_DIR))
    pool.start()
    run = wait_for(run, pool, timeout=300)
    assert run.status == statuses.SUCCEEDED, pool.logs()
    by_file = {d.item.payload["file_name"]: d for d in Decision.objects.filter(run=run, node="src").select_related(
        "item")}
    assert "charged twice" in by_file["scan.pdf"].output["text"], by_file["scan.pdf"].output
    assert by_file["typed.pdf"].output == {}  # a text layer: nothing to read, the item went on as it came
    labels = {d.item.payload["file_name"]: d.label for d in Decision.objects.filter(run=run, node="cls")
              .select_related("item")}
    assert labels == {"scan.pdf": "billing", "typed.pdf": "account"}
    assert set(Original.objects.filter(run=run).values_list("sha256", flat=True)) == {
        hashlib.sha256(scanned).hexdigest(), hashlib.sha256(typed).hexdigest()}
