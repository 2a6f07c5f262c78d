"""The audit log is append-only and kept for good, so no document's data may enter it: the main flows
run with an e-mail address, a codice fiscale and a name planted in documents, corrections, data sets
and labelled sets, and no audit entry may hold any of them."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.engine.helpers import drain, make_runnable_workflow
from tests.governance.conftest import keyword_models  # noqa: F401  (the fixture: keyword classifiers)
from tests.governance.test_review_corrections import drafted_line
from tests.governance.test_review_spot_checks import finished_run_with_spot_checks
from workflows.models import AuditEntry, Label, ReviewTask

pytestmark = pytest.mark.django_db

EMAIL = "giulia.verdi@example.it"
TAX_CODE = "VRDGLI85M41F205X"
NAME = "Giulia Verdi"
PLANTED = (EMAIL, TAX_CODE.lower(), NAME.lower())


def leaked() -> list[str]:
    found = []
    for entry in AuditEntry.objects.order_by("id"):
        text = json.dumps([entry.data, entry.object_id, entry.object_type], ensure_ascii=False).lower()
        found += [f"{entry.action}: {p}" for p in PLANTED if p in text]
    return found


@pytest.mark.usefixtures("keyword_models")
def test_no_audit_entry_holds_a_documents_personal_data(personas, api):
    document = f"Sono {NAME}, codice fiscale {TAX_CODE}, scrivetemi a {EMAIL}."
    # A run started with personal data in its items, run to the end.
    workflow = make_runnable_workflow(personas["designer"])
    started = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/",
                                             {"items": [{"text": document, "lang": "it"}]}, format="json")
    assert started.status_code == 201, started.data
    drain()
    # A review decision that corrects fields and texts with the person's data, and a note about them.
    _, _, task = drafted_line(personas["designer"])
    decided = api(personas["operator"]).post(f"/api/reviews/{task.pk}/decide/", {
        "label": "billing", "fields": {"email": [EMAIL]}, "answer": f"Gentile {NAME}, rimborsato.",
        "note": f"chiamare {NAME} al {TAX_CODE}"}, format="json")
    assert decided.status_code == 200, decided.data
    assert Label.objects.filter(label=EMAIL).exists()  # the correction is kept where erasure reaches it
    # A spot check decided with a correction.
    _, spot_tasks = finished_run_with_spot_checks(personas)
    spot = next(iter(spot_tasks.values()))
    checked = api(personas["operator"]).post(f"/api/review/{spot.pk}/label/",
                                             {"label": "billing", "note": f"ne parla {NAME}"}, format="json")
    assert checked.status_code in (200, 201), checked.data
    assert ReviewTask.objects.get(pk=spot.pk).status == ReviewTask.DECIDED
    # A data set and a labelled set holding the person's rows, in files named after them.
    rows = f'text,lang\n"{document}",it\naltro,it\n'.encode()
    stored = api(personas["operator"]).post("/api/datasets/", {
        "name": "clienti", "file": SimpleUploadedFile(f"{NAME}.csv", rows)}, format="multipart")
    assert stored.status_code in (200, 201), stored.data
    labelled = f'text,label\n"{document}",billing\nerrore,technical\naltro,billing\n'.encode()
    uploaded = api(personas["trainer"]).post("/api/labelled-sets/", {
        "file": SimpleUploadedFile(f"{NAME}.csv", labelled), "name": "valutazione"}, format="multipart")
    assert uploaded.status_code in (200, 201), uploaded.data
    # An erasure of the person, searched and confirmed.
    admin = api(personas["admin"])
    found = admin.post("/api/erasure/", {"identifier": EMAIL}, format="json")
    assert found.data["total"] > 0
    erased = admin.post("/api/erasure/confirm/", {"token": found.data["token"], "identifier": EMAIL}, format="json")
    assert erased.status_code == 200, erased.data

    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"run.start", "review.decide", "review.spot_check", "dataset.store", "labelled_set.create",
            "erasure.search", "erasure.erase"} <= actions
    assert leaked() == []


def test_a_review_decisions_entry_keeps_what_was_decided_without_the_values(personas, api):
    _, _, task = drafted_line(personas["designer"])
    api(personas["operator"]).post(f"/api/reviews/{task.pk}/decide/", {
        "label": "billing", "fields": {"email": [EMAIL]}, "answer": "Fatto.", "note": "ok"}, format="json")
    entry = AuditEntry.objects.get(action="review.decide")
    assert entry.data["result"] == {"label": "billing", "corrected": True, "changed": ["fields.email", "answer"],
                                    "note": True}
