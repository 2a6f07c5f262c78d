"""Mailboxes polled against a real IMAP server (dovecot, tests/inbound/mail/imap_server.py): messages become
items once, crashes between reading and flagging take nothing twice, poison is dead-lettered once, and
what went wrong is kept on the mailbox in words that say what to fix."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.documents.files import text_pdf
from tests.inbound.mail.mail_helpers import mail_workflow, make_mailbox, message
from workflows.inbound import mailbox_setup, mailboxes
from workflows.inbound.imap import Session
from workflows.models import Item, Mailbox, MailboxMessage, Run

pytestmark = pytest.mark.django_db


class SimulatedCrash(BaseException):
    """What a SIGKILL does to a poll: nothing after it runs, no handler sees it."""


@pytest.fixture
def store(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"


@pytest.fixture
def box(personas, trusted, account, store):
    workflow = mail_workflow(personas["designer"])
    return make_mailbox(workflow, personas["designer"], trusted, account)


def items_of(box) -> list[dict]:
    return [i.payload for i in Item.objects.filter(run__workflow=box.workflow).order_by("seq")]


def deliver(dovecot, account, raw: bytes, folder: str = "INBOX") -> None:
    dovecot.deliver(*account, raw, folder)


def test_messages_become_items_with_subject_sender_date_body_and_attachments(box, trusted, account):
    deliver(trusted, account, message("Fattura 118", "Importo 1.234,56 EUR\nscrivere a amministrazione@example.it"))
    deliver(trusted, account, message("Solo HTML", None, html="<html><head><style>p{color:red}</style>"
                                      "<script>alert(1)</script></head><body><p>Buongiorno,</p><p>pagamento di "
                                      "<b>99,00&nbsp;EUR</b> &amp; saluti</p></body></html>"))
    pdf = text_pdf(["Fattura 7 del 01/02/2025: importo 250,00 EUR"])
    deliver(trusted, account, message("Con allegati", "Vedi allegati.", attachments=[
        ("fattura 7.pdf", "application/pdf", pdf), ("note.docx", "application/octet-stream", b"PK\x03\x04 docx")]))

    result = mailboxes.poll(box)

    assert (result.taken, result.dead, result.error_code) == (3, 0, ""), result
    items = items_of(box)
    first, html_only, with_files, from_pdf = items
    assert first["subject"] == "Fattura 118"
    assert first["sender"] == "Mario Rossi <mario.rossi@example.it>"
    assert first["date"] == "2025-03-12T09:30:00+00:00"
    assert "amministrazione@example.it" in first["text"] and first["message_id"].endswith("@example.it>")
    assert html_only["text"] == "Buongiorno,\n\npagamento di 99,00 EUR & saluti"
    assert "alert" not in html_only["text"] and "color" not in html_only["text"]
    assert with_files["text"] == "Vedi allegati." and with_files["attachments"] == ["fattura 7.pdf", "note.docx"]
    assert from_pdf["file_name"] == "fattura 7.pdf" and "250,00 EUR" in from_pdf["text"]
    assert from_pdf["subject"] == "Con allegati" and from_pdf["sender"] == first["sender"]
    taken = MailboxMessage.objects.get(mailbox=box, subject="Con allegati")
    assert taken.status == MailboxMessage.TAKEN and len(taken.item_ids) == 2
    run = Run.objects.get(workflow=box.workflow)
    assert run.origin == "mailbox" and run.is_live and run.source_node == "mail"
    assert all("\\Seen" in flags for flags in trusted.flags(*account)), trusted.flags(*account)
    box.refresh_from_db()
    assert box.last_poll_at and not box.last_error_code and box.polling_until is None


def test_a_second_poll_takes_nothing_twice_and_then_only_what_is_new(box, trusted, account):
    deliver(trusted, account, message("Uno"))
    assert mailboxes.poll(box).taken == 1
    assert mailboxes.poll(box).taken == 0
    deliver(trusted, account, message("Due"))
    assert mailboxes.poll(box).taken == 1
    assert [i["subject"] for i in items_of(box)] == ["Uno", "Due"]


def test_the_same_message_delivered_twice_is_taken_once(box, trusted, account):
    raw = message("Inoltrata due volte", message_id="<stessa@example.it>")
    deliver(trusted, account, raw)
    deliver(trusted, account, raw)
    result = mailboxes.poll(box)
    assert (result.taken, result.flagged) == (1, 1)
    assert len(items_of(box)) == 1 and MailboxMessage.objects.filter(mailbox=box).count() == 1


def test_a_crash_after_the_items_commit_and_before_the_flag_takes_nothing_twice(box, trusted, account, monkeypatch):
    deliver(trusted, account, message("Crash dopo il commit"))

    def crash(self, uid):
        raise SimulatedCrash

    monkeypatch.setattr(Session, "mark", crash)
    with pytest.raises(SimulatedCrash):
        mailboxes.poll(box)
    assert len(items_of(box)) == 1
    assert "\\Seen" not in trusted.flags(*account)[0]  # the server still shows it unread
    monkeypatch.undo()

    result = mailboxes.poll(Mailbox.objects.get(pk=box.pk))

    assert (result.taken, result.flagged) == (0, 1)
    assert len(items_of(box)) == 1
    assert "\\Seen" in trusted.flags(*account)[0]


def test_a_crash_before_the_items_commit_takes_the_message_at_the_next_poll(box, trusted, account, monkeypatch):
    deliver(trusted, account, message("Crash prima del commit"))
    real = mailboxes.launch.append_to_live_run

    def crash(workflow, items, **kwargs):
        if items:
            raise SimulatedCrash
        return real(workflow, items, **kwargs)

    monkeypatch.setattr(mailboxes.launch, "append_to_live_run", crash)
    with pytest.raises(SimulatedCrash):
        mailboxes.poll(box)
    assert items_of(box) == []
    row = MailboxMessage.objects.get(mailbox=box)
    assert (row.status, row.attempts) == (MailboxMessage.PENDING, 1)
    monkeypatch.undo()

    assert mailboxes.poll(box).taken == 1
    assert [i["subject"] for i in items_of(box)] == ["Crash prima del commit"]


def test_a_message_that_keeps_killing_its_reader_is_dead_lettered_once(box, trusted, account, monkeypatch):
    deliver(trusted, account, message("Veleno"))
    monkeypatch.setattr(mailboxes, "parse_message", lambda *a, **k: (_ for _ in ()).throw(SimulatedCrash()))
    for _ in range(mailboxes.MAX_ATTEMPTS):
        with pytest.raises(SimulatedCrash):
            mailboxes.poll(box)
    result = mailboxes.poll(box)
    assert result.dead == 1
    row = MailboxMessage.objects.get(mailbox=box)
    assert row.status == MailboxMessage.DEAD and row.reason_code == "crashed"
    assert "3 times" in mailbox_setup.reason_text(row)
    assert mailboxes.poll(box).dead == 0 and items_of(box) == []


def test_poison_messages_are_dead_lettered_once_with_their_reason(box, trusted, account, settings):
    settings.MAILBOX_MAX_MESSAGE_BYTES = 40_000
    settings.MAILBOX_MAX_ATTACHMENTS = 2
    settings.MAILBOX_MAX_ATTACHMENT_BYTES = 10_000
    deliver(trusted, account, message("Enorme", "x" * 50_000))
    deliver(trusted, account, message("Troppi allegati", "ciao", attachments=[
        (f"a{i}.txt", "text/plain", b"a") for i in range(3)]))
    deliver(trusted, account, message("Allegato grande", "ciao", attachments=[
        ("grande.bin", "application/octet-stream", b"\0" * 20_000)]))
    deliver(trusted, account, b"\r\n\r\nnessuna intestazione\r\n")
    deliver(trusted, account, message("Buona", "questa passa"))

    result = mailboxes.poll(box)

    assert (result.taken, result.dead) == (1, 4)
    reasons = {row.subject: (row.reason_code, mailbox_setup.reason_text(row))
               for row in MailboxMessage.objects.filter(mailbox=box, status=MailboxMessage.DEAD)}
    assert reasons["Enorme"][0] == "too_large" and "the limit is 39.1\xa0KB" in reasons["Enorme"][1]
    assert reasons["Troppi allegati"] == ("too_many_attachments", "The message has more than 2 attachments.")
    assert reasons["Allegato grande"][0] == "attachment_too_large" and "'grande.bin'" in reasons["Allegato grande"][1]
    assert reasons[""][0] == "unparseable"
    assert [i["subject"] for i in items_of(box)] == ["Buona"]
    assert all("\\Seen" in flags for flags in trusted.flags(*account))

    again = mailboxes.poll(box)
    assert (again.taken, again.dead) == (0, 0)
    assert MailboxMessage.objects.filter(mailbox=box, status=MailboxMessage.DEAD).count() == 4


def test_an_unreadable_pdf_attachment_dead_letters_its_message(box, trusted, account):
    deliver(trusted, account, message("PDF rotto", "vedi allegato", attachments=[
        ("rotto.pdf", "application/pdf", b"%PDF-1.7 this is not a pdf")]))
    assert mailboxes.poll(box).dead == 1
    row = MailboxMessage.objects.get(mailbox=box)
    assert row.reason_code == "attachment_unreadable" and "rotto.pdf" in mailbox_setup.reason_text(row)
    assert items_of(box) == []


def test_taken_messages_move_to_the_folder_for_taken_messages(personas, trusted, account, store):
    trusted.create_folder(*account, "Lette")
    workflow = mail_workflow(personas["designer"])
    box = make_mailbox(workflow, personas["designer"], trusted, account, processed_folder="Lette")
    deliver(trusted, account, message("Da spostare"))
    assert mailboxes.poll(box).taken == 1
    assert trusted.count(*account, "INBOX") == 0 and trusted.count(*account, "Lette") == 1


def test_a_folder_with_spaces_and_accents_is_read_over_starttls(personas, trusted, account, store):
    from workflows.inbound.imap import quote_folder

    imap = trusted.client(*account)
    imap.create(quote_folder("Fatture è arrivate"))
    imap.logout()
    workflow = mail_workflow(personas["designer"])
    box = make_mailbox(workflow, personas["designer"], trusted, account, folder="Fatture è arrivate",
                       security="starttls", port=trusted.imap_port)
    trusted.deliver(*account, message("Nella cartella"), quote_folder("Fatture è arrivate"))
    assert mailboxes.poll(box).taken == 1
    assert items_of(box)[0]["subject"] == "Nella cartella"


def test_a_wrong_password_is_shown_on_the_mailbox(personas, trusted, account, store):
    workflow = mail_workflow(personas["designer"])
    box = make_mailbox(workflow, personas["designer"], trusted, account, password="sbagliata")
    result = mailboxes.poll(box)
    box.refresh_from_db()
    assert result.error_code == "login" == box.last_error_code
    text = mailbox_setup.last_error_text(box)
    assert text.startswith("The mail server refused the username or the password:"), text
    assert "Authentication failed" in text


def test_a_workflow_without_a_mailbox_source_says_so_and_reads_nothing(personas, trusted, account, store):
    from tests.engine.helpers import make_runnable_workflow

    workflow = make_runnable_workflow(personas["designer"])  # an upload source only
    box = make_mailbox(workflow, personas["designer"], trusted, account)
    deliver(trusted, account, message("Aspetta"))
    result = mailboxes.poll(box)
    assert result.error_code == "workflow" and "source.mailbox" in result.error
    assert MailboxMessage.objects.count() == 0 and "\\Seen" not in trusted.flags(*account)[0]


def test_n_workers_claim_a_due_mailbox_once(box):
    now = timezone.now()
    assert mailboxes.due(now) == [box.pk]
    assert mailboxes.claim(box.pk, now) is not None
    assert mailboxes.claim(box.pk, now) is None  # the second worker
    assert mailboxes.due(now) == []
    # After the poll interval it is due again, but not while a poll holds its lease.
    later = now + dt.timedelta(seconds=box.poll_seconds + 1)
    assert mailboxes.due(later) == []
    Mailbox.objects.filter(pk=box.pk).update(polling_until=None)
    assert mailboxes.due(later) == [box.pk]


def test_the_monitor_duty_polls_due_mailboxes_and_disabled_ones_never(box, trusted, account):
    deliver(trusted, account, message("Dal monitor"))
    assert mailboxes.tick()["mail_taken"] == 1
    assert mailboxes.tick()["mailboxes_polled"] == 0  # not due again before its interval
    Mailbox.objects.filter(pk=box.pk).update(enabled=False, next_poll_at=None)
    assert mailboxes.tick()["mailboxes_polled"] == 0
    Mailbox.objects.filter(pk=box.pk).update(enabled=True)
    type(box.workflow).objects.filter(pk=box.workflow_id).update(archived=True)  # nor those of archived workflows
    assert mailboxes.tick()["mailboxes_polled"] == 0


def test_the_stored_password_is_not_readable_in_the_database(box, account):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT password_encrypted FROM workflows_mailbox WHERE id = %s", [box.pk])
        stored = cursor.fetchone()[0]
    assert stored != account[1] and account[1] not in stored
    assert mailboxes.account_of(box).password == account[1]
