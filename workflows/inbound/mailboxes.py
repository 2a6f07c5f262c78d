"""Mailboxes polled by the workers: each unseen message becomes items of the workflow's live run.

`tick` is a duty of every worker's monitor thread (run_worker). It claims each due mailbox with a
conditional UPDATE (next poll time and lease moved from the values read), so N workers poll a mailbox
once, then reads its unseen messages over TLS (workflows/inbound/imap.py), oldest first.

A message's way, and why nothing is taken twice or lost:
1. its header is fetched (BODY.PEEK: the server does not flag it \\Seen) and its ledger row found or
   made, keyed by Message-ID (or a hash of the header). A row already taken or dead-lettered means a
   worker took it before and died before flagging it: it is only flagged now;
2. the row's `attempts` goes up in its own commit before the message is read, so a message that kills
   its reader (or hangs it past the lease) is dead-lettered after MAX_ATTEMPTS, not read for ever;
3. the items and the row's move to "taken" (with their ids) commit in ONE transaction, with the row
   locked and still pending: the ledger decides, exactly once;
4. only then is it flagged \\Seen (or moved): a crash before that leaves an unseen message whose
   ledger row says "taken", so step 1 flags it at the next poll. The flag is a courtesy.
A message too large, with too many or too large attachments, or unreadable is dead-lettered once with
its reason (shown on the mailbox's page) and flagged \\Seen, so a person finds it in the mailbox.

Limits come from settings (MAILBOX_MAX_MESSAGE_BYTES, MAILBOX_MAX_ATTACHMENTS,
MAILBOX_MAX_ATTACHMENT_BYTES, MAILBOX_MESSAGES_PER_POLL, MAILBOX_TIMEOUT_SECONDS, MAILBOX_CA_FILE).
"""

from __future__ import annotations

import datetime as dt
import logging
import ssl
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import F, Q
from django.utils import timezone

from workflows.engine import documents, launch
from workflows.engine.intake import MAX_CELL_CHARS, IntakeError
from workflows.models.inbound import Mailbox, MailboxMessage

from . import secrets
from .imap import Account, ImapProblem, Session
from .messages import Document, PoisonMessage, header_summary, message_key, parse_message

logger = logging.getLogger(__name__)

ORIGIN = "mailbox"
MAX_ATTEMPTS = 3
# A poll holds its mailbox this long at most; a worker that died mid-poll is replaced after it.
LEASE_SECONDS = 300
# A poll stops taking new messages after this long (the rest wait for the next poll), so the monitor
# thread it runs in goes back to its other duties well within the lease.
POLL_BUDGET_SECONDS = 60
DUE_PER_TICK = 20


class WorkflowNotReady(Exception):
    """The workflow cannot take mail now (no mailbox source, a version with problems)."""


@dataclass
class PollResult:
    taken: int = 0
    dead: int = 0
    flagged: int = 0  # taken or dead-lettered before, flagged on the server only now
    error_code: str = ""
    error: str = ""


def tls_context() -> ssl.SSLContext:
    """The system's certificate authorities, plus MAILBOX_CA_FILE's (a firm's own mail server's CA).
    Certificates and host names are always checked."""
    context = ssl.create_default_context()
    if settings.MAILBOX_CA_FILE:
        context.load_verify_locations(cafile=settings.MAILBOX_CA_FILE)
    return context


def account_of(mailbox: Mailbox, password: str | None = None) -> Account:
    return Account(host=mailbox.host, port=mailbox.port, security=mailbox.security, username=mailbox.username,
                   password=secrets.decrypt(mailbox.password_encrypted) if password is None else password,
                   folder=mailbox.folder, processed_folder=mailbox.processed_folder)


def session_for(account: Account) -> Session:
    return Session(account, timeout=settings.MAILBOX_TIMEOUT_SECONDS, context=tls_context())


# --- the monitor duty ---------------------------------------------------------------------------


def tick(now: dt.datetime | None = None) -> dict[str, int]:
    """Poll every due mailbox this worker claims. Safe in N workers at once."""
    now = now or timezone.now()
    totals = {"mailboxes_polled": 0, "mail_taken": 0, "mail_dead": 0}
    for pk in due(now):
        mailbox = claim(pk, now)
        if mailbox is None:
            continue
        result = poll(mailbox)
        totals["mailboxes_polled"] += 1
        totals["mail_taken"] += result.taken
        totals["mail_dead"] += result.dead
    return totals


def _due_filter(now: dt.datetime) -> Q:
    return (Q(enabled=True, workflow__archived=False) & (Q(next_poll_at__isnull=True) | Q(next_poll_at__lte=now))
            & (Q(polling_until__isnull=True) | Q(polling_until__lt=now)))


def due(now: dt.datetime) -> list[int]:
    return list(Mailbox.objects.filter(_due_filter(now)).order_by("next_poll_at", "pk")
                .values_list("pk", flat=True)[:DUE_PER_TICK])


def claim(pk: int, now: dt.datetime) -> Mailbox | None:
    """The mailbox if this worker's conditional UPDATE moved its next poll and lease (else None:
    another worker has it, or it is no longer due)."""
    row = Mailbox.objects.filter(pk=pk).values("next_poll_at", "polling_until", "poll_seconds").first()
    if row is None:
        return None
    changed = (Mailbox.objects.filter(_due_filter(now), pk=pk, next_poll_at=row["next_poll_at"],
                                      polling_until=row["polling_until"])
               .update(next_poll_at=now + dt.timedelta(seconds=row["poll_seconds"]),
                       polling_until=now + dt.timedelta(seconds=LEASE_SECONDS)))
    return Mailbox.objects.select_related("workflow").get(pk=pk) if changed == 1 else None


def poll(mailbox: Mailbox) -> PollResult:
    """Read the mailbox's unseen messages (at most MAILBOX_MESSAGES_PER_POLL); the outcome is kept
    on the mailbox (last poll, last error) and its lease released."""
    result = PollResult()
    try:
        _poll(mailbox, result)
    except ImapProblem as problem:
        result.error_code, result.error = problem.stage, problem.detail
    except secrets.SecretsUnavailable as exc:
        result.error_code, result.error = "credentials", str(exc)
    except WorkflowNotReady as exc:
        result.error_code, result.error = "workflow", str(exc)
    finally:
        _finish(mailbox, result)
    if result.error_code:
        logger.warning("mailbox %s (workflow %s): %s: %s", mailbox.pk, mailbox.workflow_id, result.error_code,
                       result.error)
    return result


def _poll(mailbox: Mailbox, result: PollResult) -> None:
    live = mailbox.workflow.live  # mail runs on the published version, never on a draft
    if live is None:
        raise WorkflowNotReady("The workflow has no live version: publish a version first, so that messages have "
                               "a way in.")
    if launch.entry_source(live.graph.get("nodes", []), ORIGIN) is None:
        raise WorkflowNotReady("The workflow's live version has no 'source.mailbox' node: add a Mailbox source "
                               "to the canvas, save and publish, so that messages have a way in.")
    started = time.monotonic()
    with session_for(account_of(mailbox)) as session:
        uids = session.unseen()[: settings.MAILBOX_MESSAGES_PER_POLL]
        if uids:
            _ready(mailbox)
        for uid in uids:
            if time.monotonic() - started > POLL_BUDGET_SECONDS:
                break
            try:
                outcome = take(mailbox, session, uid)
            except (ImapProblem, DatabaseError, WorkflowNotReady):
                raise
            except Exception:
                # A reader's bug on one message must not stop the others; its attempt is counted,
                # so it is dead-lettered after MAX_ATTEMPTS polls.
                logger.exception("mailbox %s: message uid %s could not be taken", mailbox.pk, uid)
                continue
            if outcome == MailboxMessage.TAKEN:
                result.taken += 1
            elif outcome == MailboxMessage.DEAD:
                result.dead += 1
            elif outcome == "flagged":
                result.flagged += 1


def _ready(mailbox: Mailbox) -> None:
    """The workflow's live mail run exists (made now if needed), or WorkflowNotReady says why not,
    before any message is read (a broken workflow is not a message's fault)."""
    try:
        launch.append_to_live_run(mailbox.workflow, [], user=None, origin=ORIGIN)
    except launch.StartError as exc:
        raise WorkflowNotReady(" ".join(exc.problems)) from None


def _finish(mailbox: Mailbox, result: PollResult) -> None:
    now = timezone.now()
    values: dict[str, Any] = {"last_poll_at": now, "polling_until": None}
    if result.error_code:
        values.update(last_error_code=result.error_code, last_error=result.error[:2000], last_error_at=now)
    else:
        values.update(last_error_code="", last_error="", last_error_at=None)
    try:
        Mailbox.objects.filter(pk=mailbox.pk).update(**values)
    except DatabaseError:
        logger.exception("mailbox %s: the outcome of its poll could not be saved", mailbox.pk)


# --- one message ----------------------------------------------------------------------------------


def take(mailbox: Mailbox, session: Session, uid: int) -> str:
    """Take one message (its items and ledger row in one transaction), or dead-letter it. Returns the
    row's new status, "flagged" (taken before, flagged only now) or "gone" (deleted meanwhile)."""
    fetched = session.header(uid)
    if fetched is None:
        return "gone"
    size, header = fetched
    key, _ = message_key(header)
    subject, sender = header_summary(header)
    row, _ = MailboxMessage.objects.get_or_create(
        mailbox=mailbox, message_key=key,
        defaults={"uid": uid, "uidvalidity": session.uidvalidity, "subject": subject, "sender": sender})
    if row.status != MailboxMessage.PENDING:
        session.mark(uid)
        return "flagged"
    if row.attempts >= MAX_ATTEMPTS:
        return _dead(row, session, uid, "crashed", attempts=row.attempts)
    MailboxMessage.objects.filter(pk=row.pk).update(attempts=F("attempts") + 1, uid=uid,
                                                    uidvalidity=session.uidvalidity)
    limit = settings.MAILBOX_MAX_MESSAGE_BYTES
    if size > limit:
        return _dead(row, session, uid, "too_large", size=size, limit=limit)
    raw = session.body(uid, limit)
    if raw is None:
        return "gone"
    if len(raw) > limit:
        return _dead(row, session, uid, "too_large", size=len(raw), limit=limit)
    try:
        document = parse_message(raw, max_attachments=settings.MAILBOX_MAX_ATTACHMENTS,
                                 max_attachment_bytes=settings.MAILBOX_MAX_ATTACHMENT_BYTES,
                                 max_text_chars=MAX_CELL_CHARS)
        items = items_of(document)
    except PoisonMessage as poison:
        return _dead(row, session, uid, poison.code, **poison.params)
    except IntakeError as exc:
        return _dead(row, session, uid, "attachment_unreadable", detail=exc.message)
    try:
        with transaction.atomic():
            locked = MailboxMessage.objects.select_for_update().filter(pk=row.pk, status=MailboxMessage.PENDING)
            if not locked.exists():
                taken_by_another = True
            else:
                taken_by_another = False
                run, ids = launch.append_to_live_run(mailbox.workflow, items, user=None, origin=ORIGIN)
                MailboxMessage.objects.filter(pk=row.pk).update(status=MailboxMessage.TAKEN, run=run, item_ids=ids,
                                                                reason_code="", reason_params={})
    except launch.StartError as exc:
        # The workflow changed under the poll: not this message's fault, so its attempt is given back.
        MailboxMessage.objects.filter(pk=row.pk).update(attempts=F("attempts") - 1)
        raise WorkflowNotReady(" ".join(exc.problems)) from None
    session.mark(uid)
    return "flagged" if taken_by_another else MailboxMessage.TAKEN


def _dead(row: MailboxMessage, session: Session, uid: int, code: str, **params: Any) -> str:
    changed = MailboxMessage.objects.filter(pk=row.pk, status=MailboxMessage.PENDING).update(
        status=MailboxMessage.DEAD, reason_code=code[:30], reason_params=params)
    session.mark(uid)
    return MailboxMessage.DEAD if changed else "flagged"


def items_of(document: Document) -> list[dict[str, Any]]:
    """The message as items: one for its text (subject, sender, date, body, the attachments' names),
    and one per document its PDF, image or e-invoice attachments hold (read by engine/documents.py,
    with the message's subject, sender and date). A message whose text is empty but whose attachments
    give items is those items alone."""
    envelope = {"subject": document.subject, "sender": document.sender, "date": document.date,
                "message_id": document.message_id}
    from_attachments: list[dict[str, Any]] = []
    for attachment in document.attachments:
        if documents.is_document(attachment.filename):
            for item in documents.items_from_file(attachment.data, attachment.filename):
                from_attachments.append({**envelope, **item})
    message = {**envelope, "text": document.text, "attachments": [a.filename for a in document.attachments]}
    if not document.text.strip() and from_attachments:
        return from_attachments
    return [message, *from_attachments]
