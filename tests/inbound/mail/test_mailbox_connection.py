"""'Test connection' against the real IMAP server: it says which step failed (DNS, connection, TLS,
login, folder) in words that say what to fix, reads nothing, and is audited."""

from __future__ import annotations

import pytest

from tests.inbound.mail.imap_server import free_port
from tests.inbound.mail.mail_helpers import mail_workflow, make_mailbox, message
from workflows.inbound import mailbox_setup
from workflows.models import AuditEntry, Mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def workflow(personas):
    return mail_workflow(personas["designer"])


def check(workflow, user, trusted, account, **values):
    fields = {"host": "localhost", "port": trusted.imaps_port, "security": "imaps", "username": account[0],
              "folder": "INBOX", "processed_folder": "", "poll_seconds": 60, "enabled": True}
    password = values.pop("password", account[1])
    return mailbox_setup.check_connection(workflow, user=user, values={**fields, **values}, password=password)


def test_a_working_mailbox_says_how_many_messages_wait_and_flags_none(workflow, personas, trusted, account):
    trusted.deliver(*account, message("In attesa"))
    outcome = check(workflow, personas["designer"], trusted, account)
    assert outcome.ok and outcome.unseen == 1, outcome
    assert outcome.message == "Connected, logged in and opened 'INBOX': 1 unseen messages waiting."
    assert "\\Seen" not in trusted.flags(*account)[0]
    entry = AuditEntry.objects.filter(action="mailbox.test").last()
    assert entry.data["ok"] is True and account[1] not in str(entry.data)


def test_starttls_works_on_the_plain_port(workflow, personas, trusted, account):
    assert check(workflow, personas["designer"], trusted, account, security="starttls", port=trusted.imap_port).ok


@pytest.mark.parametrize("values, stage, said", [
    ({"host": "no-such-host.invalid"}, "dns", "could not be found (DNS)"),
    ({"port": "closed"}, "connect", "Could not connect to localhost on port"),
    ({"port": "plain"}, "tls", "The TLS connection to localhost failed"),
    ({"password": "sbagliata"}, "login", "refused the username or the password: [AUTHENTICATIONFAILED]"),
    ({"folder": "Non esiste"}, "folder", "The folder 'Non esiste' cannot be opened"),
    ({"processed_folder": "Lette"}, "processed_folder", "Create it on the mail server"),
])
def test_each_failing_step_is_named(workflow, personas, trusted, account, values, stage, said):
    if values.get("port") == "closed":
        values["port"] = free_port()
    elif values.get("port") == "plain":
        values["port"] = trusted.imap_port  # IMAPS spoken to the plain-text port
    outcome = check(workflow, personas["designer"], trusted, account, **values)
    assert (outcome.ok, outcome.stage) == (False, stage), outcome
    assert said in outcome.message, outcome.message


def test_an_untrusted_certificate_is_refused_with_the_reason(workflow, personas, trusted, account, settings):
    settings.MAILBOX_CA_FILE = ""  # the test server's self-signed certificate is then trusted by no one
    outcome = check(workflow, personas["designer"], trusted, account)
    assert outcome.stage == "tls" and "the server's certificate is not trusted" in outcome.message, outcome.message


def test_starttls_is_required_before_the_password_is_sent(workflow, personas, trusted, account):
    # Spoken to the IMAPS port, a STARTTLS client waits for a greeting that never comes in clear text.
    outcome = check(workflow, personas["designer"], trusted, account, security="starttls", port=trusted.imaps_port)
    assert outcome.stage == "timeout" and "IMAPS is usually on port 993" in outcome.message


def test_testing_the_saved_mailbox_keeps_the_outcome_on_it(workflow, personas, trusted, account):
    box = make_mailbox(workflow, personas["designer"], trusted, account, password="sbagliata")
    outcome = mailbox_setup.check_connection(workflow, user=personas["designer"], mailbox=box)
    assert outcome.stage == "login"
    box = Mailbox.objects.get(pk=box.pk)
    assert box.last_error_code == "login" and "Authentication failed" in mailbox_setup.last_error_text(box)
    # With the right password typed on the page, the stored one is not needed.
    typed = mailbox_setup.check_connection(workflow, user=personas["designer"], mailbox=box,
                                           values={"host": "localhost"}, password=account[1])
    assert typed.ok
