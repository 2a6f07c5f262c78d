"""Numbers both ways in the user's locale, and exports the people who open them can use: a decimal
comma read right in every decimal input, money and durations shown the locale's way, CSV with a BOM
and the Italian dialect, XLSX, outputs flattened into columns, every item there with its status."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import translation

from tests.builders import edge, make_workflow, node
from tests.engine.helpers import drain, make_runnable_workflow
from workflows import exports, formats
from workflows.models import Baseline, Run

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("typed", "language", "value"), [
    ("28,50", "it", "28.50"), ("28.50", "it", "28.50"), ("28,50", "en", "28.50"), ("28.50", "en", "28.50"),
    ("1.250,00", "it", "1250.00"), ("1,250.00", "en", "1250.00"), ("1.250,00", "en", "1250.00"),
    ("1.250", "it", "1250"), ("1,250", "en", "1250"), ("1,250", "it", "1.250"), ("1.250", "en", "1.250"),
    ("0,125", "it", "0.125"), ("0.125", "it", "0.125"), ("1.250.000", "it", "1250000"), ("€ 28,5", "it", "28.5"),
    ("1 250,5", "it", "1250.5"), ("-3,5", "it", "-3.5"), (",5", "it", "0.5"), ("7", "it", "7"),
])
def test_a_typed_number_is_read_as_its_writer_meant_it(typed, language, value):
    assert formats.parse_decimal(typed, language) == Decimal(value)


@pytest.mark.parametrize("typed", ["28,50,1", "1.25.0", "abc", "1,2,3", "12,5.3", "--3", "1e5", "NaN", "", "1.2345.6"])
def test_a_malformed_number_is_refused_with_an_example_of_what_to_type(typed):
    with pytest.raises(ValueError, match="28,50"):
        formats.parse_decimal(typed, "it")


BASELINE = {"manual_minutes": "1.250", "hourly_cost": "28,50", "manual_accuracy": "95,5", "sla_hours": "24",
            "review_minutes": "2", "compute_eur_per_cpu_hour": "0,05", "grid_g_co2_per_kwh": "1.250,5",
            "watts_per_core": "20"}


@pytest.mark.parametrize("language", ["it", "en"])
def test_the_baseline_form_stores_a_decimal_comma_as_a_decimal(personas, language):
    workflow = make_workflow(personas["designer"], name="Mine")
    owner = Client(headers={"accept-language": language})
    owner.force_login(personas["business_owner"])
    response = owner.post(f"/workflows/{workflow.pk}/kpis/baseline/", BASELINE)
    assert response.status_code == 302, re.findall(r"(?:error|flag).{0,300}", response.content.decode())
    baseline = Baseline.objects.get(workflow=workflow)
    assert baseline.hourly_cost == Decimal("28.50")  # was stored as 2850
    assert baseline.manual_accuracy == Decimal("95.5") and baseline.compute_eur_per_cpu_hour == Decimal("0.05")
    # "1.250" groups thousands in Italian, and is one and a quarter in English.
    assert baseline.manual_minutes == (Decimal("1250") if language == "it" else Decimal("1.25"))
    assert baseline.grid_g_co2_per_kwh == Decimal("1250.5")
    page = owner.get(f"/workflows/{workflow.pk}/kpis/baseline/").content.decode()
    shown = "28,50" if language == "it" else "28.50"
    assert f'value="{shown}"' in page and 'inputmode="decimal"' in page and 'type="number"' not in page


def test_a_malformed_baseline_figure_says_what_to_type_and_stores_nothing(personas):
    workflow = make_workflow(personas["designer"], name="Mine")
    owner = Client()
    owner.force_login(personas["business_owner"])
    response = owner.post(f"/workflows/{workflow.pk}/kpis/baseline/", {**BASELINE, "hourly_cost": "28,50,1"})
    assert response.status_code == 400 and "28,50 or 28.50" in response.content.decode()
    assert not Baseline.objects.exists()


def test_the_api_reads_a_decimal_comma_sent_as_text(personas, api):
    workflow = make_workflow(personas["designer"], name="Mine")
    response = api(personas["business_owner"]).put(f"/api/workflows/{workflow.pk}/kpis/baseline/",
                                                   {**BASELINE, "manual_minutes": 6, "sla_hours": 24.0},
                                                   format="json", HTTP_ACCEPT_LANGUAGE="it")
    assert response.status_code == 200, response.json()
    assert Baseline.objects.get(workflow=workflow).hourly_cost == Decimal("28.50")


def test_money_shares_and_durations_are_shown_the_locale_way():
    with translation.override("en"):
        assert formats.money(1250) == "€ 1,250.00" and formats.money(0.004) == "< € 0.01"
        assert formats.share(0.818) == "81.8 %"
    with translation.override("it"):
        assert formats.share(0.818) == "81,8 %" and formats.number(1250.5) == "1.250,5"
    assert formats.duration(20 / 3600) == "20 s" and formats.duration(0.5) == "30 min"  # not "0 min"
    assert formats.money(None) == "—" and formats.duration(None) == "—"


# --- exports ----------------------------------------------------------------------------------------


def parked_graph():
    """upload → extract → route by language: Italian items wait for a person, the rest go to the table."""
    return {"nodes": [node("src", "source.upload", fields=["text", "lang"]),
                      node("ext", "extract", patterns=["iban", "amount", "email"], entities=[]),
                      node("route", "route", label_field="lang", branches=[{"name": "italian", "labels": ["it"]}]),
                      node("rev", "review"), node("out", "sink.table")],
            "edges": [edge("src", "ext"), edge("ext", "route"), edge("route", "rev", source_port="italian"),
                      edge("route", "out", source_port="else"), edge("rev", "out")]}


ITEMS = [
    {"ticket_id": "T-1", "text": "Pay 1,250.50 EUR to IT60X0542811101000000123456, mail a@b.it", "lang": "en",
     "channel": "mail"},
    {"ticket_id": "T-2", "text": "Fattura di 28,50 euro", "lang": "it", "channel": "web"},
    {"ticket_id": "T-3", "text": "No fields here", "lang": "en", "channel": "phone"},
]


@pytest.fixture
def finished_run(personas, api):
    workflow = make_runnable_workflow(personas["designer"], parked_graph())
    response = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/", {"items": ITEMS}, format="json")
    assert response.status_code == 201, response.json()
    drain()
    return Run.objects.get(pk=response.data["id"])


def read_csv(response, delimiter: str) -> list[dict[str, str]]:
    raw = b"".join(response.streaming_content)
    assert raw.startswith("\ufeff".encode()), "no BOM: Excel would guess the encoding wrong"
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline=""), delimiter=delimiter))


def test_the_italian_csv_keeps_every_item_and_column_and_flattens_the_fields(personas, api, finished_run):
    response = api(personas["operator"]).get(f"/api/runs/{finished_run.pk}/export/", {"as": "csv"},
                                             HTTP_ACCEPT_LANGUAGE="it")
    assert response.status_code == 200
    rows = {r["ticket_id"]: r for r in read_csv(response, ";")}
    assert set(rows) == {"T-1", "T-2", "T-3"}  # the parked item is there too, saying so
    assert rows["T-2"]["item_status"] == "parked" and rows["T-1"]["item_status"] == "done"
    assert rows["T-1"]["channel"] == "mail"  # a column no node reads is kept, to join back
    assert rows["T-1"]["fields.iban"] == "IT60X0542811101000000123456"
    assert rows["T-1"]["fields.email"] == "a@b.it"
    assert "fields" not in rows["T-1"]  # no JSON blob column


def test_a_csv_number_takes_the_dialects_decimal_mark_and_nested_outputs_their_own_columns():
    row = {"seq": 1, "confidence": 0.875, "scores": {"billing": 0.5, "other": 0.25}, "ocr": {"lines": 3},
           "fields": {"iban": [{"value": "IT60X0542811101000000123456", "start": 0}], "date": []},
           "embedding": [0.1] * 64, "tags": ["a", "b"]}
    text = "".join(exports.csv_chunks(iter([row]), exports.DIALECTS["it"]))
    header, values = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    cells = dict(zip(header, values, strict=True))
    assert cells["confidence"] == "0,875" and cells["scores.billing"] == "0,5" and cells["ocr.lines"] == "3"
    assert cells["fields.iban"] == "IT60X0542811101000000123456" and cells["fields.date"] == ""
    assert cells["tags"] == "a; b" and cells["embedding"].startswith("[0.1, ")  # a vector stays one cell


def test_the_csv_dialect_is_a_choice_of_the_download(personas, api, client, finished_run):
    english = api(personas["operator"]).get(f"/api/runs/{finished_run.pk}/export/", {"as": "csv", "dialect": "en"},
                                            HTTP_ACCEPT_LANGUAGE="it")
    assert {r["ticket_id"] for r in read_csv(english, ",")} == {"T-1", "T-2", "T-3"}
    client.force_login(personas["operator"])
    italian = client.get(f"/runs/{finished_run.pk}/download.csv", {"dialect": "it"})
    assert len(read_csv(italian, ";")) == 3
    wrong = api(personas["operator"]).get(f"/api/runs/{finished_run.pk}/export/", {"as": "csv", "dialect": "fr"})
    assert wrong.status_code == 404 and "'it'" in wrong.json()["detail"]


def test_the_xlsx_export_has_numbers_as_numbers_and_formulas_neutralised(personas, api, settings, tmp_path):
    from openpyxl import load_workbook

    workflow = make_runnable_workflow(personas["designer"], parked_graph())
    items = [*ITEMS, {"ticket_id": "=HYPERLINK(\"http://x\")", "text": "x", "lang": "en", "channel": "web"}]
    response = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/", {"items": items}, format="json")
    drain()
    export = api(personas["operator"]).get(f"/api/runs/{response.data['id']}/export/", {"as": "xlsx"})
    assert export.status_code == 200 and export["Content-Type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(b"".join(export.streaming_content)), read_only=True).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    header, body = rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]
    assert len(body) == 4 and "fields.iban" in header and "item_status" in header
    assert {r["ticket_id"] for r in body} >= {"T-1", "T-2", "'=HYPERLINK(\"http://x\")"}
    assert all(isinstance(r["seq"], int) for r in body)


def test_live_figures_are_short_and_in_the_locale():
    with translation.override("it"):
        assert [formats.short(v) for v in (0.4234, 3.21, 57.4, 1234.0, None)] == ["0,42", "3,2", "57", "1.234", "–"]
    with translation.override("en"):
        assert formats.short(1234.0) == "1,234"


def test_a_time_kept_as_an_iso_string_is_shown_in_the_locale_with_its_zone():
    from workflows.templatetags.factory import when

    with translation.override("it"):
        # Evidence and signed packs keep their times in JSON (ISO strings with microseconds, in UTC).
        assert when("2026-12-05T12:12:29.840358+00:00") == "05/12/2026 13:12 CET"
    assert when("not a time") == "not a time"


@pytest.mark.parametrize(("value", "it", "en"), [
    (123_456_789.12, "123456789,12", "123456789.12"),  # an invoice total over 100 million keeps its cents
    (1_234_567_890_123.45, "1234567890123,45", "1234567890123.45"),
    (0.1 + 0.2, "0,3", "0.3"),  # float noise is not printed
    (28.5, "28,5", "28.5"),
])
def test_a_csv_amount_keeps_every_cent_in_both_dialects(value, it, en):
    assert exports.csv_cell(value, exports.DIALECTS["it"]) == it
    assert exports.csv_cell(value, exports.DIALECTS["en"]) == en
