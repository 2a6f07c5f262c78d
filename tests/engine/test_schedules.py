"""Scheduled runs: cron on a source.schedule node fires a run on a stored data set, exactly once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.builders import make_workflow
from workflows.design.versions import save_version
from workflows.engine.intake import IntakeError
from workflows.engine.schedules import fire_due_schedules, next_fire
from workflows.models import AuditEntry, Run
from workflows.models.datasets import Dataset, Schedule

pytestmark = pytest.mark.django_db
UTC = dt.UTC


def scheduled_graph(cron: str = "0 7 * * 1-5", dataset: str = "weekly") -> dict:
    return {
        "nodes": [{"id": "cron", "type": "source.schedule",
                   "config": {"cron": cron, "dataset": dataset, "fields": ["text"]}},
                  {"id": "ext", "type": "extract", "config": {"patterns": ["email"], "entities": []}},
                  {"id": "out", "type": "sink.table", "config": {}}],
        "edges": [{"source": "cron", "source_port": "out", "target": "ext", "target_port": "in"},
                  {"source": "ext", "source_port": "out", "target": "out", "target_port": "in"}],
    }


def store_dataset(user, rows: int = 3, name: str = "weekly") -> Dataset:
    from workflows.datasets import store

    body = "text\n" + "".join(f"mail me at user{i}@example.it\n" for i in range(rows))
    return store(name=name, filename="weekly.csv", data=body.encode(), mapping={}, user=user)


def test_next_fire_reads_cron_in_rome_time():
    # 07:00 in Rome on a winter Monday is 06:00 UTC.
    after = dt.datetime(2026, 11, 29, 12, 0, tzinfo=UTC)  # a Sunday
    assert next_fire("0 7 * * 1-5", after) == dt.datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def test_saving_a_version_keeps_schedules_in_step(personas):
    wf = make_workflow(personas["designer"], scheduled_graph())
    schedule = Schedule.objects.get(workflow=wf)
    assert schedule.node == "cron" and schedule.dataset == "weekly" and schedule.next_fire_at is not None
    from workflows.design.publishing import publish
    from workflows.graph import parse_graph

    version = save_version(wf, parse_graph(scheduled_graph(cron="30 18 * * *")), user=personas["designer"], parent=1)
    schedule.refresh_from_db()
    assert schedule.cron == "0 7 * * 1-5"  # a draft: the live version's schedule stands
    publish(wf, version, user=personas["designer"])
    schedule.refresh_from_db()
    assert schedule.cron == "30 18 * * *"
    graph = scheduled_graph()
    graph["nodes"][0] = {"id": "up", "type": "source.upload", "config": {}}
    graph["edges"][0]["source"] = "up"
    unscheduled = save_version(wf, parse_graph(graph), user=personas["designer"], parent=2)
    assert Schedule.objects.filter(workflow=wf).exists()  # still the live version's
    publish(wf, unscheduled, user=personas["designer"])
    assert not Schedule.objects.filter(workflow=wf).exists()


def test_a_due_schedule_starts_one_run_on_its_data_set(personas):
    store_dataset(personas["operator"], rows=3)
    wf = make_workflow(personas["designer"], scheduled_graph())
    schedule = Schedule.objects.get(workflow=wf)
    due = schedule.next_fire_at + dt.timedelta(seconds=1)
    assert fire_due_schedules(due) == 1
    assert fire_due_schedules(due) == 0  # claimed: a second worker's tick starts nothing
    run = Run.objects.get(workflow=wf)
    assert run.origin == "schedule" and run.items_total == 3
    schedule.refresh_from_db()
    assert schedule.last_run == run and schedule.next_fire_at > due


def test_not_yet_due_fires_nothing(personas):
    store_dataset(personas["operator"])
    wf = make_workflow(personas["designer"], scheduled_graph())
    schedule = Schedule.objects.get(workflow=wf)
    assert fire_due_schedules(schedule.next_fire_at - dt.timedelta(seconds=1)) == 0
    assert not Run.objects.exists()


def test_a_missing_data_set_is_reported_not_crashed(personas):
    wf = make_workflow(personas["designer"], scheduled_graph(dataset="nowhere"))
    schedule = Schedule.objects.get(workflow=wf)
    assert fire_due_schedules(schedule.next_fire_at + dt.timedelta(seconds=1)) == 0
    schedule.refresh_from_db()
    assert "nowhere" in schedule.last_error
    assert AuditEntry.objects.filter(action="schedule.failed").exists()


def test_bad_data_sets_are_refused_whole(personas):
    with pytest.raises(IntakeError):
        store_dataset(personas["operator"], name="Bad Name")
    from workflows.datasets import store

    with pytest.raises(IntakeError):
        store(name="empty", filename="e.csv", data=b"", mapping={}, user=personas["operator"])
    assert not Dataset.objects.exists()


def test_dataset_upload_api(personas, api):
    client = api(personas["operator"])
    r = client.post("/api/datasets/", {"name": "weekly", "file": SimpleUploadedFile("w.csv", b"text\nhello\nworld\n")},
                    format="multipart")
    assert r.status_code == 201 and r.data["rows"] == 2
    r = client.post("/api/datasets/", {"name": "broken",
                                       "file": SimpleUploadedFile("w.jsonl", b'{"text": 1}\nnot json\n')},
                    format="multipart")
    assert r.status_code == 400 and r.data["rows"]
    assert list(Dataset.objects.values_list("name", flat=True)) == ["weekly"]


def test_external_endpoints_are_refused_by_the_residency_policy(personas, tickets_model):
    from workflows.engine.launch import StartError, create_run
    from workflows.models import LLMEndpoint

    LLMEndpoint.objects.create(name="us-cloud", base_url="https://llm.example.com/v1", model_name="big",
                               location=LLMEndpoint.EXTERNAL, region="US")
    graph = {"nodes": [{"id": "in", "type": "source.upload", "config": {}},
                       {"id": "llm", "type": "llm", "config": {"endpoint": "us-cloud", "prompt": "Reply: {text}"}},
                       {"id": "out", "type": "sink.table", "config": {}}],
             "edges": [{"source": "in", "source_port": "out", "target": "llm", "target_port": "in"},
                       {"source": "llm", "source_port": "out", "target": "out", "target_port": "in"}]}
    wf = make_workflow(personas["designer"], graph)
    assert wf.live is None  # the policy kept it from being published at creation
    with pytest.raises(StartError, match="data-residency"):
        create_run(wf, user=personas["designer"], items=[{"text": "x"}], version=wf.latest)
    wf.allow_external_endpoints = True
    wf.save(update_fields=["allow_external_endpoints"])
    from workflows.design.publishing import publish

    publish(wf, wf.latest, user=personas["designer"])
    assert create_run(wf, user=personas["operator"], items=[{"text": "x"}]).items_total == 1
