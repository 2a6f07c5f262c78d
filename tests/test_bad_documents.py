"""The documents of the bad-input corpus (tests/data/bad/, README.md: "Documents") through the run
upload API and page: each bad file gets a 400 naming the file and what is wrong with it, and nothing is
written — no run, no item, no original in the store."""

from __future__ import annotations

import re

import pytest

from tests.builders import edge, node
from tests.engine.helpers import make_runnable_workflow
from tests.test_bad_corpus import Case, assert_accepted, logged_in, page_text, state_of_the_world, upload
from workflows.models import Original, Run

pytestmark = pytest.mark.django_db

DOCUMENTS = [
    Case("text_layer.pdf", items=1, first=(("text", "Fattura 118 del 12/03/2025, importo 99,00 EUR"),
                                           ("file_name", "text_layer.pdf"))),
    Case("encrypted.pdf", "'encrypted.pdf' is protected by a password. Remove the password"),
    Case("not_a_pdf.pdf", r"'not_a_pdf.pdf' is not a PDF: it does not start like one"),
    Case("damaged.pdf", r"'damaged.pdf' is not a readable PDF \(PdfStreamError"),
    Case("empty.pdf", "The file is empty"),
    Case("page_count_bomb.pdf", "With 'page_count_bomb.pdf' the upload has more than 2000 pages"),
    Case("understated_pages.pdf", "With 'understated_pages.pdf' the upload has more than 2000 pages"),
    Case("object_stream_bomb.pdf", r"'object_stream_bomb.pdf' is not a readable PDF \(PdfReadError: Invalid offset"),
    Case("deep_nesting.pdf", r"'deep_nesting.pdf' is built to exhaust a reader \(objects nested too deeply\): "
                             "refused as a possible PDF bomb"),
    Case("inflation_bomb.pdf", r"'inflation_bomb.pdf' is built to exhaust a reader \(LimitReachedError.*PDF bomb"),
    Case("image_bomb.png", "'image_bomb.png' declares more pixels than an image can safely have .*decompression "
                           "bomb"),
    Case("too_many_pixels.png", "'too_many_pixels.png' \\(page 1\\) is 8000 × 6000 pixels, 48 megapixels; the "
                                "limit is 40"),
    Case("truncated.jpg", r"'truncated.jpg' is damaged at page 1 \(OSError: image file is truncated"),
    Case("not_an_image.png", "'not_an_image.png' is not an image that can be read: upload PNG, JPEG or TIFF"),
    Case("zip_bomb.zip", r"'scan.pdf' in 'zip_bomb.zip' inflates from 0.32 MB to 325 MB \(1028 times.*zip bomb"),
    Case("nested.zip", "'letters.zip' is a ZIP inside 'nested.zip': put every document in one ZIP"),
    Case("other_file_in_zip.zip", "'notes.docx' in 'other_file_in_zip.zip' is not a PDF, an image"),
    Case("encrypted_member.zip", "'a.pdf' in 'encrypted_member.zip' is encrypted"),
]


@pytest.fixture
def world(personas, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    graph = {"nodes": [node("src", "source.upload", fields=["text"]),
                       node("ext", "extract", patterns=["amount", "date"], entities=[]), node("out", "sink.table")],
             "edges": [edge("src", "ext"), edge("ext", "out")]}
    return {"workflow": make_runnable_workflow(personas["designer"], graph, name="Documents"),
            "artifacts": tmp_path / "artifacts", **personas}


def everything(world) -> dict:
    return {**state_of_the_world(world["artifacts"]), "Original": Original.objects.count()}


@pytest.mark.parametrize("case", DOCUMENTS, ids=str)
def test_run_upload_api(case, world, api):
    before = everything(world)
    response = api(world["operator"]).post(f"/api/workflows/{world['workflow'].pk}/runs/",
                                           {"file": upload(case.name)}, format="multipart")
    if case.error is None:
        assert response.status_code == 201, response.data
        run = Run.objects.get(pk=response.data["id"])
        assert_accepted(case, run)
        assert Original.objects.get(run=run).name == case.name
        return
    assert response.status_code == 400, response.data
    assert re.search(case.error, response.data["detail"]), response.data["detail"]
    assert response.data["imported"] == 0 and everything(world) == before


@pytest.mark.parametrize("case", DOCUMENTS, ids=str)
def test_run_upload_page(case, world, client):
    before = everything(world)
    response = logged_in(client, world["operator"]).post(f"/workflows/{world['workflow'].pk}/run/",
                                                         {"file": upload(case.name)})
    if case.error is None:
        assert response.status_code == 302, page_text(response)[:2000]
        assert_accepted(case, Run.objects.get())
        return
    assert response.status_code == 400
    text = page_text(response)
    assert re.search(case.error, text), text[:3000]
    assert everything(world) == before


@pytest.mark.parametrize("name", ["encrypted.pdf", "zip_bomb.zip", "image_bomb.png"])
def test_the_preview_refuses_them_too(name, world, api):
    response = api(world["operator"]).post(f"/api/workflows/{world['workflow'].pk}/runs/preview/",
                                           {"file": upload(name)}, format="multipart")
    assert response.status_code == 400 and f"'{name}'" in response.data["detail"]


@pytest.mark.parametrize("name", ["text_layer.pdf", "nested.zip"])
def test_data_sets_take_no_documents(name, world, api):
    response = api(world["operator"]).post("/api/datasets/", {"name": "weekly", "file": upload(name)},
                                           format="multipart")
    assert response.status_code == 400
    assert f"'{name}' is a document, not a CSV, JSONL or XLSX file: documents start runs, but here only data " \
           "files are taken" in response.data["detail"]
