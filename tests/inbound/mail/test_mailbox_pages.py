"""Setting up a mailbox on its page and through the API: the password is stored encrypted and never
shown back, bad settings are refused with what to fix, every change is audited, and 'Test connection'
and the last poll say what failed. (Who may: tests/test_role_matrix.py, mailbox_rows.)"""

from __future__ import annotations

import html
import re

import pytest

from tests.inbound.mail.mail_helpers import mail_workflow, make_mailbox, message
from workflows.inbound import mailboxes, secrets
from workflows.models import AuditEntry, Mailbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def workflow(personas, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    return mail_workflow(personas["designer"])


def outcome_of(response) -> str:
    found = re.search(r'id="test-outcome"[^>]*>(.*?)</p>', response.content.decode(), re.S)
    return html.unescape(found.group(1)) if found else ""


def body(trusted, account, **extra):
    return {"host": "localhost", "port": trusted.imaps_port, "security": "imaps", "username": account[0],
            "password": account[1], "folder": "INBOX", "poll_seconds": 30, **extra}


def test_the_api_stores_the_password_encrypted_and_never_answers_it(api, personas, workflow, trusted, account):
    client = api(personas["designer"])
    url = f"/api/workflows/{workflow.pk}/mailbox/"
    assert client.get(url).status_code == 404

    refused = client.put(url, {**body(trusted, account), "password": ""}, format="json")
    assert refused.status_code == 400 and refused.data["password"] == ["Enter the mailbox's password."]
    assert not Mailbox.objects.exists()

    created = client.put(url, body(trusted, account), format="json")
    assert created.status_code == 201, created.data
    assert created.data["password_set"] is True and "password" not in created.data
    assert created.data["mail_source"] is True and created.data["created_by"] == "designer"
    assert account[1] not in str(client.get(url).content)
    box = Mailbox.objects.get(workflow=workflow)
    assert box.password_encrypted != account[1] and account[1] not in box.password_encrypted
    assert secrets.decrypt(box.password_encrypted) == account[1]

    changed = client.patch(url, {"folder": "Fatture", "enabled": False}, format="json")
    assert changed.status_code == 200 and changed.data["folder"] == "Fatture"
    assert secrets.decrypt(Mailbox.objects.get(pk=box.pk).password_encrypted) == account[1]  # kept

    entries = list(AuditEntry.objects.filter(action__startswith="mailbox.").order_by("id"))
    assert [e.action for e in entries] == ["mailbox.create", "mailbox.update"]
    assert "password" in entries[0].data["changed"] and entries[1].data["changed"] == ["enabled", "folder"]
    assert all(account[1] not in str(e.data) for e in entries)

    assert client.delete(url).status_code == 204
    assert not Mailbox.objects.exists()
    assert AuditEntry.objects.filter(action="mailbox.delete").count() == 1


@pytest.mark.parametrize("field, value, said", [
    ("host", "imap://mail.example.it:993", "without 'imap://' or a port"),
    ("username", "fatture\r\nA1 DELETE INBOX", "cannot contain line breaks"),
    ("password", "pw\r\nA1 LOGOUT", "cannot contain line breaks"),
    ("port", 0, "greater than or equal to 1"),
    ("poll_seconds", 1, "greater than or equal to 10"),
    ("security", "none", "is not a valid choice"),
])
def test_bad_settings_are_refused_with_what_to_fix(api, personas, workflow, trusted, account, field, value, said):
    response = api(personas["designer"]).put(f"/api/workflows/{workflow.pk}/mailbox/",
                                             body(trusted, account, **{field: value}), format="json")
    assert response.status_code == 400 and said in str(response.data[field]), response.data
    assert not Mailbox.objects.exists()


def test_the_api_test_says_the_login_failed_and_keeps_it_on_the_mailbox(api, personas, workflow, trusted, account):
    make_mailbox(workflow, personas["designer"], trusted, account, password="sbagliata")
    client = api(personas["designer"])
    answer = client.post(f"/api/workflows/{workflow.pk}/mailbox/test/", format="json")
    assert answer.status_code == 200 and (answer.data["ok"], answer.data["stage"]) == (False, "login")
    shown = client.get(f"/api/workflows/{workflow.pk}/mailbox/").data
    assert shown["last_error_code"] == "login"
    assert shown["last_error_text"].startswith("The mail server refused the username or the password")


def test_the_page_saves_tests_and_shows_what_happened(client, personas, workflow, trusted, account):
    client.force_login(personas["designer"])
    url = f"/workflows/{workflow.pk}/mailbox/"
    page = client.get(url)
    assert page.status_code == 200 and b"Connect a mailbox" in page.content

    form = {**body(trusted, account), "enabled": "on"}
    tested = client.post(url, {**form, "password": "sbagliata", "action": "test"})
    said = html.unescape(tested.content.decode())
    assert "The mail server refused the username or the password" in said
    assert not Mailbox.objects.exists()  # testing saves nothing

    saved = client.post(url, {**form, "action": "save"})
    assert saved.status_code == 302
    page = client.get(url).content.decode()
    assert "A password is stored. Leave blank to keep it" in page and account[1] not in page

    working = client.post(url, {**form, "password": "", "action": "test"})  # the stored password is used
    assert "Connected, logged in and opened 'INBOX'" in outcome_of(working), outcome_of(working)

    trusted.deliver(*account, message("Troppo grande", "x" * 5000))
    box = Mailbox.objects.get(workflow=workflow)
    from django.test import override_settings

    with override_settings(MAILBOX_MAX_MESSAGE_BYTES=2000):
        mailboxes.poll(box)
    page = html.unescape(client.get(url).content.decode())
    assert "Troppo grande" in page and "dead-lettered" in page and "the limit is 2.0" in page

    Mailbox.objects.filter(pk=box.pk).update(password_encrypted=secrets.encrypt("sbagliata"))
    mailboxes.poll(Mailbox.objects.get(pk=box.pk))
    page = html.unescape(client.get(url).content.decode())
    assert 'id="mailbox-error"' in page and "refused the username or the password" in page


def test_the_page_warns_when_the_workflow_has_no_mailbox_source(client, personas, trusted, account):
    from tests.engine.helpers import make_runnable_workflow

    workflow = make_runnable_workflow(personas["designer"])
    client.force_login(personas["designer"])
    page = client.get(f"/workflows/{workflow.pk}/mailbox/")
    assert b'id="no-mail-source"' in page.content


def test_a_new_mailbox_needs_a_password_on_the_page(client, personas, workflow, trusted, account):
    client.force_login(personas["designer"])
    response = client.post(f"/workflows/{workflow.pk}/mailbox/",
                           {**body(trusted, account), "password": "", "action": "save"})
    assert response.status_code == 400 and b"Enter the mailbox&#x27;s password." in response.content
    assert not Mailbox.objects.exists()


def test_the_mailbox_source_node_links_to_the_mailbox_page(client, personas, workflow):
    client.force_login(personas["designer"])
    panel = client.get(f"/workflows/{workflow.pk}/panel/", {"node": "mail", "type": "source.mailbox", "config": "{}"})
    assert panel.status_code == 200
    assert f'href="/workflows/{workflow.pk}/mailbox/" id="mailbox-link"'.encode() in panel.content


def test_the_password_just_tested_is_kept_for_saving_without_being_shown(client, personas, workflow, trusted,
                                                                           account):
    # The browser never shows a password back: after 'Test connection' the field is empty, and a save
    # right after must not ask for it again (it said "Enter the mailbox's password.").
    client.force_login(personas["designer"])
    url = f"/workflows/{workflow.pk}/mailbox/"
    form = {**body(trusted, account), "enabled": "on"}
    tested = client.post(url, {**form, "action": "test"})
    assert "Connected, logged in" in outcome_of(tested)
    assert account[1] not in tested.content.decode()
    saved = client.post(url, {**form, "password": "", "action": "save"})
    assert saved.status_code == 302, html.unescape(saved.content.decode())[:3000]
    assert secrets.decrypt(Mailbox.objects.get(workflow=workflow).password_encrypted) == account[1]
    # Kept for this person's session only, and only once: another designer must type it.
    other = client.session.get(f"mailbox-tested-password:{workflow.pk}")
    assert other is None
