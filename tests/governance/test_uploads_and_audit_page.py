"""The malicious-model corpus through the upload page and the API; labelled sets; the audit page."""

from __future__ import annotations

import html
import io
import pickle
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.governance.test_importer import external, tiny_model
from tests.test_audit import _tamper
from workflows.models import AuditEntry, LabelledSet, ModelVersion, StoredBlob, blobs
from workflows.models.audit import record

pytestmark = pytest.mark.django_db

CORPUS = {
    "custom domain": (tiny_model(domain="evil.ops", op="Backdoor", opset_domains=("", "evil.ops")).SerializeToString(),
                      "non-standard operator domain 'evil.ops'"),
    "../ external data": (external("../../etc/passwd"), "outside the model bundle"),
    "pickle renamed .onnx": (pickle.dumps({"weights": [1, 2, 3]}), "Python pickle"),
    "torch zip": (None, "zip archive"),
}


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("archive/data.pkl", b"\x80\x04K\x01.")
    return buffer.getvalue()


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_each_malicious_model_is_refused_with_its_reason_on_the_page_and_the_api(personas, client, api, settings,
                                                                                 tmp_path, case):
    settings.ARTIFACTS_DIR = tmp_path
    data, reason = CORPUS[case]
    data = data if data is not None else _zip()
    client.force_login(personas["trainer"])
    response = client.post("/models/import/", {"file": SimpleUploadedFile("model.onnx", data), "name": "evil",
                                               "kind": "classifier", "labels": "a,b"}, follow=True)
    assert reason in html.unescape(response.content.decode())
    answer = api(personas["trainer"]).post("/api/models/import/",
                                           {"file": SimpleUploadedFile("model.onnx", data), "name": "evil",
                                            "kind": "classifier", "labels": "a,b"}, format="multipart")
    assert answer.status_code == 400 and answer.data["refused"] and reason in " ".join(answer.data["reasons"])
    assert not ModelVersion.objects.exists() and not StoredBlob.objects.exists()
    assert AuditEntry.objects.filter(action="model.import.refused", actor=personas["trainer"]).count() == 2


def test_a_clean_model_is_imported_as_an_immutable_version(personas, api, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path
    data = tiny_model().SerializeToString()
    answer = api(personas["trainer"]).post("/api/models/import/",
                                           {"file": SimpleUploadedFile("m.onnx", data), "name": "adder",
                                            "kind": "embedder"}, format="multipart")
    assert answer.status_code == 201 and answer.data["version"]["source"] == "imported"
    version = ModelVersion.objects.get()
    assert (version.author == personas["trainer"]
            and blobs.read_bytes(version.sha256) == data)
    assert api(personas["operator"]).post("/api/models/import/",
                                          {"file": SimpleUploadedFile("m.onnx", data), "name": "x"},
                                          format="multipart").status_code == 403


def test_labelled_sets_from_csv_and_xlsx_keep_segments(personas, client):
    from openpyxl import Workbook

    client.force_login(personas["trainer"])
    csv = (b"text;label;language\nMy invoice is wrong;billing;en\nLa fattura \xc3\xa8 sbagliata;billing;it\n"
           b"App crashes;technical;en\n")
    client.post("/models/labelled-sets/", {"file": SimpleUploadedFile("tickets.csv", csv), "name": "Tickets EN IT"})
    labelled = LabelledSet.objects.get(name="tickets-en-it")
    assert labelled.labels == ["billing", "technical"] and labelled.items[1] == {
        "text": "La fattura è sbagliata", "label": "billing", "segment": {"language": "it"}}
    book = Workbook()
    book.active.append(["Text", "Label", "Channel"])
    book.active.append(["hello", "account", "email"])
    book.active.append(["crash", "technical", "phone"])
    buffer = io.BytesIO()
    book.save(buffer)
    client.post("/models/labelled-sets/", {"file": SimpleUploadedFile("x.xlsx", buffer.getvalue()), "name": "xl"})
    assert LabelledSet.objects.get(name="xl").items[1]["segment"] == {"channel": "phone"}
    response = client.post("/models/labelled-sets/",
                           {"file": SimpleUploadedFile("bad.csv", b"text,label\nonly,one\n,x\n"), "name": "bad"},
                           follow=True)
    assert "Row 3: text is empty." in response.content.decode() and not LabelledSet.objects.filter(name="bad").exists()


def test_the_audit_page_verifies_the_chain_and_shows_the_first_broken_link(personas, client):
    record("a", actor=personas["admin"])
    victim = record("promotion.approve", actor=personas["validator"], version="tickets:v2")
    record("c", actor=personas["admin"])
    client.force_login(personas["validator"])
    page = client.post("/audit/verify/").content.decode()
    assert "Chain intact" in page
    _tamper("UPDATE workflows_auditentry SET data = %s WHERE id = %s", ['{"version": "tickets:v9"}', victim.pk])
    page = client.post("/audit/verify/").content.decode()
    assert f"Chain broken at entry <b>#{victim.pk}</b>" in page and "altered" in page
    filtered = client.get("/audit/?action=promotion").content.decode()
    assert "tickets:v9" in filtered and "audit.verify" not in filtered
    client.force_login(personas["operator"])
    assert client.post("/audit/verify/").status_code == 403
