"""Builders for the mailbox tests: a workflow with a Mailbox source, messages as a mail client writes
them, a mailbox account of its own on the test dovecot for each test."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import pytest

from tests.builders import edge, node
from tests.engine.helpers import make_runnable_workflow
from workflows.inbound import mailbox_setup

_numbers = itertools.count(1)


def mail_graph() -> dict[str, Any]:
    return {"nodes": [node("mail", "source.mailbox"),
                      node("ext", "extract", patterns=["email", "iban", "amount"], entities=[]),
                      node("out", "sink.table")],
            "edges": [edge("mail", "ext"), edge("ext", "out")]}


def mail_workflow(user: Any, name: str = "Posta fornitori"):
    return make_runnable_workflow(user, mail_graph(), name=name)


def message(subject: str = "Fattura 118", body: str | None = "Importo 1.234,56 EUR, IBAN IT60X0542811101000000123456",
            *, html: str | None = None, sender: str = "Mario Rossi <mario.rossi@example.it>",
            message_id: str | None = "", attachments: list[tuple[str, str, bytes]] = ()) -> bytes:
    """A message as a mail client sends it; message_id "" makes a fresh one, None leaves it out."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = "fatture@example.it"
    mail["Subject"] = subject
    mail["Date"] = format_datetime(dt.datetime(2025, 3, 12, 9, 30, tzinfo=dt.UTC))
    if message_id is not None:
        mail["Message-ID"] = message_id or make_msgid(domain="example.it")
    if body is not None:
        mail.set_content(body)
    if html is not None:
        if body is None:
            mail.set_content(html, subtype="html")
        else:
            mail.add_alternative(html, subtype="html")
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return mail.as_bytes()


@pytest.fixture
def trusted(settings, dovecot):
    """The test server's certificate trusted (as MAILBOX_CA_FILE does for a firm's own CA)."""
    settings.MAILBOX_CA_FILE = str(dovecot.ca_file)
    settings.MAILBOX_TIMEOUT_SECONDS = 5
    return dovecot


@pytest.fixture
def account(dovecot) -> tuple[str, str]:
    """A mail user of its own on the test server: (username, password)."""
    user, password = f"fatture{next(_numbers)}-{uuid.uuid4().hex[:6]}", f"pw-{uuid.uuid4().hex}"
    dovecot.add_user(user, password)
    return user, password


def make_mailbox(workflow: Any, user: Any, dovecot: Any, account: tuple[str, str], **values: Any):
    fields = {"host": "localhost", "port": dovecot.imaps_port, "security": "imaps", "username": account[0],
              "folder": "INBOX", "processed_folder": "", "poll_seconds": 60, "enabled": True}
    password = values.pop("password", account[1])
    fields.update(values)
    return mailbox_setup.save_mailbox(workflow, fields, user=user, password=password)
