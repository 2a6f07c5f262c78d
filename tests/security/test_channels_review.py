"""A security review of the new channels, as an attacker reads them: signed inbound webhooks, the
notifications (inbox, e-mail digests, the language switch), documents and their originals, and the
workers' wake-up FIFOs. Each test is one attack, run against the real code path (the real database,
Redis, SMTP server, pypdf and pdfium), and says what the product must do instead."""

from __future__ import annotations

import bz2
import io
import json
import os
import stat
import struct
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from pathlib import Path

import pytest
from django.db import connection, transaction
from django.test import Client

from tests.builders import edge, node
from tests.documents.files import pdf_file, stream, text_pdf
from tests.engine.helpers import make_runnable_workflow
from tests.inbound.webhook_helpers import deliver, make_source, make_webhook_workflow, signed
from workflows.documents import DocumentError, read_documents
from workflows.engine import documents, wakeup
from workflows.engine.launch import create_run
from workflows.inbound import webhooks
from workflows.models import Item, Notification, NotificationProfile, Original, WebhookDelivery, WebhookSource, blobs
from workflows.models import notifications as kinds

ROOT = Path(__file__).resolve().parents[2]
TICKET = {"ticket": {"body": "Rimborso di EUR 12,50 a mario.rossi@example.it", "lang": "it"}}
postgres_only = pytest.mark.skipif(not os.environ.get("DATABASE_URL", "").startswith("postgres"),
                                   reason="row locks and concurrent transactions are PostgreSQL's")


@pytest.fixture
def hook(personas):
    workflow = make_webhook_workflow(personas["designer"])
    return make_source(workflow, personas["designer"])


# --- inbound webhooks ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_captured_delivery_replayed_with_an_idempotency_key_of_its_own_makes_nothing(hook):
    """The signature covers the timestamp and the body, not the Idempotency-Key header: whoever saw one
    delivery (a proxy's log, a sender's debug output) must not make its items again inside the window
    by changing the key."""
    source, secret = hook
    body = json.dumps(TICKET).encode()
    captured = signed(body, secret, key="crm-evt-1")
    first = Client().post(f"/hooks/{source.slug}/", data=body, content_type="application/json", headers=captured)
    assert first.status_code == 202, first.content
    replayed = Client().post(f"/hooks/{source.slug}/", data=body, content_type="application/json",
                             headers={**captured, "Idempotency-Key": "attacker-2"})
    assert replayed.status_code == 409 and replayed.json()["code"] == "replayed_delivery", replayed.content
    assert Item.objects.count() == 1
    assert WebhookDelivery.objects.filter(status="accepted").count() == 1
    # The sender's own retry (the same key) is still answered as the first delivery was.
    retry = Client().post(f"/hooks/{source.slug}/", data=body, content_type="application/json", headers=captured)
    assert retry.status_code == 202 and retry.json() == first.json() and retry["Idempotent-Replayed"] == "true"


@postgres_only
def test_two_copies_of_a_delivery_at_once_make_its_items_once(transactional_db, personas):
    """Two copies in flight together (a sender's timeout and retry): both pass the first look for the key
    before either has written it. The source's row lock is held here until both wait on it, so that
    the race is certain, not likely."""
    workflow = make_webhook_workflow(personas["designer"])
    source, secret = make_source(workflow, personas["designer"])
    body = json.dumps(TICKET).encode()
    headers = signed(body, secret, key="evt-twice")
    answers: list[webhooks.Answer] = []

    def post() -> None:
        try:
            answers.append(webhooks.receive(source.slug, headers=headers, stream=io.BytesIO(body),
                                            content_length=str(len(body)), address="203.0.113.7"))
        finally:
            connection.close()

    with transaction.atomic():
        WebhookSource.objects.select_for_update().get(pk=source.pk)
        threads = [threading.Thread(target=post) for _ in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_stat_clear_snapshot()")  # else one snapshot for the whole transaction
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND wait_event_type = 'Lock'")
                if cursor.fetchone()[0] >= 2:
                    break
            time.sleep(0.05)
        else:
            pytest.fail("the two deliveries never both waited for the source's lock")
    for thread in threads:
        thread.join(60)
    assert sorted(a.status for a in answers) == [202, 202], [a.body for a in answers]
    assert sorted(a.headers.get(webhooks.REPLAYED_HEADER, "") for a in answers) == ["", "true"]
    assert answers[0].body == answers[1].body
    assert Item.objects.count() == 1 and WebhookDelivery.objects.filter(status="accepted").count() == 1


@pytest.mark.django_db
def test_the_addresses_of_one_ipv6_network_share_one_failure_count(hook, settings):
    """Whoever has one IPv6 address has its /64: 2^64 addresses that would each start a count of
    their own."""
    source, secret = hook
    settings.WEBHOOK_FAILURE_LIMIT = 3
    body = json.dumps(TICKET).encode()

    def post(address: str, key: str, secret: str = secret) -> int:
        return webhooks.receive(source.slug, headers=signed(body, secret, key=key), stream=io.BytesIO(body),
                                content_length=str(len(body)), address=address).status

    assert [post(f"2001:db8:7:1::{n}", f"g{n}", "whsec_guess") for n in range(1, 4)] == [401, 401, 401]
    assert post("2001:db8:7:1:ffff:1:2:3", "k1") == 429
    assert post("2001:db8:7:2::1", "k2") == 202  # another network is not held back


@pytest.mark.django_db
def test_a_forwarded_for_header_does_not_change_the_address_throttled(hook, settings):
    """Without CLIENT_IP_HEADER configured, the address is the connection's: a caller cannot start a
    fresh failure count with each request by writing X-Forwarded-For or X-Real-IP."""
    source, _secret = hook
    settings.WEBHOOK_FAILURE_LIMIT = 2
    settings.CLIENT_IP_HEADER = ""
    answers = [deliver(Client(), source, TICKET, "whsec_guess", key=f"k{n}",
                       **{"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"198.51.100.{n}"}).status_code
               for n in range(3)]
    assert answers == [401, 401, 429]


@pytest.mark.django_db
def test_only_the_signed_endpoint_is_exempt_from_csrf(hook, personas):
    source, secret = hook
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(personas["designer"])
    base = f"/workflows/{source.workflow_id}/webhooks/{source.pk}"
    for path in (f"{base}/rotate/", f"{base}/enabled/", f"{base}/", f"/api/workflows/{source.workflow_id}"
                 f"/webhook-sources/{source.pk}/rotate/"):
        assert browser.post(path, {"name": "x"}).status_code == 403, path
    source.refresh_from_db()
    assert source.enabled and source.rotated_at is None
    assert deliver(browser, source, TICKET, secret).status_code == 202  # the signature is its authentication


@pytest.mark.django_db
def test_nothing_before_the_signature_says_more_than_no_such_address(hook):
    """An unknown slug and a malformed one get the same 404; a known slug without the secret learns only
    that the signature failed (not whether the source is enabled, nor what its workflow is)."""
    source, secret = hook
    unknown = deliver(Client(), "x" * 24, TICKET, secret)
    assert unknown.status_code == 404 and unknown.json() == deliver(Client(), "a%00b", TICKET, secret).json()
    assert unknown.json()["code"] == "not_found" and set(unknown.json()) == {"detail", "code"}
    WebhookSource.objects.filter(pk=source.pk).update(enabled=False)
    wrong = deliver(Client(), source, TICKET, "whsec_guess")
    assert wrong.status_code == 401 and wrong.json()["code"] == "bad_signature" and set(wrong.json()) == {"detail",
                                                                                                          "code"}


# --- notifications ------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("link", ["javascript:alert(document.cookie)", "//evil.example/login",
                                  "https://evil.example/", "/\\evil.example", "\x01javascript:alert(1)"])
def test_a_notification_never_leads_off_the_site(personas, link):
    user = personas["operator"]
    note = Notification.objects.create(user=user, kind=kinds.RUN_FAILED, params={"run": 1}, link=link, key="k")
    client = Client()
    client.force_login(user)
    response = client.post(f"/notifications/{note.pk}/read/", {"open": "1"})
    assert response.status_code == 302 and response["Location"] == "/notifications/"


@pytest.mark.django_db
def test_the_inbox_escapes_what_designers_and_reviewers_wrote(personas):
    user = personas["validator"]
    hostile = '<img src=x onerror="alert(1)">'
    Notification.objects.create(user=user, kind=kinds.PROMOTION_DECIDED, key="k", link="/",
                                params={"decision": "rejected", "decided_by": hostile, "reason": hostile,
                                        "number": 1, "version": hostile, "alias": hostile})
    client = Client()
    client.force_login(user)
    page = client.get("/notifications/").content.decode()
    assert hostile not in page and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in page


@pytest.mark.django_db
def test_the_language_switch_keeps_djangos_own_checks(personas):
    user = personas["operator"]
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    # Without the CSRF token a third-party page cannot change anyone's language.
    assert client.post("/i18n/setlang/", {"language": "it", "next": "/"}).status_code == 403
    assert not NotificationProfile.objects.filter(user=user, language="it").exists()
    # A GET changes nothing, and a foreign `next` is not followed.
    client.get("/i18n/setlang/", {"language": "it", "next": "https://evil.example/"})
    assert not NotificationProfile.objects.filter(user=user, language="it").exists()
    client = Client()
    client.force_login(user)
    response = client.post("/i18n/setlang/", {"language": "it", "next": "https://evil.example/"})
    assert response.status_code == 302 and "evil.example" not in response["Location"]
    assert NotificationProfile.objects.get(user=user).language == "it"


@pytest.mark.django_db
def test_names_and_reasons_cannot_add_headers_or_recipients_to_a_digest(personas, mail, settings):
    from workflows.notifications import notify
    from workflows.notifications.digest import send_digests

    owner = personas["business_owner"]
    notify(kinds.PACK_READY, {"workflow": "Triage\r\nBcc: spy@evil.example\r\nSubject: pwned", "week": "2026-W01"},
           key="pack:1", link="/", to=[owner])
    assert send_digests() == 1
    [message] = mail.messages
    assert message["X-Envelope-To"] == owner.email and message["Bcc"] is None
    assert message["Subject"] == "Cognitive Factory: 1 new notification"
    # A stored address with a line break is refused by Django's mail framework, never split into headers.
    type(owner).objects.filter(pk=owner.pk).update(email="owner@example.com\r\nBcc: spy@evil.example")
    NotificationProfile.objects.filter(user=owner).update(digest_sent_at=None)
    notify(kinds.PACK_READY, {"workflow": "Triage", "week": "2026-W02"}, key="pack:2", link="/", to=[owner])
    send_digests()
    assert not mail.to("spy@evil.example")


@pytest.fixture
def mail(settings):
    from aiosmtpd.controller import Controller

    from tests.notifications.conftest import Inbox, free_port

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_USE_TLS = controller.hostname, controller.port, False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DEFAULT_FROM_EMAIL = "factory@example.it"
    try:
        yield inbox
    finally:
        controller.stop()


# --- documents and originals ----------------------------------------------------------------------------


def forms_drawing_forms(depth: int, fan: int, leaf: bytes, name: bytes = b"/X", leaf_xobjects: bytes = b"") -> bytes:
    """One page that draws a form, which draws the next form `fan` times, `depth` levels down to a leaf
    form drawing `leaf`: a few KB that a reader goes through fan**depth times (pdfium and pypdf both).
    Form k is object 6 + k; the page draws the top one."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X %d 0 R >> "
               b"/Font << /F1 5 0 R >> >> /Contents 4 0 R >>" % (6 + depth),
               stream(b"/X Do\n"), b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    for level in range(depth + 1):
        content, xobjects = ((leaf, leaf_xobjects) if level == 0
                             else ((name + b" Do\n") * fan, b"/X %d 0 R" % (5 + level)))
        objects.append(stream(content, extra=b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources "
                                              b"<< /XObject << " + xobjects + b" >> /Font << /F1 5 0 R >> >>"))
    return pdf_file(objects)


@pytest.mark.parametrize("name", [b"/X", b"/#58"], ids=["plain", "escaped-name"])
def test_a_pdf_whose_forms_draw_forms_is_refused_before_a_page_is_read_or_drawn(name):
    """1.5 KB that pdfium spends minutes drawing (10^4 full-page strokes) and 10^6 at depth 6."""
    data = forms_drawing_forms(6, 10, b"0 0 m 612 792 l S\n" * 50, name)
    with pytest.raises(DocumentError) as refused:
        read_documents(data, "bomba.pdf")
    assert "The pages of 'bomba.pdf' inflate to more than 4 MB by page 1" in str(refused.value)


def test_a_form_drawn_by_an_annotation_is_counted_too():
    """pdfium draws annotations' appearances (a stamp, a filled field) with the page; pypdf does not read
    them, so a chain of forms hung on an annotation cost nothing at intake and hours in the worker."""
    chain = forms_drawing_forms(6, 10, b"0 0 m 612 792 l S\n" * 50)
    annotated = chain.replace(b"/Contents 4 0 R >>", b"/Contents 4 0 R /Annots [<< /Type /Annot /Subtype /Stamp "
                                                     b"/Rect [0 0 612 792] /AP << /N 12 0 R >> >>] >>")
    annotated = annotated.replace(b"/XObject << /X 12 0 R >> /Font << /F1 5 0 R >> >> /Contents",
                                  b"/Font << /F1 5 0 R >> >> /Contents")
    with pytest.raises(DocumentError) as refused:
        read_documents(pdf_file(_objects(annotated)), "timbro.pdf")
    assert "The pages of 'timbro.pdf' inflate to more than 4 MB by page 1" in str(refused.value)


def _objects(data: bytes) -> list[bytes]:
    """The objects of a PDF written by pdf_file (edited in place, then written again with a right xref)."""
    body = data[:data.index(b"xref\n")]
    parts = body.split(b" 0 obj\n")[1:]
    return [part[:part.rindex(b"\nendobj\n")] for part in parts]


@pytest.mark.parametrize("inline", [False, True], ids=["image-xobject", "inline-image"])
def test_a_pdf_image_declaring_more_pixels_than_a_scan_is_refused_at_intake(inline):
    """pdfium decodes a page's image whole, at the size it declares: 2 MB of deflated zeros declaring
    45,000 x 45,000 pixels took 2 GB of a worker's memory. The bound images have (DOCUMENT_MAX_PIXELS)
    holds inside a PDF too."""
    width, height = 8000, 6000
    pixels = zlib.compress(b"\0" * (width * height), 9)
    if inline:
        page = stream(b"q 612 0 0 792 0 0 cm BI /W %d /H %d /BPC 8 /CS /G /F /Fl ID " % (width, height) + pixels
                      + b" EI Q", compress=False)
        objects = [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>", page]
    else:
        image = (b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /BitsPerComponent 8 /ColorSpace "
                 b"/DeviceGray /Filter /FlateDecode /Length %d >>\nstream\n" % (width, height, len(pixels))
                 + pixels + b"\nendstream")
        objects = [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 5 0 R >> "
                   b">> /Contents 4 0 R >>", stream(b"q 612 0 0 792 0 0 cm /Im0 Do Q"), image]
    data = pdf_file([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>", *objects])
    with pytest.raises(DocumentError) as refused:
        read_documents(data, "scansione.pdf")
    assert ("'scansione.pdf' (page 1) is 8000 × 6000 pixels, 48 megapixels; the limit is 40"
            in str(refused.value))


def lying_zip(member: str, method: int, inflated: int, declared: int) -> bytes:
    """A ZIP whose one member declares `declared` bytes and inflates to `inflated` (made by hand:
    zipfile writes true sizes)."""
    packer = bz2.BZ2Compressor(9) if method == zipfile.ZIP_BZIP2 else zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\0" * (1 << 24)
    packed = b"".join([packer.compress(chunk) for _ in range(inflated >> 24)] + [packer.flush()])
    name = member.encode()
    local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 46, 0, method, 0, 0, 0, len(packed), declared, len(name), 0)
    central = struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 46, 46, 0, method, 0, 0, 0, len(packed), declared,
                          len(name), 0, 0, 0, 0, 0, 0)
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, 1, 1, len(central) + len(name),
                      len(local) + len(name) + len(packed), 0)
    return local + name + packed + central + name + end


@pytest.mark.parametrize("method", [zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2], ids=["deflate", "bzip2"])
def test_a_zip_member_that_lies_about_its_size_is_never_inflated_whole(method, tmp_path):
    """The declared sizes pass every check (1 KB, packed in less); ZipFile.read() then asks zlib for up
    to 1 GB in one call (bzip2: all of it) before cutting to the declared size. The reader runs here in a
    process allowed 384 MB of memory, with 512 MB behind a 1 KB declaration."""
    archive = tmp_path / "posta.zip"
    archive.write_bytes(lying_zip("scan.pdf", method, inflated=512 << 20, declared=1000))
    child = ("import resource, sys\n"
             "resource.setrlimit(resource.RLIMIT_AS, (384 << 20, 384 << 20))\n"
             "from pathlib import Path\n"
             "from workflows.documents import DocumentError, read_documents\n"
             "try:\n"
             "    read_documents(Path(sys.argv[1]).read_bytes(), 'posta.zip')\n"
             "except DocumentError as exc:\n"
             "    print(exc)\n")
    done = subprocess.run([sys.executable, "-c", child, str(archive)], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "'scan.pdf' in 'posta.zip'" in done.stdout, done.stdout


def test_a_small_pdf_that_draws_much_text_is_refused_before_its_text_is_read():
    """6 KB whose pages share one stream of 4.5 MB of text: pypdf needs a minute and more to read it
    (its own per-stream bound is 64 MB)."""
    content = stream(b"BT /F1 1 Tf (a) Tj ET\n" * 200_000)
    page = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> " \
           b"/Contents 4 0 R >>"
    data = pdf_file([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [5 0 R 6 0 R] /Count 2 >>",
                     b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", content, page, page])
    with pytest.raises(DocumentError) as refused:
        read_documents(data, "testo.pdf")
    assert "The pages of 'testo.pdf' inflate to more than 4 MB by page 1" in str(refused.value)


def test_a_circle_of_forms_is_refused_not_counted_short():
    read_documents(forms_drawing_forms(2, 3, b"/X Do\n"), "cerchio.pdf")  # the leaf holds no /X: harmless
    with pytest.raises(DocumentError) as refused:  # the leaf draws the top form, which draws it again
        read_documents(forms_drawing_forms(2, 3, b"/X Do\n", leaf_xobjects=b"/X 8 0 R"), "cerchio.pdf")
    assert "'cerchio.pdf' is built to exhaust a reader" in str(refused.value)


def test_ordinary_documents_stay_well_within_the_bounds():
    pages = ["\n".join(f"Riga {n} della pagina {p}: importo 1.234,56 EUR, IBAN IT60X0542811101000000123456"
                       for n in range(50)) for p in range(200)]
    [document] = read_documents(text_pdf(pages), "lungo.pdf", pages_per_document=100)[1:]
    assert document.file_pages == 200 and "Riga 49 della pagina 199" in document.text


@pytest.mark.django_db
def test_an_item_claiming_a_billion_pages_fails_alone_and_the_worker_lives(packaged_models, settings, tmp_path):
    """Any JSON item (REST intake, a mapped webhook) may carry `original`, `pages` and `ocr_pages`; the
    source node built its list of page numbers from `pages` as it came."""
    from workflows.engine.documents import OCR_PIN, OCR_REF
    from workflows.engine.nodes.base import RunContext, handler_for
    from workflows.engine.state import ItemState
    from workflows.graph import parse_graph, plan
    from workflows.models import registry

    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    sha = blobs.put_bytes(text_pdf(["Fattura 1"]), facts={"content_type": "application/pdf", "pages": 1})
    graph = parse_graph({"nodes": [{"id": "src", "type": "source.rest", "config": {"fields": ["text"]}},
                                   {"id": "out", "type": "sink.table"}],
                         "edges": [{"source": "src", "source_port": "out", "target": "out", "target_port": "in"}]})
    handler = handler_for("source.rest")()
    handler.prepare(plan(graph).step("src"), RunContext(run_id=1, workflow_id=1,
                                                        models={OCR_PIN: registry.resolve(OCR_REF).pin()}))
    hostile = [{"text": "x", "original": sha, "pages": 10**12, "ocr_pages": [1]},
               {"text": "x", "original": sha, "page_from": 1, "page_to": 10**12, "ocr_pages": [1]},
               {"text": "x", "original": sha, "pages": 1, "ocr_pages": [0, 10**12, "1"]}]
    outcomes = handler.process([ItemState(item_id=n, seq=n, data=item) for n, item in enumerate(hostile, 1)],
                               plan(graph).step("src"))
    assert [o.error_code for o in outcomes] == ["bad_pages"] * 3
    assert "which has 1 page(s)" in outcomes[0].error


@pytest.mark.django_db
def test_an_original_is_saved_under_a_name_that_says_what_it_is(personas, client, settings, tmp_path):
    """A mail attachment's `file_name` is what the sender wrote: it can name a kept PDF
    'Fattura.pdf<RLO>ath.exe' or 'Fattura.hta', which Windows would run as a program when opened."""
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    data = text_pdf(["Fattura 118"])
    sha = blobs.put_bytes(data, facts={"content_type": "application/pdf", "pages": 1})
    graph = {"nodes": [node("src", "source.upload", fields=["text"]), node("out", "sink.table")],
             "edges": [edge("src", "out")]}
    workflow = make_runnable_workflow(personas["designer"], graph, name="Originals")
    client.force_login(personas["business_owner"])
    for hostile, saved in [("Fattura.pdf\u202eexe.hta", "Fattura.pdfexe.hta.pdf"),
                           ("..\\..\\Fattura\r\n.hta", "Fattura.hta.pdf"), ("Fattura 118.PDF", "Fattura 118.PDF")]:
        # an attachment's name as the sender wrote it (only a file read here can be linked: a bare sha cannot)
        items = documents.items_from_file(data, "allegato.pdf")
        assert items[0]["original"] == sha
        items[0]["file_name"] = hostile
        run = create_run(workflow, user=personas["operator"], items=items)
        assert Original.objects.filter(run=run).count() == 1
        response = client.get(f"/runs/{run.pk}/originals/{sha}/")
        assert response.status_code == 200 and b"".join(response.streaming_content) == data
        assert response["Content-Disposition"].startswith("attachment; filename")
        assert saved in response["Content-Disposition"] or saved.replace(" ", "%20") in response["Content-Disposition"]
        assert (response["Content-Type"], response["X-Content-Type-Options"]) == ("application/pdf", "nosniff")


@pytest.mark.django_db
def test_a_sha256_with_a_trailing_newline_is_not_a_sha256(tmp_path, settings):
    settings.ARTIFACTS_DIR = tmp_path
    sha = blobs.put_bytes(b"%PDF-1.7 x", facts={"content_type": "application/pdf", "pages": 1})
    for bad in (sha + "\n", "../" + sha[3:], sha.upper()):
        with pytest.raises(blobs.BlobMissing):
            blobs.ensure_local(bad)
        assert blobs.facts_of(bad) is None


# --- the workers' wake-up FIFOs ---------------------------------------------------------------------------


def test_a_link_or_a_file_named_like_a_fifo_is_never_written(tmp_path):
    """Whoever can write in the FIFO folder can leave `x.fifo` there as a link to the database file:
    every enqueue would then write a NUL over its first byte."""
    folder = tmp_path / "factory.sqlite3.wakeup"
    database = tmp_path / "factory.sqlite3"
    database.write_bytes(b"SQLite format 3\x00" + b"\x10" * 84)
    fifo = wakeup._Fifo(folder)
    try:
        (folder / "planted.fifo").symlink_to(database)
        (folder / "plain.fifo").write_bytes(b"keep")
        assert wakeup.wake_folder(folder) == 1  # the worker's own FIFO only
        assert database.read_bytes().startswith(b"SQLite format 3\x00")
        assert (folder / "plain.fifo").read_bytes() == b"keep"
        assert fifo.drain() is True
    finally:
        fifo.close()


def test_a_fifo_folder_others_may_write_in_is_made_private(tmp_path):
    folder = tmp_path / "factory.sqlite3.wakeup"
    folder.mkdir(mode=0o777)
    folder.chmod(0o777)  # left behind open to everyone (a umask of 0, a hand-made folder)
    fifo = wakeup._Fifo(folder)
    try:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    finally:
        fifo.close()
    (tmp_path / "elsewhere").mkdir()
    link = tmp_path / "linked.sqlite3.wakeup"
    link.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        wakeup._Fifo(link)  # a link is not our folder: the worker polls instead
