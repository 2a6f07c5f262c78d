"""An e-mail message as a document: subject, sender, date, body as text and attachments.

Pure Python (the standard library's e-mail parser, no Django), so the poller and the tests read a
message the same way. A message that cannot be read safely raises `PoisonMessage` with a code and
its values (workflows/inbound/mailboxes.py words them in the reader's language): it is dead-lettered
once, never retried.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser, BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html import unescape
from html.parser import HTMLParser
from typing import Any

KEY_LIMIT = 255  # MailboxMessage.message_key


class PoisonMessage(Exception):
    """A message that must not be taken: `code` says why, `params` the values for the sentence."""

    def __init__(self, code: str, **params: Any):
        self.code = code
        self.params = params
        super().__init__(f"{code}: {params}")


@dataclass
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass
class Document:
    subject: str
    sender: str
    date: str  # ISO 8601, or "" when the message has no readable Date
    message_id: str
    text: str
    attachments: list[Attachment] = field(default_factory=list)


def _clean(text: str) -> str:
    # PostgreSQL's jsonb cannot hold NUL; a header folded over lines reads as one line.
    return text.replace("\x00", "")


def message_key(header: bytes) -> tuple[str, str]:
    """(ledger key, Message-ID) of a message from its raw header: the Message-ID when it has one
    short enough to index, else a hash of the header bytes (the same bytes on every fetch)."""
    parsed = BytesHeaderParser(policy=policy.compat32).parsebytes(header)
    message_id = _clean(" ".join(str(parsed.get("Message-ID", "") or "").split()))
    if message_id and len(message_id) <= KEY_LIMIT:
        return message_id, message_id
    return "sha256:" + hashlib.sha256(header).hexdigest(), message_id[:KEY_LIMIT]


def header_summary(header: bytes) -> tuple[str, str]:
    """(subject, sender) of a raw header, shortened for the ledger; never raises."""
    try:
        parsed = BytesParser(policy=policy.default).parsebytes(header, headersonly=True)
        return _clean(str(parsed.get("Subject", "") or ""))[:255], _sender(parsed)[:255]
    except Exception:  # a header too broken to summarise still gets its ledger row
        return "", ""


def _sender(message: Any) -> str:
    try:
        value = message.get("From", "")
        addresses = getattr(value, "addresses", None)
        if addresses:
            first: Address = addresses[0]
            return _clean(f"{first.display_name} <{first.addr_spec}>" if first.display_name else first.addr_spec)
        pairs = getaddresses([str(value or "")])
        return _clean(pairs[0][1] if pairs else str(value or ""))
    except Exception:  # a From header the parser chokes on: keep its raw text
        return _clean(str(message.get("From", "", failobj="") or ""))


def _date(message: Any) -> str:
    value = message.get("Date")
    if not value:
        return ""
    try:
        return parsedate_to_datetime(str(value)).isoformat()
    except (TypeError, ValueError, IndexError, OverflowError):
        return ""


def parse_message(raw: bytes, *, max_attachments: int, max_attachment_bytes: int,
                  max_text_chars: int) -> Document:
    """The message as a document; PoisonMessage when it cannot be read or breaks a cap."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; what it still refuses is a broken message
        raise PoisonMessage("unparseable", detail=str(exc)[:300]) from None
    if not isinstance(message, EmailMessage) or not message.keys():
        raise PoisonMessage("unparseable", detail="no header")
    attachments: list[Attachment] = []
    plain: list[str] = []
    html: list[str] = []
    try:
        for part in message.walk():
            if part.is_multipart():
                continue
            filename = part.get_filename()
            disposition = part.get_content_disposition()
            content_type = part.get_content_type()
            if part.get("Content-ID") and disposition != "attachment" and content_type.startswith("image/"):
                continue  # a logo or picture the HTML body shows inline, not a document sent
            if filename or disposition == "attachment" or not content_type.startswith("text/"):
                attachments.append(_attachment(part, filename, content_type, len(attachments), max_attachments,
                                               max_attachment_bytes))
            elif content_type == "text/plain":
                plain.append(_text_of(part))
            elif content_type == "text/html":
                html.append(html_to_text(_text_of(part)))
    except PoisonMessage:
        raise
    except Exception as exc:  # a part whose transfer encoding or charset is beyond repair
        raise PoisonMessage("unparseable", detail=str(exc)[:300]) from None
    text = _clean("\n\n".join(t.strip() for t in (plain or html) if t.strip()))
    if len(text) > max_text_chars:
        raise PoisonMessage("body_too_long", chars=len(text), limit=max_text_chars)
    subject = _clean(" ".join(str(message.get("Subject", "") or "").split()))
    return Document(subject=subject[:1000], sender=_sender(message), date=_date(message),
                    message_id=_clean(str(message.get("Message-ID", "") or "").strip())[:KEY_LIMIT], text=text,
                    attachments=attachments)


def _attachment(part: Any, filename: str | None, content_type: str, count: int, max_attachments: int,
                max_bytes: int) -> Attachment:
    if count + 1 > max_attachments:
        raise PoisonMessage("too_many_attachments", limit=max_attachments)
    data = part.get_payload(decode=True) or b""
    name = _clean(filename or f"attachment-{count + 1}{mimetypes.guess_extension(content_type) or ''}")[:255]
    if len(data) > max_bytes:
        raise PoisonMessage("attachment_too_large", name=name, size=len(data), limit=max_bytes)
    return Attachment(filename=name, content_type=content_type, data=data)


def _text_of(part: Any) -> str:
    try:
        return str(part.get_content())
    except (LookupError, UnicodeDecodeError, AssertionError):
        # An unknown or lying charset: the bytes as Latin-1 lose nothing and never fail.
        return (part.get_payload(decode=True) or b"").decode("latin-1")


# --- HTML to text: the standard library's tokenizer, no script run, nothing fetched -------------

BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote",
          "pre", "hr", "section", "article", "header", "footer"}
SKIPPED = {"script", "style", "head", "title", "template", "noscript", "svg", "object", "iframe"}


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in SKIPPED:
            self.skipping += 1
        elif tag in BLOCKS:
            self.parts.append("\n")
        elif tag == "td":
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in SKIPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """The text a reader sees in an HTML body: tags dropped, scripts and styles skipped, entities
    decoded, blocks on their own lines, runs of blanks folded."""
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    text = unescape("".join(parser.parts)).replace("\xa0", " ")
    lines = (re.sub(r"[ \t\r\f\v]+", " ", line).strip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
