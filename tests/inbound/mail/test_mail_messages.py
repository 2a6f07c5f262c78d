"""Reading one message as a document, without a server: bodies, HTML, charsets, keys, folder names."""

from __future__ import annotations

import pytest

from tests.inbound.mail.mail_helpers import message
from workflows.inbound.imap import quote_folder
from workflows.inbound.messages import PoisonMessage, html_to_text, message_key, parse_message

CAPS = {"max_attachments": 5, "max_attachment_bytes": 10_000, "max_text_chars": 1000}


def header_of(raw: bytes) -> bytes:
    return raw.split(b"\n\n", 1)[0] + b"\n\n"


def test_plain_text_is_preferred_to_its_html_alternative():
    raw = message("Ordine", "Testo semplice", html="<p>Testo <b>HTML</b></p>")
    assert parse_message(raw, **CAPS).text == "Testo semplice"


def test_html_becomes_text_without_scripts_styles_or_markup():
    html = ("<html><head><title>t</title><style>.a{}</style></head><body><script>steal()</script>"
            "<h1>Ciao</h1><p>riga&nbsp;uno<br>riga due</p><table><tr><td>a</td><td>b</td></tr></table>"
            "<img src='http://tracker.example/pixel.gif'></body></html>")
    assert html_to_text(html) == "Ciao\n\nriga uno\nriga due\n\na b"


def test_a_lying_charset_still_reads_and_nul_bytes_are_dropped():
    raw = (b"From: a@example.it\r\nSubject: x\r\nContent-Type: text/plain; charset=no-such-charset\r\n\r\n"
           b"Caff\xe8 \x00pronto\r\n")
    document = parse_message(raw, **CAPS)
    assert document.text == "Caff\xe8 pronto"


def test_inline_pictures_of_an_html_body_are_not_attachments():
    from email.message import EmailMessage

    mail = EmailMessage()
    mail["From"], mail["Subject"] = "a@example.it", "logo"
    mail.set_content("testo")
    mail.add_alternative("<p>testo <img src='cid:logo'></p>", subtype="html")
    mail.get_payload()[1].add_related(b"\x89PNG....", maintype="image", subtype="png", cid="<logo>")
    assert parse_message(mail.as_bytes(), **CAPS).attachments == []


def test_an_attachment_without_a_name_gets_one_from_its_type():
    raw = message("x", "y", attachments=[("", "application/pdf", b"%PDF-1.7")])
    raw = raw.replace(b'; filename=""', b"")
    assert parse_message(raw, **CAPS).attachments[0].filename == "attachment-1.pdf"


def test_a_text_longer_than_a_cell_is_poison():
    with pytest.raises(PoisonMessage) as caught:
        parse_message(message("lungo", "x" * 2000), **CAPS)
    assert caught.value.code == "body_too_long"


def test_the_key_is_the_message_id_or_a_hash_of_the_header():
    with_id = message("a", message_id="<uno@example.it>")
    assert message_key(header_of(with_id)) == ("<uno@example.it>", "<uno@example.it>")
    without = message("a", message_id=None)
    key, message_id = message_key(header_of(without))
    assert key.startswith("sha256:") and message_id == ""
    assert message_key(header_of(without)) == (key, "")  # the same bytes, the same key
    assert message_key(header_of(message("b", message_id=None)))[0] != key


def test_folder_names_are_quoted_and_in_modified_utf7():
    assert quote_folder("INBOX") == '"INBOX"'
    assert quote_folder('Posta "in" arrivo') == '"Posta \\"in\\" arrivo"'
    assert quote_folder("Fatture è") == '"Fatture &AOg-"'
    assert quote_folder("R&D") == '"R&-D"'
