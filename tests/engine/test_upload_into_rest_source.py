"""A workflow built for a REST stream (the gallery's Ticket triage) also takes an uploaded file: the
rows enter through its REST source and are checked against that source's fields, as intake checks
posted items. The Run page offers only what the workflow accepts, so it never answers "no source"."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.builders import edge, node
from tests.engine.helpers import drain, make_runnable_workflow
from workflows import statuses
from workflows.models import Item, Run

pytestmark = pytest.mark.django_db

CSV = ("ticket;oggetto;testo;canale\n"
       "T-1;Fattura doppia;La fattura di marzo è stata addebitata due volte;email\n"
       "T-2;Accesso;Non riesco ad accedere al portale clienti;chat\n")


def rest_workflow(user):
    graph = {"nodes": [node("intake", "source.rest", fields=["text", "subject", "channel"]),
                       node("out", "sink.table")],
             "edges": [edge("intake", "out")]}
    return make_runnable_workflow(user, graph, name="Stream")


def operator_client(personas) -> Client:
    client = Client()
    client.force_login(personas["operator"])
    return client


def test_an_upload_runs_through_the_rest_source_after_preview_and_mapping(personas, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    workflow = rest_workflow(personas["designer"])
    client = operator_client(personas)
    page = client.get(f"/workflows/{workflow.pk}/run/").content.decode()
    assert "text, subject, channel" in page  # the fields of the REST source, not a default
    r = client.post(f"/workflows/{workflow.pk}/run/", {"file": SimpleUploadedFile("t.csv", CSV.encode()),
                                                       "preview": "1"})
    assert r.status_code == 200
    assert [(c.field, c.column) for c in r.context["choices"]] == [
        ("text", "testo"), ("subject", "oggetto"), ("channel", "canale")]
    token = r.context["staged"]["token"]
    r = client.post(f"/workflows/{workflow.pk}/run/", {"staged": token, "map_text": "testo",
                                                       "map_subject": "oggetto", "map_channel": "canale"})
    assert r.status_code == 302, r.content.decode()[:800]
    run = Run.objects.get()
    assert (run.origin, run.source_node, run.is_live, run.items_total) == ("upload", "intake", False, 2)
    assert Item.objects.get(run=run, seq=0).payload == {
        "ticket": "T-1", "text": "La fattura di marzo è stata addebitata due volte", "subject": "Fattura doppia",
        "channel": "email"}
    drain()
    run.refresh_from_db()
    assert run.status == statuses.SUCCEEDED and run.items_done == 2


def test_the_rows_are_checked_against_the_rest_sources_fields(personas, settings, tmp_path, api):
    settings.VAR_DIR = tmp_path
    workflow = rest_workflow(personas["designer"])
    lacking = CSV.replace("Accesso", "")
    r = api(personas["operator"]).post(
        f"/api/workflows/{workflow.pk}/runs/",
        {"file": SimpleUploadedFile("t.csv", lacking.encode()),
         "mapping": json.dumps({"text": "testo", "subject": "oggetto", "channel": "canale"})}, format="multipart")
    assert r.status_code == 400 and r.json()["rows"] == [3] and "'subject'" in r.json()["detail"]
    r = api(personas["operator"]).post(
        f"/api/workflows/{workflow.pk}/runs/",
        {"file": SimpleUploadedFile("t.csv", CSV.encode()),
         "mapping": json.dumps({"text": "testo", "subject": "oggetto", "channel": "canale"})}, format="multipart")
    assert r.status_code == 201, r.json()
    assert r.json()["source_node"] == "intake"


def test_json_items_through_the_api_enter_the_rest_source_too(personas, api):
    workflow = rest_workflow(personas["designer"])
    r = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/",
                                       {"items": [{"text": "a", "subject": "b", "channel": "c"}]}, format="json")
    assert r.status_code == 201, r.json()
