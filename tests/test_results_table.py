"""The results page as a table a person can use: one row per document, the inputs and every node's
output in columns, sortable and filterable by any of them, paged in the database; and an item's
trace as one readable table per node, with the raw JSON one click away."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.builders import ledger_decision, ledger_item, ledger_run, make_workflow
from tests.engine.helpers import drain, make_runnable_workflow, tickets
from workflows.engine.launch import create_run
from workflows.models import ReviewTask

pytestmark = pytest.mark.django_db
LABELS = ["billing", "technical", "account"]


def classified_run(user, reviewer, count: int = 9):
    """A triage run as the executor and a reviewer leave it in the ledger: a classifier's label and
    confidence, the route taken, fields extracted on the confident branch, a person's review otherwise."""
    workflow = make_workflow(user)
    run = ledger_run(workflow, user, items_total=count, items_done=count)
    now = timezone.now()
    for i in range(count):
        item = ledger_item(run, i, received=now, finished=now,
                           payload={"text": f"ticket number {i}", "subject": f"subject {i}"})
        label, confidence = LABELS[i % 3], round(0.5 + 0.05 * i, 2)
        ledger_decision(run, item, "cls", label=label, confidence=confidence, model_ref="tickets:v1",
                        output={"scores": {label: confidence}})
        confident = confidence >= 0.8
        ledger_decision(run, item, "route", port="confident" if confident else "else")
        if confident:
            ledger_decision(run, item, "ext", model_ref="patterns",
                            output={"fields": {"iban": [{"value": f"IT60X05428111010000000{i:04d}", "start": 0}]}})
        else:
            ReviewTask.objects.create(run=run, item=item, node="rev", status=ReviewTask.DECIDED,
                                      proposal={"label": label}, result={"label": "account", "reviewed": True},
                                      decided_by=reviewer, decided_at=now)
            ledger_decision(run, item, "rev", output={"label": "account", "reviewed": True})
        ledger_decision(run, item, "out", port="")
    return run


@pytest.fixture
def run(personas, tickets_model):
    return classified_run(personas["designer"], personas["operator"])


@pytest.fixture
def client(personas):
    client = Client()
    client.force_login(personas["operator"])
    return client


def page(client, run, **params):
    response = client.get(f"/runs/{run.pk}/results/", params)
    assert response.status_code == 200, response.content.decode()[:2000]
    return response


def test_the_label_filter_lists_each_label_once(client, run):
    html = page(client, run).content.decode()
    select = re.search(r'<select name="label">(.*?)</select>', html, re.S).group(1)
    options = re.findall(r"<option[^>]*>([^<]*)</option>", select)
    assert sorted(options[1:]) == sorted(LABELS), options


def test_every_input_and_every_node_output_is_a_column(client, run):
    table = page(client, run).context["table"]
    keys = [c["column"].key for c in table["columns"]]
    assert keys[:2] == ["text", "subject"]
    for key in ("cls:label", "cls:confidence", "route:@route", "ext:fields.iban", "rev:label", "rev:@by"):
        assert key in keys, keys
    assert not any(k.startswith("cls:scores") for k in keys)  # numbers for machines stay in the trace
    first, fifth = table["rows"][0], table["rows"][7]
    assert first["cells"]["cls:label"] == "billing" and first["cells"]["cls:confidence"] == 0.5
    assert first["cells"]["route:@route"] == "else" and first["cells"]["rev:@by"] == "operator"
    assert first["cells"]["rev:label"] == "account" and first["cells"]["ext:fields.iban"] is None
    assert fifth["cells"]["ext:fields.iban"] == "IT60X054281110100000000007"
    assert fifth["cells"]["route:@route"] == "confident" and fifth["cells"]["rev:@by"] is None
    html = page(client, run).content.decode()
    assert 'data-column="ext:fields.iban"' in html and "IT60X054281110100000000007" in html


def test_the_page_shows_numbers_the_readers_way(client, run):
    client.cookies.load({"django_language": "it"})
    html = client.get(f"/runs/{run.pk}/results/", HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert "<td>0,85</td>" in html and "<td>0.85</td>" not in html


def seqs(response):
    return [row["item"].seq for row in response.context["table"]["rows"]]


def test_filters_by_status_label_column_text_and_confidence_range(client, run):
    assert seqs(page(client, run, label="technical")) == [1, 4, 7]
    assert seqs(page(client, run, label="technical", node="cls")) == [1, 4, 7]
    assert seqs(page(client, run, label="technical", node="rev")) == []
    assert seqs(page(client, run, field="ext:fields.iban", value="0008")) == [8]
    assert seqs(page(client, run, field="route:@route", value="confid")) == [6, 7, 8]
    assert seqs(page(client, run, field="rev:@by", value="OPER")) == [0, 1, 2, 3, 4, 5]
    assert seqs(page(client, run, field="subject", value="subject 3")) == [3]
    assert seqs(page(client, run, q="number 5")) == [5]
    assert seqs(page(client, run, conf_min="0,6", conf_max="0.7")) == [2, 3, 4]
    assert seqs(page(client, run, conf_min="0.8", label="account")) == [8]
    run.items.filter(seq=2).update(status="dead")
    assert seqs(page(client, run, status="dead")) == [2]


def test_an_unreadable_confidence_says_what_to_type(client, run):
    response = client.get(f"/runs/{run.pk}/results/", {"conf_min": "lots"})
    assert response.status_code == 400 and "0,8 or 0.8" in response.content.decode()


@pytest.mark.parametrize(("sort", "expected"), [
    ("", [0, 1, 2, 3, 4, 5, 6, 7, 8]),
    ("-seq", [8, 7, 6, 5, 4, 3, 2, 1, 0]),
    ("-cls:confidence", [8, 7, 6, 5, 4, 3, 2, 1, 0]),
    ("cls:label", [2, 5, 8, 0, 3, 6, 1, 4, 7]),  # account, billing, technical; seq breaks ties
    ("-subject", [8, 7, 6, 5, 4, 3, 2, 1, 0]),
    ("route:@route", [6, 7, 8, 0, 1, 2, 3, 4, 5]),
    ("ext:fields.iban", [6, 7, 8, 0, 1, 2, 3, 4, 5]),  # items without the field last
    ("rev:@by", [0, 1, 2, 3, 4, 5, 6, 7, 8]),
])
def test_sorts_by_any_column_in_the_database(client, run, sort, expected):
    assert seqs(page(client, run, sort=sort)) == expected


def test_sort_links_keep_the_filters_and_turn_the_order_round(client, run):
    html = page(client, run, label="billing", sort="cls:confidence").content.decode()
    assert 'aria-sort="ascending"' in html
    assert "label=billing&amp;sort=-cls%3Aconfidence" in html


def test_pages_are_cut_in_the_database_and_keep_filters_and_order(client, personas, tickets_model):
    big = classified_run(personas["designer"], personas["operator"], count=120)
    with CaptureQueriesContext(connection) as queries:
        first = page(client, big, label="billing", sort="-cls:confidence")
    assert seqs(first)[:3] == [117, 114, 111]
    assert len(seqs(first)) == 40 and first.context["page"].paginator.count == 40
    items_read = [q["sql"] for q in queries.captured_queries if 'FROM "workflows_item"' in q["sql"]
                  and '"workflows_item"."payload"' in q["sql"].split("FROM")[0]]
    assert items_read and all("LIMIT" in sql for sql in items_read), items_read  # never the whole run
    assert len(queries.captured_queries) < 20
    everything = page(client, big)
    assert len(seqs(everything)) == 50 and everything.context["page"].paginator.num_pages == 3
    html = everything.content.decode()
    assert 'href="?&amp;page=2"' in html
    second = page(client, big, page=3, sort="-seq")
    assert seqs(second) == list(range(19, -1, -1))


def test_the_api_gives_the_same_rows_and_cells(api, personas, run):
    response = api(personas["operator"]).get(f"/api/runs/{run.pk}/items/",
                                             {"label": "billing", "sort": "-cls:confidence", "limit": 2})
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["count"] == 3 and [r["seq"] for r in body["results"]] == [6, 3]
    assert body["results"][0]["cells"]["ext:fields.iban"] == "IT60X054281110100000000006"
    assert "cls:confidence" in body["columns"]
    bad = api(personas["operator"]).get(f"/api/runs/{run.pk}/items/", {"conf_max": "2"})
    assert bad.status_code == 400 and "0,8 or 0.8" in str(bad.json())


def test_an_item_opens_a_table_per_node_with_the_raw_json_a_click_away(client, run):
    item = run.items.get(seq=7)
    response = client.get(f"/runs/{run.pk}/items/{item.pk}/")
    assert response.status_code == 200
    steps = response.context["steps"]
    assert [s["node"] for s in steps] == ["cls", "route", "ext", "out"]
    cls, route, ext = steps[0], steps[1], steps[2]
    assert ("text", "ticket number 7") in cls["input_rows"] and ("label", "technical") in cls["output_rows"]
    assert ("confidence", "0.85") in cls["output_rows"]
    assert ("label", "technical") in ext["input_rows"]  # what went in includes what came before
    assert ("fields.iban", "IT60X054281110100000000007") in ext["output_rows"]
    assert route["port"] == "confident" and cls["model_ref"] == "tickets:v1"
    html = response.content.decode()
    assert html.count('<details class="raw">') == 5 and "<summary>" in html
    assert 'id="node-ext"' in html and "What went in" in html and "What came out" in html
    assert "&quot;fields&quot;" in html  # the raw JSON, escaped


def test_a_reviewed_item_shows_who_decided(client, run):
    item = run.items.get(seq=0)
    html = client.get(f"/runs/{run.pk}/items/{item.pk}/").content.decode()
    assert "<b>operator</b>: label: account" in html and "Decided by operator" in html


def test_a_real_run_fills_the_table_from_the_ledger(client, personas):
    workflow = make_runnable_workflow(personas["designer"])
    run = create_run(workflow, user=personas["operator"], items=tickets(8))
    drain()
    table = page(client, run).context["table"]
    keys = [c["column"].key for c in table["columns"]]
    assert keys[:2] == ["text", "lang"] and "route:@route" in keys and "ext:fields.iban" in keys
    assert table["rows"][0]["cells"]["route:@route"] == "italian"
    assert "IT60" in table["rows"][0]["cells"]["ext:fields.iban"]
    assert seqs(page(client, run, field="ext:fields.email", value="john.smith")) == [1, 5]
    assert seqs(page(client, run, sort="-lang")) == [0, 3, 4, 7, 1, 2, 5, 6]
