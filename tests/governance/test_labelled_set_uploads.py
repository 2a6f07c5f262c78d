"""Labelled sets are uploaded like runs: a preview of the rows and a column mapping (text, label,
segments) before anything is saved, on the page and in the API."""

from __future__ import annotations

import html
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from workflows.models import LabelledSet

pytestmark = pytest.mark.django_db

# A label header no rule knows ("Esito"); the channel cell of the second row is empty.
CSV = ("Ticket;Messaggio;Esito;Lingua;Canale\n"
       "T-1;La fattura di marzo è sbagliata;billing;it;email\n"
       "T-2;The app crashes at login;technical;en;\n"
       "T-3;Non riesco a cambiare la password;account;it;phone\n").encode()


def test_the_page_previews_then_saves_with_the_chosen_columns(personas, client):
    client.force_login(personas["trainer"])
    preview = client.post("/models/labelled-sets/", {"file": SimpleUploadedFile("tickets.csv", CSV),
                                                     "name": "Tickets IT", "preview": "1"})
    page = html.unescape(preview.content.decode())
    assert preview.status_code == 200 and not LabelledSet.objects.exists()
    assert "La fattura di marzo è sbagliata" in page and "Non riesco a cambiare la password" in page
    assert '<option value="Messaggio" selected' in page  # text guessed by its Italian name
    assert 'name="map_label"' in page and 'name="segments"' in page
    token = page.split('name="staged" value="', 1)[1].split('"', 1)[0]
    saved = client.post("/models/labelled-sets/", {"staged": token, "name": "Tickets IT", "map_text": "Messaggio",
                                                   "map_label": "Esito", "segments": ["Lingua", "Canale"]})
    assert saved.status_code == 302
    labelled = LabelledSet.objects.get(name="tickets-it")
    assert labelled.labels == ["account", "billing", "technical"]
    assert labelled.items[0] == {"text": "La fattura di marzo è sbagliata", "label": "billing",
                                 "segment": {"language": "it", "channel": "email"}}
    assert labelled.items[1]["segment"] == {"language": "en"}  # an empty segment cell is allowed
    assert "T-1" not in json.dumps(labelled.items)  # the ticket column was not chosen as a segment


def test_the_page_says_which_column_to_choose_when_the_label_cannot_be_guessed(personas, client):
    client.force_login(personas["trainer"])
    response = client.post("/models/labelled-sets/", {"file": SimpleUploadedFile("tickets.csv", CSV), "name": "x"})
    page = html.unescape(response.content.decode())
    assert response.status_code == 400 and "no 'label' column" in page
    assert 'name="map_label"' in page and 'name="staged"' in page  # the mapping form, with the file kept
    assert not LabelledSet.objects.exists()


def test_the_api_previews_and_takes_a_mapping(personas, api):
    client = api(personas["trainer"])
    preview = client.post("/api/labelled-sets/", {"file": SimpleUploadedFile("t.csv", CSV), "preview": "true"},
                          format="multipart")
    assert preview.status_code == 200 and not LabelledSet.objects.exists()
    assert preview.data["columns"] == ["Ticket", "Messaggio", "Esito", "Lingua", "Canale"]
    assert preview.data["rows"][0]["Messaggio"] == "La fattura di marzo è sbagliata"
    assert preview.data["suggested_mapping"]["text"] == "Messaggio"
    mapping = {"text": "Messaggio", "label": "Esito", "segments": ["Lingua", "Canale"]}
    created = client.post("/api/labelled-sets/", {"file": SimpleUploadedFile("t.csv", CSV), "name": "api-set",
                                                  "mapping": json.dumps(mapping)}, format="multipart")
    assert created.status_code == 201, created.data
    assert LabelledSet.objects.get(name="api-set").items[2]["segment"] == {"language": "it", "channel": "phone"}
    wrong = client.post("/api/labelled-sets/", {"file": SimpleUploadedFile("t.csv", CSV), "name": "bad",
                                                "mapping": json.dumps({"text": "Messaggio", "label": "Nope"})},
                        format="multipart")
    assert wrong.status_code == 400 and "Nope" in wrong.data["detail"]


def test_a_label_column_named_as_people_name_it_is_guessed_and_not_offered_as_a_segment(personas, api):
    named = CSV.replace(b"Esito", b"Categoria")
    preview = api(personas["trainer"]).post("/api/labelled-sets/", {"file": SimpleUploadedFile("t.csv", named),
                                                                    "preview": "true"}, format="multipart")
    suggested = preview.data["suggested_mapping"]
    assert (suggested["text"], suggested["label"]) == ("Messaggio", "Categoria")
    assert "Categoria" not in suggested["segments"]
