"""Setting up a workflow's mailbox: the checks, saving (password encrypted, never answered back),
removing and testing the connection, each audited. The one write path of the page
(views/mailboxes.py) and the API (api/mailboxes.py); also the sentences that tell people what a
poll ran into and why a message was dead-lettered, in the reader's language."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.template.defaultfilters import filesizeformat
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from workflows.engine import launch
from workflows.models.audit import record
from workflows.models.inbound import Mailbox, MailboxMessage

from . import secrets
from .imap import Account, ImapProblem
from .mailboxes import ORIGIN, account_of, session_for

FIELDS = ("host", "port", "security", "username", "folder", "processed_folder", "poll_seconds", "enabled")
MIN_POLL_SECONDS, MAX_POLL_SECONDS = 10, 86400
LABEL = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")

STAGE_TEXTS = {
    "dns": gettext_lazy("The mail server's name '%(host)s' could not be found (DNS): %(detail)s. Check the host "
                        "name."),
    "connect": gettext_lazy("Could not connect to %(host)s on port %(port)s: %(detail)s. Check the port, and that "
                            "the server accepts connections from this machine."),
    "timeout": gettext_lazy("The mail server %(host)s did not answer in time (%(detail)s). Check the port and the "
                            "security setting: IMAPS is usually on port 993, STARTTLS on 143."),
    "tls": gettext_lazy("The TLS connection to %(host)s failed: %(detail)s. Check the security setting (IMAPS is "
                        "usually on port 993, STARTTLS on 143) and the server's certificate."),
    "login": gettext_lazy("The mail server refused the username or the password: %(detail)s."),
    "folder": gettext_lazy("The folder '%(folder)s' cannot be opened: %(detail)s. Check its name (some servers tell "
                           "upper from lower case)."),
    "processed_folder": gettext_lazy("The folder for taken messages '%(processed)s' cannot be opened: %(detail)s. "
                                     "Create it on the mail server, or leave the field blank to flag messages as "
                                     "read instead."),
    "protocol": gettext_lazy("The mail server answered something unexpected: %(detail)s."),
    "credentials": gettext_lazy("The stored password cannot be read: %(detail)s"),
    "workflow": gettext_lazy("The workflow cannot take mail: %(detail)s"),
}
REASON_TEXTS = {
    "too_large": gettext_lazy("The message is %(size)s; the limit is %(limit)s."),
    "too_many_attachments": gettext_lazy("The message has more than %(limit)s attachments."),
    "attachment_too_large": gettext_lazy("The attachment '%(name)s' is %(size)s; the limit is %(limit)s."),
    "unparseable": gettext_lazy("The message cannot be read as e-mail: %(detail)s"),
    "body_too_long": gettext_lazy("The message's text is longer than %(limit)s characters."),
    "attachment_unreadable": gettext_lazy("An attachment cannot be read: %(detail)s"),
    "crashed": gettext_lazy("Reading it stopped the worker %(attempts)s times, so it was set aside and the other "
                            "messages go on."),
}
STATUS_TEXTS = {MailboxMessage.PENDING: gettext_lazy("being read"), MailboxMessage.TAKEN: gettext_lazy("taken"),
                MailboxMessage.DEAD: gettext_lazy("dead-lettered")}


def problem_text(code: str, detail: str, mailbox: Any) -> str:
    """What a poll or a test ran into, as a sentence that says what to fix."""
    template = STAGE_TEXTS.get(code)
    if template is None:
        return detail
    return str(template) % {"host": mailbox.host, "port": mailbox.port, "folder": mailbox.folder,
                            "processed": mailbox.processed_folder, "detail": detail.rstrip(".")}


def last_error_text(mailbox: Mailbox) -> str:
    return problem_text(mailbox.last_error_code, mailbox.last_error, mailbox) if mailbox.last_error_code else ""


def reason_text(message: MailboxMessage) -> str:
    template = REASON_TEXTS.get(message.reason_code)
    if template is None:
        return message.reason_code
    params = {k: v for k, v in (message.reason_params or {}).items()}
    for key in ("size", "limit"):
        if key in params and message.reason_code in ("too_large", "attachment_too_large"):
            params[key] = filesizeformat(params[key])
    params.setdefault("detail", "")
    try:
        return str(template) % params
    except (KeyError, TypeError, ValueError):
        return message.reason_code


def has_mail_source(workflow: Any) -> bool:
    live = workflow.live  # mail runs on the published version
    return launch.entry_source(live.graph.get("nodes", []) if live else [], ORIGIN) is not None


# --- checks, shared by the form and the serializer ------------------------------------------------


def host_problem(host: str) -> str:
    host = host.strip()
    try:
        ipaddress.ip_address(host)
        return ""
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode()
    except UnicodeError:
        ascii_host = ""
    labels = ascii_host.rstrip(".").split(".") if ascii_host else []
    if not labels or len(ascii_host) > 253 or not all(LABEL.match(label) for label in labels):
        return gettext("Enter the mail server's host name (e.g. imap.example.it) or IP address, without "
                       "'imap://' or a port.")
    return ""


def text_problem(value: str, what: str) -> str:
    """No control characters: a line break in a username or folder would end the IMAP command early.
    `what` is "username", "password" or "folder" (one whole sentence each: the nouns' genders differ)."""
    if not CONTROL.search(value):
        return ""
    if what == "username":
        return gettext("The username cannot contain line breaks, tabs or other control characters.")
    if what == "password":
        return gettext("The password cannot contain line breaks, tabs or other control characters.")
    return gettext("The folder name cannot contain line breaks, tabs or other control characters.")


def port_problem(port: int) -> str:
    return "" if 1 <= port <= 65535 else gettext("Enter a port between 1 and 65535 (IMAPS: 993, STARTTLS: 143).")


def poll_problem(seconds: int) -> str:
    if MIN_POLL_SECONDS <= seconds <= MAX_POLL_SECONDS:
        return ""
    return gettext("The polling interval must be between %(low)s and %(high)s seconds.") % {
        "low": MIN_POLL_SECONDS, "high": MAX_POLL_SECONDS}


# --- saving, removing ----------------------------------------------------------------------------


def save_mailbox(workflow: Any, values: dict[str, Any], *, user: Any, password: str | None) -> Mailbox:
    """Create or change the workflow's mailbox (the values already checked). A blank or absent
    password keeps the stored one; a new mailbox needs one (the caller checks). Raises
    secrets.SecretsUnavailable when there is no key to encrypt with, before anything is written."""
    encrypted = secrets.encrypt(password) if password else None
    with transaction.atomic():
        mailbox = Mailbox.objects.select_for_update().filter(workflow=workflow).first()
        created = mailbox is None
        if created:
            mailbox = Mailbox(workflow=workflow, created_by=user if getattr(user, "is_authenticated", False) else None)
        changed = [name for name in FIELDS if name in values and getattr(mailbox, name) != values[name]]
        for name in changed:
            setattr(mailbox, name, values[name])
        if encrypted:
            mailbox.password_encrypted = encrypted
            changed.append("password")
        # Polled at the next tick with what was just set, and yesterday's error no longer shown.
        mailbox.next_poll_at = None
        mailbox.last_error_code, mailbox.last_error, mailbox.last_error_at = "", "", None
        mailbox.save()
        record("mailbox.create" if created else "mailbox.update", actor=user, obj=mailbox, workflow=workflow.pk,
               changed=sorted(changed), host=mailbox.host, username=mailbox.username, folder=mailbox.folder)
    return mailbox


def delete_mailbox(mailbox: Mailbox, *, user: Any) -> None:
    with transaction.atomic():
        record("mailbox.delete", actor=user, obj=mailbox, workflow=mailbox.workflow_id, host=mailbox.host,
               username=mailbox.username)
        mailbox.delete()


# --- testing the connection ----------------------------------------------------------------------


@dataclass
class ConnectionOutcome:
    ok: bool
    stage: str  # "" when it worked, else the stage that failed
    message: str
    unseen: int | None = None


def check_connection(workflow: Any, *, user: Any, mailbox: Mailbox | None = None,
                    values: dict[str, Any] | None = None, password: str | None = None) -> ConnectionOutcome:
    """Connect, log in, open the folder (and the folder for taken messages) and count the unseen
    messages: the saved mailbox, or `values` typed on the page (the stored password when none is
    typed). Reads nothing and flags nothing. Testing the saved mailbox keeps the outcome on it."""
    target = Mailbox(**{**({n: getattr(mailbox, n) for n in FIELDS} if mailbox else {}), **(values or {})})
    try:
        stored = secrets.decrypt(mailbox.password_encrypted) if mailbox and not password else None
        account: Account = account_of(target, password or stored or "")
        with session_for(account) as session:
            unseen = len(session.unseen())
        outcome = ConnectionOutcome(True, "", gettext("Connected, logged in and opened '%(folder)s': %(count)s unseen "
                                                "messages waiting.") % {"folder": target.folder, "count": unseen},
                              unseen)
    except ImapProblem as problem:
        outcome = ConnectionOutcome(False, problem.stage, problem_text(problem.stage, problem.detail, target))
        detail = problem.detail
    except secrets.SecretsUnavailable as exc:
        outcome = ConnectionOutcome(False, "credentials", problem_text("credentials", str(exc), target))
        detail = str(exc)
    with transaction.atomic():
        if mailbox is not None and values is None:
            if outcome.ok:
                Mailbox.objects.filter(pk=mailbox.pk).update(last_error_code="", last_error="", last_error_at=None)
            else:
                Mailbox.objects.filter(pk=mailbox.pk).update(last_error_code=outcome.stage, last_error=detail[:2000],
                                                             last_error_at=timezone.now())
        record("mailbox.test", actor=user, obj=mailbox, object_type="" if mailbox else "workflows.workflow",
               object_id="" if mailbox else workflow.pk, workflow=workflow.pk, ok=outcome.ok, stage=outcome.stage,
               host=target.host)
    return outcome
