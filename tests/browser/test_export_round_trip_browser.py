"""An operator's round trip in a real browser: upload tickets whose first column is an id, see the
mapping pick the body for the text (never the id), run, download the results as Italian CSV and
XLSX, and join every row back to the file by its ticket id."""

from __future__ import annotations

import csv
import io

import pytest
from playwright.sync_api import expect

from tests.engine.helpers import drain, make_runnable_workflow
from workflows.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TICKETS = [
    ("T-1001", "Vorrei il rimborso della fattura 118: IBAN IT60X0542811101000000123456, grazie.", "it", "email"),
    ("T-1002", "My parcel never arrived, please check the tracking of order 55821.", "en", "web"),
    ("T-1003", "Non riesco ad accedere al portale clienti da ieri sera.", "it", "phone"),
    ("T-1004", "Please send the invoice again to billing@example.com.", "en", "email"),
]


def test_an_export_keeps_the_ticket_ids_so_results_join_back(page, login, personas, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    workflow = make_runnable_workflow(personas["designer"])  # upload(text, lang) → extract → route → table
    upload = tmp_path / "tickets.csv"
    with upload.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["ticket_id", "body", "language", "channel"])
        writer.writerows(TICKETS)
    login(personas["operator"])
    page.goto(f"/workflows/{workflow.pk}/run/")
    page.set_input_files("input[type=file]", str(upload))
    page.click("button[name=preview]")
    expect(page.locator("text=Column mapping")).to_be_visible(timeout=30_000)
    # The first column is an id: the text is the body, guessed by name and content.
    expect(page.locator("select[name=map_text]")).to_have_value("body")
    expect(page.locator("select[name=map_lang]")).to_have_value("language")
    page.click("button.primary")
    page.wait_for_url(lambda url: "/runs/" in url, timeout=60_000)
    drain()
    run = Run.objects.get()
    assert run.items_total == len(TICKETS)
    page.goto(f"/runs/{run.pk}/")

    with page.expect_download() as download:
        page.click("a:text('CSV (;)')")
    raw = download.value.path().read_bytes()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")), delimiter=";"))
    by_id = {r["ticket_id"]: r for r in rows}
    assert set(by_id) == {t[0] for t in TICKETS}  # every ticket, by the id no node reads
    for ticket_id, body, _language, channel in TICKETS:
        assert by_id[ticket_id]["text"] == body and by_id[ticket_id]["channel"] == channel
    assert by_id["T-1001"]["fields.iban"] == "IT60X0542811101000000123456"
    assert by_id["T-1004"]["fields.email"] == "billing@example.com"

    from openpyxl import load_workbook

    with page.expect_download() as download:
        page.click("a:text('XLSX')")
    assert download.value.suggested_filename == f"run-{run.pk}.xlsx"
    sheet = load_workbook(io.BytesIO(download.value.path().read_bytes()), read_only=True).active
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = values[0]
    assert sorted(r[header.index("ticket_id")] for r in values[1:]) == sorted(t[0] for t in TICKETS)
