"""End to end through real `run_worker` processes and the real IMAP server: two workers' monitors poll
the mailbox (once, by the claim), each message becomes an item that runs through the workflow, a PDF
attachment becomes an item of its own, and a second poll takes only what is new."""

from __future__ import annotations

import time

import pytest
from django.db.models import Count

from tests.documents.files import text_pdf
from tests.engine.test_worker import workers  # noqa: F401  (real run_worker processes)
from tests.inbound.mail.mail_helpers import mail_workflow, make_mailbox, message
from workflows.models import Decision, Item, Mailbox, MailboxMessage

pytestmark = [pytest.mark.worker, pytest.mark.slow]


def wait_until(check, pool, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise AssertionError(f"{what} after {timeout}s\n{pool.logs()}")


def test_workers_take_each_message_once_and_run_it_through_the_workflow(transactional_db, personas, workers,  # noqa: F811
                                                                        trusted, account, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    workflow = mail_workflow(personas["designer"])
    box = make_mailbox(workflow, personas["designer"], trusted, account, poll_seconds=600)
    trusted.deliver(*account, message("Fattura 1", "IBAN IT60X0542811101000000123456, importo 10,00 EUR"))
    trusted.deliver(*account, message("Fattura 2", "scrivere a amministrazione@example.it"))
    trusted.deliver(*account, message("Con PDF", "in allegato", attachments=[
        ("fattura 3.pdf", "application/pdf", text_pdf(["Fattura 3: importo 30,00 EUR"]))]))
    pool = workers(MAILBOX_CA_FILE=str(trusted.ca_file), MAILBOX_TIMEOUT_SECONDS="10",
                   ARTIFACTS_DIR=str(settings.ARTIFACTS_DIR))
    pool.start()
    pool.start()

    def done() -> int:
        return Item.objects.filter(run__workflow=workflow, status=Item.DONE).count()

    wait_until(lambda: done() == 4, pool, "4 items done (3 messages, 1 attachment)")
    by_subject = {d.item.payload.get("file_name") or d.item.payload["subject"]: d.output
                  for d in Decision.objects.filter(run__workflow=workflow, node="ext").select_related("item")}
    assert by_subject["Fattura 1"]["fields"]["iban"], by_subject
    assert [f["value"] for f in by_subject["Fattura 2"]["fields"]["email"]] == ["amministrazione@example.it"]
    assert [f["value"] for f in by_subject["fattura 3.pdf"]["fields"]["amount"]] == ["30,00 EUR"]

    trusted.deliver(*account, message("Fattura 4", "nuova"))
    Mailbox.objects.filter(pk=box.pk).update(next_poll_at=None)  # due now rather than in ten minutes
    wait_until(lambda: done() == 5, pool, "the new message done")
    time.sleep(2)  # a few more monitor ticks of both workers: nothing more may come

    assert Item.objects.filter(run__workflow=workflow).count() == 5
    assert MailboxMessage.objects.filter(mailbox=box, status=MailboxMessage.TAKEN).count() == 4
    dupes = (Decision.objects.filter(run__workflow=workflow).values("item", "node").annotate(n=Count("id"))
             .filter(n__gt=1).count())
    assert dupes == 0
    assert all("\\Seen" in flags for flags in trusted.flags(*account))
    assert Mailbox.objects.get(pk=box.pk).last_error_code == ""
