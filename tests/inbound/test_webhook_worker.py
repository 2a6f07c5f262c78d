"""End to end: signed deliveries to /hooks/<slug>/ become items of the workflow's live webhook run,
which a real `run_worker` subprocess processes through every node; a replayed delivery adds nothing."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from tests.engine.test_worker import Workers
from tests.inbound.webhook_helpers import deliver, make_source, make_webhook_workflow
from workflows.models import Decision, Item, Run

pytestmark = [pytest.mark.worker, pytest.mark.slow]


@pytest.fixture
def worker(transactional_db, tmp_path):
    pool = Workers(tmp_path, ENGINE_INTAKE_FLUSH_SECONDS="0.2")
    pool.start("hooks")
    yield pool
    pool.stop()


def test_signed_deliveries_are_processed_by_a_real_worker(personas, worker):
    workflow = make_webhook_workflow(personas["designer"])
    source, secret = make_source(workflow, personas["designer"], items_pointer="/tickets",
                                 mapping={"text": "/body", "lang": "/lang"})
    tickets = [{"body": "Rimborso di EUR 12,50 a mario.rossi@example.it", "lang": "it"},
               {"body": "Charged twice, write to john@example.com", "lang": "en"},
               {"body": "IBAN IT60 X054 2811 1010 0000 0123 456", "lang": "it"}]
    client = Client()
    first = deliver(client, source, {"tickets": tickets[:2]}, secret, key="evt-1")
    second = deliver(client, source, {"tickets": tickets[2:]}, secret, key="evt-2")
    replay = deliver(client, source, {"tickets": tickets[:2]}, secret, key="evt-1")
    assert [first.status_code, second.status_code, replay.status_code] == [202, 202, 202]
    assert replay.json() == first.json()
    ids = first.json()["item_ids"] + second.json()["item_ids"]
    run = Run.objects.get(pk=first.json()["run"])
    assert run.origin == "webhook" and run.items_total == 3

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and Item.objects.filter(pk__in=ids, status=Item.DONE).count() < 3:
        time.sleep(0.2)
    assert Item.objects.filter(pk__in=ids, status=Item.DONE).count() == 3, worker.logs()
    reached = set(Decision.objects.filter(run=run, node="out").values_list("item_id", flat=True))
    assert reached == set(ids)
    extracted = Decision.objects.get(run=run, node="ext", item_id=ids[0]).output
    assert "mario.rossi@example.it" in str(extracted)
    assert Item.objects.filter(run=run).count() == 3  # the replay created nothing
