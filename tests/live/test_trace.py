"""The per-document trace: from a result row to every decision about the item, in plan order, with
the reviewer's override; finding items by number, by text and by a field's value."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from workflows.models import Decision, Item
from workflows.models.review import ReviewTask

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def done_run(make_run):
    return make_run(40, run_now=True)


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def result_seqs(client: Client, run, **params) -> list[int]:
    response = client.get(f"/runs/{run.pk}/results/", params)
    assert response.status_code == 200
    return [item.seq for item in response.context["page"]]


def test_results_are_found_by_item_number_text_and_field_value(done_run, personas):
    client = logged_in(personas["business_owner"])
    assert result_seqs(client, done_run, q="7") == [7]
    item = Item.objects.get(run=done_run, seq=9)
    assert result_seqs(client, done_run, q=f"id:{item.pk}") == [9]
    assert result_seqs(client, done_run, q="#13") == [13]  # the ticket text ends with "#13"
    italian = result_seqs(client, done_run, field="lang", value="it")
    assert len(italian) == 20 and all(seq % 4 in (0, 3) for seq in italian)
    # A value a node produced, not in the upload: the extractor's e-mail field.
    found = Decision.objects.filter(run=done_run, node="ext").exclude(output={}).first()
    assert found is not None, "the extractor recorded nothing"
    email_items = result_seqs(client, done_run, q="mario.rossi@example.it")
    assert email_items and all(seq % 4 == 0 for seq in email_items)
    assert result_seqs(client, done_run, q="no such text anywhere") == []
    assert (result_seqs(client, done_run, field="lang') OR 1=1 --", value="it")
            == result_seqs(client, done_run))  # ignored


def test_a_result_row_opens_the_items_path_through_every_node(done_run, personas):
    client = logged_in(personas["validator"])
    item = Item.objects.get(run=done_run, seq=4)
    listing = client.get(f"/runs/{done_run.pk}/results/", {"q": "4"}).content.decode()
    assert f'href="/runs/{done_run.pk}/items/{item.pk}/"' in listing
    ReviewTask.objects.create(run=done_run, item=item, node="route", status=ReviewTask.DECIDED,
                              result={"lang": "en", "reviewed": True},
                              decided_by=personas["operator"], decided_at=timezone.now())
    page = client.get(f"/runs/{done_run.pk}/items/{item.pk}/").content.decode()
    rows = page.split('class="table trace-summary"')[1].split("</table>")[0]
    positions = [rows.index(f'<a href="#node-{node}">{node}</a>') for node in ("src", "ext", "route", "out")]
    assert positions == sorted(positions)  # in plan order
    assert "italian" in rows
    assert "<b>operator</b>: lang: en" in rows  # the reviewer's override
    api = client.get(f"/api/runs/{done_run.pk}/items/{item.pk}/").json()
    route = next(d for d in api["decisions"] if d["node"] == "route")
    assert (route["port"] == "italian" and route["review"]["by"] == "operator"
            and route["review"]["result"]["lang"] == "en")
    assert all(d["latency_ms"] >= 0 and d["batch_id"] for d in api["decisions"])
