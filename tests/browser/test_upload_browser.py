"""A large upload in a real browser: the progress bar follows the bytes, the preview comes back in
place, and "Start the run" uses the file kept on the server (no second upload)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import shot
from tests.engine.helpers import make_runnable_workflow
from workflows.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ROWS = 60_000  # ≈ 6 MB: enough for several progress events


def test_a_large_upload_shows_its_progress_and_is_sent_once(page, login, personas, tmp_path, settings):
    settings.VAR_DIR = tmp_path
    workflow = make_runnable_workflow(personas["designer"])
    upload = tmp_path / "tickets.csv"
    upload.write_text("text,lang\n" + "".join(f"Please refund invoice {i} to mario.rossi{i}@example.it "
                                              "— grazie mille!,it\n"
                                              for i in range(ROWS)))
    login(personas["operator"])
    page.goto(f"/workflows/{workflow.pk}/run/")
    page.evaluate("""() => {
        window.__uploads = [];
        // Runs after upload.js's own listener: what the person sees at each progress event.
        document.addEventListener('htmx:xhr:progress', (e) => window.__uploads.push([e.detail.loaded, e.detail.total,
            document.querySelector('.upload-progress progress').value,
            document.querySelector('.upload-status').textContent]));
        document.addEventListener('htmx:beforeRequest', (e) => window.__uploads.push(['request']));
    }""")
    page.set_input_files("input[type=file]", str(upload))
    page.click("button[name=preview]")
    expect(page.locator("text=Column mapping")).to_be_visible(timeout=60_000)
    expect(page.locator(".staged")).to_contain_text("tickets.csv")
    expect(page.locator("table.table tbody tr")).to_have_count(10)
    events = page.evaluate("window.__uploads")
    uploads = [e for e in events if e[0] != "request" and e[1] >= upload.stat().st_size]  # not the response's download
    assert uploads and uploads[-1][0] == uploads[-1][1], events[:5]
    assert uploads[-1][2] == 100 and "checking every row" in uploads[-1][3]
    assert all(e[2] == round(100 * e[0] / e[1]) and "MB" in e[3] for e in uploads)
    shot(page, "upload-preview")

    # The swapped-in form is the new one: starting sends no file, only the kept file's token.
    page.evaluate("window.__uploads = []")
    page.click("button.primary")
    page.wait_for_url(lambda url: "/runs/" in url, timeout=120_000)
    sent = [e for e in page.evaluate("window.__uploads || []") if e[0] != "request"]
    assert all(total < 100_000 for _, total in sent), sent
    run = Run.objects.get()
    assert run.items_total == ROWS and run.input_name == "tickets.csv"


def test_a_bad_file_shows_its_error_in_place(page, login, personas, tmp_path):
    workflow = make_runnable_workflow(personas["designer"])
    bad = tmp_path / "bad.csv"
    bad.write_text("text,lang\nfine,it\n,en\n")
    login(personas["operator"])
    page.goto(f"/workflows/{workflow.pk}/run/")
    page.set_input_files("input[type=file]", str(bad))
    page.click("button.primary")
    expect(page.locator("[role=alert]")).to_contain_text("Rows at fault")
    assert "/run/" in page.url and Run.objects.count() == 0
    expect(page.locator("button.primary")).to_be_enabled()


def test_a_data_set_upload_shows_progress_and_lands_in_the_list(page, login, personas, tmp_path):
    from workflows.models.datasets import Dataset

    data = tmp_path / "weekly.jsonl"
    data.write_text("".join(f'{{"text": "Ticket {i}: the router drops the line every evening", "lang": "en"}}\n'
                            for i in range(30_000)))
    login(personas["operator"])
    page.goto("/datasets/")
    page.evaluate("""() => {
        window.__uploads = [];
        document.addEventListener('htmx:xhr:progress', (e) => window.__uploads.push([e.detail.loaded, e.detail.total,
            document.querySelector('.upload-progress progress').value]));
    }""")
    page.fill("input[name=name]", "weekly-tickets")
    page.set_input_files("input[type=file]", str(data))
    page.click("button.primary")
    expect(page.locator("table.table").first).to_contain_text("weekly-tickets", timeout=60_000)
    assert Dataset.objects.get(name="weekly-tickets").rows == 30_000
    # The list was reached by a real navigation (HX-Redirect), so the progress log of the old page is gone.
    assert page.evaluate("window.__uploads === undefined")
