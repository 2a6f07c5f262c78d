"""Files to items: each bad file kind gives a clear error naming the rows, and nothing is imported."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.engine.helpers import make_runnable_workflow
from workflows.engine.intake import IntakeError, load_items, parse
from workflows.models import Item, Run


def test_csv_with_bom_semicolons_and_a_mapping():
    data = "\ufeffbody;lingua\nCiao, fattura 12;it\nHello;en\n".encode()
    parsed, items = load_items(data, "t.csv", {"text": "body", "lang": "lingua"}, ["text", "lang"])
    assert parsed.delimiter == ";" and parsed.encoding == "utf-8-sig"
    assert items == [{"text": "Ciao, fattura 12", "lang": "it"}, {"text": "Hello", "lang": "en"}]


def test_unmapped_columns_travel_under_their_own_names_and_a_mapped_name_wins():
    data = b"ticket_id,channel,body,text\nT-1,email,Refund please,old note\nT-2,chat,Login fails,\n"
    _, items = load_items(data, "t.csv", {"text": "body"}, ["text"])
    assert items == [{"ticket_id": "T-1", "channel": "email", "text": "Refund please"},
                     {"ticket_id": "T-2", "channel": "chat", "text": "Login fails"}]


def test_an_unmapped_column_is_bounded_like_a_mapped_one(settings):
    data = json.dumps({"id": "x" * 1_000_001, "body": "short"}).encode()
    with pytest.raises(IntakeError, match="'id' is longer"):
        load_items(data, "t.jsonl", {"text": "body"}, ["text"])


def test_latin1_csv_is_detected():
    data = "text\nRicevuta per l'attività di perché città\n".encode("latin-1")
    parsed, items = load_items(data, "t.csv")
    assert "attività" in items[0]["text"] and parsed.encoding != "utf-8"


def test_preview_shows_the_first_rows():
    data = "text,n\n" + "".join(f"row {i},{i}\n" for i in range(30))
    preview = parse(data.encode(), "t.csv").preview(5)
    assert preview["columns"] == ["text", "n"] and len(preview["rows"]) == 5 and preview["total_rows"] == 30


@pytest.mark.parametrize(("data", "name", "message"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "t.csv", "NUL bytes"),
    (bytes(range(128, 256)) * 40, "t.csv", "encoding cannot be recognised"),
    (b"", "t.csv", "empty"),
    (b"text\n", "t.csv", "header but no rows"),
    (b"text,lang\nok,en\nbad,en,extra\nfine,it\nalso,bad,row\n", "t.csv", "Rows 3, 5"),
    (b'text\n"unterminated\n', "t.csv", "malformed"),
    (b'{"text": "a"}\nnot json\n{"text": "c"}\n[1]\n', "t.jsonl", "Rows 2, 4"),
    (b"text\nhello\n", "t.pdf", "not a CSV, JSONL or XLSX"),
    (b"not a zip", "t.xlsx", "not a valid XLSX"),
])
def test_bad_files_are_refused_with_a_clear_error(data, name, message):
    with pytest.raises(IntakeError, match=message):
        load_items(data, name)


def test_missing_column_and_empty_required_field_name_the_rows():
    with pytest.raises(IntakeError, match="no column 'body'"):
        load_items(b"text,lang\nhi,en\n", "t.csv", {"text": "body"})
    with pytest.raises(IntakeError, match="Map a column to 'lang'"):
        load_items(b"text\nhi\n", "t.csv", {"text": "text"}, ["text", "lang"])
    with pytest.raises(IntakeError, match="Rows 3, 4: 'text' is empty") as info:
        load_items(b"text,lang\nhi,en\n,it\n  ,en\n", "t.csv")
    assert info.value.rows == [3, 4]


def test_too_big_is_refused(settings):
    settings.ENGINE_UPLOAD_MAX_BYTES = 100
    with pytest.raises(IntakeError, match="limit is"):
        load_items(b"text\n" + b"x" * 200 + b"\n", "t.csv")


def _xlsx(rows: list[list]) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_rows_become_items():
    _, items = load_items(_xlsx([["text", "amount"], ["Invoice", 12.5], [None, None], ["Second", 3]]), "t.xlsx")
    assert items == [{"text": "Invoice", "amount": 12.5}, {"text": "Second", "amount": 3}]


def test_an_xlsx_zip_bomb_is_refused_before_it_is_opened(settings):
    settings.ENGINE_UPLOAD_MAX_BYTES = 1_000_000
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * 25_000_000)
    assert len(out.getvalue()) < 100_000
    with pytest.raises(IntakeError, match="zip bomb"):
        load_items(out.getvalue(), "bomb.xlsx")


@pytest.mark.django_db
def test_a_bad_upload_imports_nothing_and_lists_the_rows(personas, api):
    workflow = make_runnable_workflow(personas["designer"])
    bad = SimpleUploadedFile("t.csv", b"text,lang\nok,en\nbad,en,x\n")
    response = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/", {"file": bad}, format="multipart")
    assert response.status_code == 400 and response.data["rows"] == [3] and response.data["imported"] == 0
    assert not Run.objects.exists() and not Item.objects.exists()
    good = SimpleUploadedFile("t.csv", b"text,lang\nok,en\nfine,it\n")
    response = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/", {"file": good}, format="multipart")
    assert response.status_code == 201 and response.data["items_total"] == 2


@pytest.mark.django_db
def test_rest_intake_appends_to_the_live_run_and_flushes_the_tail(personas, api, settings):
    from tests.builders import edge, node
    from tests.engine.helpers import drain, pattern_graph
    from workflows.engine.monitor import flush_live_runs

    settings.ENGINE_SHARD_SIZE = 3
    settings.ENGINE_INTAKE_FLUSH_SECONDS = 0
    graph = pattern_graph()
    graph["nodes"][0] = node("src", "source.rest", fields=["text", "lang"])
    workflow = make_runnable_workflow(personas["designer"], graph)
    client = api(personas["operator"])
    first = client.post(f"/api/workflows/{workflow.pk}/intake/",
                        {"items": [{"text": f"t{i}", "lang": "en"} for i in range(4)]}, format="json")
    assert first.status_code == 202 and len(first.data["item_ids"]) == 4
    second = client.post(f"/api/workflows/{workflow.pk}/intake/", {"items": [{"text": "t4", "lang": "it"}]},
                         format="json")
    assert second.data["run"] == first.data["run"]
    run = Run.objects.get(pk=first.data["run"])
    assert run.is_live and run.shards.count() == 1  # one full shard; the tail waits
    assert flush_live_runs() == 1
    drain()
    run.refresh_from_db()
    assert run.items_done == 5 and run.status == "running"  # a live run stays open
    refused = client.post(f"/api/workflows/{workflow.pk}/intake/",
                          {"items": [{"text": "ok", "lang": "en"}, {"lang": "en"}]}, format="json")
    assert refused.status_code == 400 and refused.json()["rows"] == [1]
    assert refused.json()["detail"].startswith("item 1 lacks text.")  # names the missing field, not every field
    _ = edge


@pytest.mark.django_db
def test_rest_intake_refuses_a_field_longer_than_an_upload_cell_may_be(personas, api):
    from tests.builders import node
    from tests.engine.helpers import pattern_graph
    from workflows.engine.intake import MAX_CELL_CHARS

    graph = pattern_graph()
    graph["nodes"][0] = node("src", "source.rest", fields=["text", "lang"])
    workflow = make_runnable_workflow(personas["designer"], graph)
    client = api(personas["operator"])
    items = [{"text": "fine", "lang": "en"}, {"text": "x" * (MAX_CELL_CHARS + 1), "lang": "en"}]
    for path in (f"/api/workflows/{workflow.pk}/intake/", f"/api/workflows/{workflow.pk}/runs/"):
        refused = client.post(path, {"items": items}, format="json")
        assert refused.status_code == 400, (path, refused.status_code)
        assert "item 1" in str(refused.json()) and "'text'" in str(refused.json())
    assert not Item.objects.exists()


def test_csv_delimiter_detection_is_linear_on_adversarial_text():
    """csv.Sniffer took 20 s of CPU on 64 KB of '",' (a request could pin a web process)."""
    import signal

    def expire(signum, frame):
        raise TimeoutError("delimiter detection is not linear on this input")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, 5.0)  # a linear pass takes milliseconds
    try:
        for text in ('text\n' + '",' * 200_000, 'text\n' + '";' * 200_000):
            with pytest.raises(IntakeError):  # not a well-formed CSV: refused with a reason, quickly
                parse(text.encode(), "adversarial.csv")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("data, delimiter", [
    (b"text;lang\n\"a; b\";it\nc;en\n", ";"),
    (b"text\tlang\na, b\tit\n", "\t"),
    (b"text|lang\na, b; c|it\n", "|"),
    (b"text,lang\n\"a; b|c\",it\n", ","),
    (b"\"multi\nline\";lang\n\"x;y\";it\n", ";"),
])
def test_the_delimiter_is_the_one_that_splits_every_line_alike(data, delimiter):
    assert parse(data, "t.csv").delimiter == delimiter


def test_a_one_column_file_keeps_its_commas_and_semicolons():
    parsed = parse(b"text\nonly one column, with a comma; and more\nsecond\n", "t.csv")
    assert parsed.columns == ["text"]
    assert [values["text"] for _, values in parsed.rows] == ["only one column, with a comma; and more", "second"]
