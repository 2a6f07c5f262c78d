"""The column mapping guesses right: by name in Italian and English, by content, and never a column
of identifiers for the text a model reads."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.engine.helpers import make_runnable_workflow
from workflows.engine.intake import parse
from workflows.engine.mapping import describe, guess, looks_like_id

PROSE = ["La fattura di marzo è stata addebitata due volte", "Non riesco ad accedere al portale clienti",
         "Vorrei cambiare il metodo di pagamento", "Il pacco non è ancora arrivato a destinazione"]


def rows(**columns: list) -> list[dict]:
    return [dict(zip(columns, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def chosen(fields: list[str], data: list[dict]) -> dict[str, str]:
    return {c.field: c.column for c in guess(fields, list(data[0]), data)}


def test_italian_and_english_names_are_matched():
    data = rows(id=["1", "2", "3", "4"], oggetto=["a b", "c d", "e f", "g h"], testo=PROSE,
                canale=["email", "chat", "email", "web"], lingua=["it", "it", "en", "it"])
    assert chosen(["text", "subject", "channel", "lang"], data) == {
        "text": "testo", "subject": "oggetto", "channel": "canale", "lang": "lingua"}
    data = rows(ticket_id=["T-1", "T-2", "T-3", "T-4"], Message=PROSE, Subject=["x y"] * 4)
    assert chosen(["text", "subject"], data) == {"text": "Message", "subject": "Subject"}


def test_the_first_column_is_not_taken_for_text_when_it_holds_ids():
    data = rows(id=["1001", "1002", "1003", "1004"], messaggio_cliente=PROSE)
    assert chosen(["text"], data) == {"text": "messaggio_cliente"}


def test_free_text_is_found_by_content_when_no_name_fits():
    data = rows(ticket=["A7F3", "B9Q1", "C2Z8", "D4K5"], colonna_b=PROSE, colonna_c=["x", "y", "x", "y"])
    assert chosen(["text"], data) == {"text": "colonna_b"}


def test_a_column_named_text_that_holds_ids_is_refused_for_text():
    data = rows(text=["TCK-0001", "TCK-0002", "TCK-0003", "TCK-0004"], descrizione=PROSE)
    assert chosen(["text"], data) == {"text": "descrizione"}
    only_ids = rows(codice=["X1", "X2", "X3", "X4"], numero=["1", "2", "3", "4"])
    assert chosen(["text"], only_ids) == {"text": ""}  # left for a person to choose


def test_a_language_column_is_found_by_its_codes_and_each_column_is_used_once():
    data = rows(body=PROSE, colonna=["it", "en", "it", "it"], note=PROSE)
    assert chosen(["text", "lang"], data) == {"text": "body", "lang": "colonna"}


@pytest.mark.parametrize(("name", "values", "expected"), [
    ("id", ["1", "2", "3"], True), ("x", ["550e8400-e29b-41d4", "6fa459ea-ee8a-3ca4"], True),
    ("stato", ["aperto", "chiuso", "aperto"], False), ("body", PROSE, False), ("n", ["12", "12", "12"], True),
])
def test_what_looks_like_an_identifier(name, values, expected):
    assert looks_like_id(name, values) is expected


def test_samples_are_the_first_distinct_values_shortened():
    data = rows(body=["a" * 60, "a" * 60, "b", "c", "d"])
    (column,) = describe(["body"], data)
    assert column.samples == ("a" * 40 + "…", "b", "c")


@pytest.mark.django_db
def test_the_mapping_form_preselects_the_guess_and_shows_sample_values(personas, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    workflow = make_runnable_workflow(personas["designer"])  # source fields: text, lang
    csv_text = "id;messaggio;lingua\n" + "".join(f"{100 + i};{p};it\n" for i, p in enumerate(PROSE))
    client = Client()
    client.force_login(personas["operator"])
    r = client.post(f"/workflows/{workflow.pk}/run/",
                    {"file": SimpleUploadedFile("t.csv", csv_text.encode()), "preview": "1"},
                    HTTP_ACCEPT_LANGUAGE="en")
    html = r.content.decode()
    assert r.status_code == 200
    text_select = html[html.index('name="map_text"'):].split("</select>")[0]
    assert '<option value="messaggio" selected>' in text_select
    assert '<option value="id" selected>' not in text_select and '<option value="">' in text_select
    assert "100 · 101 · 102" in text_select  # the id column's samples say what it is
    lang_select = html[html.index('name="map_lang"'):].split("</select>")[0]
    assert '<option value="lingua" selected>' in lang_select
    assert parse(csv_text.encode(), "t.csv").columns == ["id", "messaggio", "lingua"]


@pytest.mark.django_db
def test_the_api_preview_suggests_the_mapping(personas, api):
    workflow = make_runnable_workflow(personas["designer"])
    csv_text = "id,descrizione\n" + "".join(f"{100 + i},{p}\n" for i, p in enumerate(PROSE))
    r = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/preview/",
                                       {"file": SimpleUploadedFile("t.csv", csv_text.encode())}, format="multipart")
    assert r.status_code == 200 and r.json()["suggested_mapping"] == {"text": "descrizione"}
