"""Exports keep the firm's data: an upload's unmapped columns (its own ticket id, channel, subject)
reach every exported row, parked and failed items included, so results join back to the records."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.engine.helpers import drain, make_runnable_workflow
from tests.engine.test_run_states import review_graph
from workflows.models import Run

pytestmark = pytest.mark.django_db

ROWS = [(f"TCK-{1000 + i}", "email" if i % 2 else "chat", f"Subject {i}", f"Please help with order {i}",
         "it" if i % 3 == 0 else "en") for i in range(9)]
CSV = "ticket_id;channel;subject;body;language\n" + "".join(";".join(r) + "\n" for r in ROWS)


def test_an_export_carries_every_unmapped_column_so_rows_join_back(personas, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    workflow = make_runnable_workflow(personas["designer"], review_graph())
    client = Client()
    client.force_login(personas["operator"])
    r = client.post(f"/workflows/{workflow.pk}/run/", {"file": SimpleUploadedFile("tickets.csv", CSV.encode()),
                                                       "map_text": "body", "map_lang": "language"})
    assert r.status_code == 302, r.content.decode()[:500]
    run = Run.objects.get()
    drain()  # the Italian ones wait for review: they must be in the export all the same
    export = b"".join(client.get(f"/runs/{run.pk}/download.csv?dialect=en").streaming_content).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(export)))
    assert {"ticket_id", "channel", "subject", "text", "lang", "item_status"} <= set(rows[0])
    mine = {r[0]: r for r in ROWS}
    joined = {row["ticket_id"]: row for row in rows}
    assert set(joined) == set(mine) and len(rows) == len(ROWS)
    for ticket, (_, channel, subject, body, language) in mine.items():
        row = joined[ticket]
        assert (row["channel"], row["subject"], row["text"], row["lang"]) == (channel, subject, body, language)
        assert row["item_status"] == ("parked" if language == "it" else "done")
