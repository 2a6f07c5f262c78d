"""Run states that tell the truth: a run whose remaining items all wait for people says "waiting for
review" with their count on every page and in the API, and finishes by itself when the last is decided."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tests.builders import PASSWORD, edge, node
from tests.engine.helpers import drain, make_runnable_workflow
from workflows import statuses
from workflows.engine import launch, monitor
from workflows.models.review import ReviewTask

pytestmark = pytest.mark.django_db


def review_graph() -> dict:
    """Items marked lang=it go to a person; the others straight to the table."""
    return {
        "nodes": [node("src", "source.upload", fields=["text", "lang"]),
                  node("route", "route", label_field="lang", branches=[{"name": "it", "labels": ["it"]}]),
                  node("rev", "review", queue="italian"), node("out", "sink.table")],
        "edges": [edge("src", "route"), edge("route", "rev", source_port="it"),
                  edge("route", "out", source_port="else"), edge("rev", "out")],
    }


@pytest.fixture
def parked_run(personas, settings):
    """12 tickets, 5 of them parked for review, every shard done."""
    settings.ENGINE_SHARD_SIZE = 5
    settings.ENGINE_BATCH_SIZE = 4
    workflow = make_runnable_workflow(personas["designer"], review_graph())
    items = [{"text": f"ticket {i}", "lang": "it" if i % 12 < 5 else "en"} for i in range(12)]
    run = launch.create_run(workflow, user=personas["operator"], items=items)
    drain()
    run.refresh_from_db()
    return run


def page_for(user, url: str) -> str:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return response.content.decode()


def test_a_run_whose_remaining_items_wait_for_people_says_so_with_the_count(personas, parked_run, api):
    run = parked_run
    assert (run.status, run.items_done, run.items_parked) == (statuses.WAITING, 7, 5)
    assert monitor.finish_runs() == 0  # the monitor leaves it waiting: nothing for a machine to do
    for url in (reverse("run-detail", args=[run.pk]), reverse("run-list")):
        html = page_for(personas["operator"], url)
        assert "waiting for review (5)" in html
        assert 'class="status running"' not in html
    body = api(personas["operator"]).get(f"/api/runs/{run.pk}/").json()
    assert (body["status"], body["items_parked"]) == ("waiting", 5)


def test_it_finishes_by_itself_when_the_last_review_is_decided(personas, parked_run, api):
    run = parked_run
    client = api(personas["operator"])
    tasks = list(ReviewTask.objects.filter(run=run).order_by("pk"))
    assert len(tasks) == 5
    for task in tasks[:4]:
        assert client.post(f"/api/reviews/{task.pk}/decide/", {"note": "ok"}, format="json").status_code == 200
    drain()
    run.refresh_from_db()
    assert (run.status, run.items_parked) == (statuses.WAITING, 1)
    assert "waiting for review (1)" in page_for(personas["operator"], reverse("run-detail", args=[run.pk]))
    assert client.post(f"/api/reviews/{tasks[4].pk}/decide/", {"note": "ok"}, format="json").status_code == 200
    drain()
    run.refresh_from_db()
    assert (run.status, run.items_done, run.items_parked) == (statuses.SUCCEEDED, 12, 0)
    assert run.finished_at is not None


def test_a_waiting_run_can_be_cancelled(personas, parked_run):
    assert launch.cancel_run(parked_run, user=personas["operator"])
    parked_run.refresh_from_db()
    assert parked_run.status == statuses.CANCELLED
