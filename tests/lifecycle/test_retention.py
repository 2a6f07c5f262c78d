"""Retention: a workflow's documents (and everything made from them) go N days after they finished, in
bounded batches, each purge audited once with its counts; KPI weeks survive it."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from tests.builders import ledger_decision, ledger_item, ledger_run, ledger_stats, make_baseline, make_workflow
from tests.kpi import ledger as kpi_ledger
from workflows.kpi import readers, rollup
from workflows.lifecycle import retention
from workflows.models import (
    AuditEntry,
    Dataset,
    DeadLetter,
    Decision,
    Item,
    KpiWeek,
    Label,
    NodeStats,
    Original,
    ReviewTask,
    Run,
    Schedule,
    Workflow,
    blobs,
)
from workflows.models.registry import register_version

pytestmark = pytest.mark.django_db

NOW = timezone.now()
DAY = dt.timedelta(days=1)


@pytest.fixture
def artifacts(settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    return settings.ARTIFACTS_DIR / "originals"


def finished_run(workflow, user, *, finished, items=3, status="succeeded", text="Mario Rossi writes"):
    """A run with `items` documents finished at `finished`, each with a decision; the first with a
    review task and its label, the last a dead letter."""
    run = ledger_run(workflow, user, status=status, created_at=finished - dt.timedelta(hours=1), finished_at=finished,
                     items_total=items)
    made = []
    for seq in range(items):
        item = ledger_item(run, seq, received=finished - dt.timedelta(hours=1), finished=finished,
                           payload={"text": f"{text} #{seq}"})
        ledger_decision(run, item, "cls", label="billing", confidence=0.9)
        made.append(item)
    task = ReviewTask.objects.create(run=run, item=made[0], node="rev", status=ReviewTask.DECIDED,
                                     result={"label": "billing"})
    Label.objects.create(run=run, item=made[0], review_task=task, node="cls", text=made[0].payload["text"],
                         label="billing", predicted="billing")
    DeadLetter.objects.create(run=run, item=made[-1], node="cls", reason="failed")
    ledger_stats(run, "cls", items_in=items, cpu_seconds=1.0)
    return run


def keep_file(root, data: bytes, run) -> str:
    sha = blobs.put_bytes(data, facts={"content_type": "application/pdf", "pages": 1})
    Original.objects.create(run=run, sha256=sha, name=f"{sha[:6]}.pdf", content_type="application/pdf",
                            size=len(data), pages=1)
    return sha


def test_purges_only_what_finished_before_the_cutoff(personas, artifacts):
    workflow = make_workflow(personas["designer"])
    old = finished_run(workflow, personas["operator"], finished=NOW - 40 * DAY)
    recent = finished_run(workflow, personas["operator"], finished=NOW - 2 * DAY)
    only_old = keep_file(artifacts, b"%PDF only the old run", old)
    shared = keep_file(artifacts, b"%PDF both runs", old)
    Original.objects.create(run=recent, sha256=shared, name="again.pdf", content_type="application/pdf", size=1,
                            pages=1)
    other = make_workflow(personas["designer"], name="Other")
    untouched = finished_run(other, personas["operator"], finished=NOW - 400 * DAY)
    retention.set_retention(workflow, 30, user=personas["admin"])

    result = retention.purge(Workflow.objects.get(pk=workflow.pk), now=NOW)

    assert result.complete
    assert not Run.objects.filter(pk=old.pk).exists()
    for model in (Item, Decision, ReviewTask, DeadLetter, NodeStats, Original):
        assert not model.objects.filter(run_id=old.pk).exists(), model
    assert not Label.objects.filter(text__endswith="#0", run__isnull=True).exists()
    # The recent run and another workflow's old run are whole.
    assert Item.objects.filter(run=recent).count() == 3 and Decision.objects.filter(run=recent).count() == 3
    assert Label.objects.filter(run=recent).count() == 1 and ReviewTask.objects.filter(run=recent).count() == 1
    assert Item.objects.filter(run=untouched).count() == 3
    # A file goes with the last row naming it; one the recent run still names stays.
    assert not blobs.exists(only_old)
    assert blobs.exists(shared)
    entries = list(AuditEntry.objects.filter(action="retention.purge"))
    assert len(entries) == 1
    assert entries[0].object_id == str(workflow.pk)
    counts = {k: entries[0].data[k] for k in ("runs", "items", "decisions", "labels", "review_tasks", "dead_letters",
                                              "originals", "files")}
    assert counts == {"runs": 1, "items": 3, "decisions": 3, "labels": 1, "review_tasks": 1, "dead_letters": 1,
                      "originals": 2, "files": 1}
    assert entries[0].data["days"] == 30 and entries[0].data["complete"] is True
    # Nothing older is left: a second purge finds nothing and writes no entry.
    retention.purge(Workflow.objects.get(pk=workflow.pk), now=NOW)
    assert AuditEntry.objects.filter(action="retention.purge").count() == 1


def test_a_workflow_without_retention_keeps_everything(personas, artifacts):
    workflow = make_workflow(personas["designer"])
    run = finished_run(workflow, personas["operator"], finished=NOW - 4000 * DAY)
    result = retention.purge(workflow, now=NOW)
    assert not result.removed and Item.objects.filter(run=run).count() == 3
    assert not AuditEntry.objects.filter(action="retention.purge").exists()


def test_purges_in_bounded_batches_each_committed(personas, artifacts, settings):
    settings.RETENTION_BATCH_ITEMS = 2
    workflow = make_workflow(personas["designer"])
    run = finished_run(workflow, personas["operator"], finished=NOW - 40 * DAY, items=5)
    retention.set_retention(workflow, 30, user=personas["admin"])

    first = retention.purge(workflow, now=NOW, batches=2)
    # Two batches of two documents went, each with its rows; the run waits for the next purge.
    assert not first.complete and first.counts["batches"] == 2
    assert Item.objects.filter(run=run).count() == 1 and Decision.objects.filter(run=run).count() == 1
    assert Run.objects.filter(pk=run.pk).exists()
    second = retention.purge(workflow, now=NOW, batches=2)
    assert second.complete and not Run.objects.filter(pk=run.pk).exists()
    entries = list(AuditEntry.objects.filter(action="retention.purge").order_by("id"))
    assert [(e.data["items"], e.data["runs"], e.data["complete"]) for e in entries] == [(4, 0, False), (1, 1, True)]


def test_open_runs_lose_their_old_documents_only(personas, artifacts):
    """A live intake run lasts months: its documents that finished before the cutoff go, the others stay."""
    workflow = make_workflow(personas["designer"])
    live = ledger_run(workflow, personas["operator"], status="running", is_live=True, created_at=NOW - 90 * DAY)
    old = ledger_item(live, 0, received=NOW - 80 * DAY, finished=NOW - 80 * DAY, payload={"text": "old"})
    fresh = ledger_item(live, 1, received=NOW - DAY, finished=NOW - DAY, payload={"text": "fresh"})
    parked = ledger_item(live, 2, received=NOW - 80 * DAY, status=Item.PARKED, payload={"text": "waits"})
    for item in (old, fresh, parked):
        ledger_decision(live, item, "cls", label="billing")
    retention.set_retention(workflow, 30, user=personas["admin"])
    retention.purge(workflow, now=NOW)
    assert set(Item.objects.filter(run=live).values_list("pk", flat=True)) == {fresh.pk, parked.pk}
    assert set(Decision.objects.filter(run=live).values_list("item_id", flat=True)) == {fresh.pk, parked.pk}
    assert Run.objects.filter(pk=live.pk).exists()


def test_data_sets_of_the_workflows_schedules_go_when_stored_before_the_cutoff(personas, artifacts):
    workflow = make_workflow(personas["designer"])
    for name in ("weekly", "fresh", "unrelated"):
        Dataset.objects.create(name=name, filename=f"{name}.csv", content=b"text\nMario Rossi\n", size=18, rows=1,
                               columns=["text"])
    Dataset.objects.filter(name__in=["weekly", "unrelated"]).update(created_at=NOW - 60 * DAY)
    Schedule.objects.create(workflow=workflow, node="sched", cron="0 6 * * 1", dataset="weekly")
    Schedule.objects.create(workflow=workflow, node="sched2", cron="0 6 * * 1", dataset="fresh")
    retention.set_retention(workflow, 30, user=personas["admin"])
    retention.purge(workflow, now=NOW)
    assert set(Dataset.objects.values_list("name", flat=True)) == {"fresh", "unrelated"}
    assert AuditEntry.objects.get(action="retention.purge").data["datasets"] == 1


def test_labels_that_trained_a_version_go_and_the_version_keeps_only_their_hashes(personas, artifacts):
    from workflows.governance.labelsets import content_hash, training_hashes

    workflow = make_workflow(personas["designer"])
    run = finished_run(workflow, personas["operator"], finished=NOW - 40 * DAY)
    texts = list(Label.objects.filter(run=run).values_list("text", flat=True))
    version, _ = register_version(model_name="trained", kind="classifier", source="trained", runtime="head",
                                  meta={"sha256": "a" * 64, "size": 1,
                                        "params": {"training_hashes": [content_hash(t) for t in texts]}})
    retention.set_retention(workflow, 30, user=personas["admin"])
    retention.purge(workflow, now=NOW)
    assert not Label.objects.filter(text__in=texts).exists()
    version.refresh_from_db()
    assert training_hashes(version) == {content_hash(t) for t in texts}
    assert not any(t in str(version.meta) for t in texts)


def test_kpi_weeks_survive_a_purge_and_their_pages_still_render(personas, artifacts):
    workflow = make_workflow(personas["designer"], name="Mine")
    kpi_ledger.build(workflow, personas["designer"])
    make_baseline(workflow, personas["designer"])
    Run.objects.filter(workflow=workflow).update(finished_at=kpi_ledger.TUESDAY + 7 * DAY)
    before = readers.dashboard([workflow], kpi_ledger.W13)["summary"]
    weeks = set(KpiWeek.objects.filter(workflow=workflow).values_list("week_start", flat=True))
    assert {kpi_ledger.W13, kpi_ledger.W14} <= weeks

    retention.set_retention(workflow, 30, user=personas["admin"])
    retention.purge(workflow, now=kpi_ledger.TUESDAY + 90 * DAY)
    assert not Item.objects.filter(run__workflow=workflow).exists()

    assert set(KpiWeek.objects.filter(workflow=workflow).values_list("week_start", flat=True)) == weeks
    assert readers.dashboard([workflow], kpi_ledger.W13)["summary"] == before
    # A full rebuild (a production alias moved) counts the weeks again from the ledger: purged weeks are frozen.
    rollup.rebuild(workflow.pk)
    assert set(KpiWeek.objects.filter(workflow=workflow).values_list("week_start", flat=True)) == weeks
    assert readers.dashboard([workflow], kpi_ledger.W13)["summary"] == before
    client = Client()
    client.force_login(personas["business_owner"])
    for path in (f"/workflows/{workflow.pk}/kpis/?week=2025-W13", f"/workflows/{workflow.pk}/kpis/packs/",
                 f"/workflows/{workflow.pk}/kpis/packs/2025-W13/"):
        assert client.get(path).status_code == 200, path


def purged(figures: dict[str, int]) -> tuple[int, int]:
    return figures["retention_purged_runs"], figures["retention_purged_items"]


def test_the_monitor_duty_claims_each_workflow_once_per_period(personas, artifacts, settings):
    settings.RETENTION_PURGE_SECONDS = 3600
    workflow = make_workflow(personas["designer"])
    finished_run(workflow, personas["operator"], finished=NOW - 40 * DAY)
    retention.set_retention(workflow, 30, user=personas["admin"])
    assert purged(retention.tick(NOW)) == (1, 3)
    finished_run(workflow, personas["operator"], finished=NOW - 40 * DAY)
    # Within the period nothing is looked at again; after it, the new old run goes.
    assert purged(retention.tick(NOW + dt.timedelta(minutes=10))) == (0, 0)
    assert retention.tick(NOW + dt.timedelta(hours=2))["retention_purged_runs"] == 1


def test_the_worker_runs_the_retention_duty():
    from pathlib import Path

    source = Path("workflows/management/commands/run_worker.py").read_text()
    assert "retention.tick" in source


@pytest.mark.parametrize("typed", ["3", "abc", "100000", "-5", "7.5"])
def test_a_retention_out_of_range_is_refused_saying_what_to_type(personas, typed, api):
    workflow = make_workflow(personas["designer"])
    client = Client()
    client.force_login(personas["admin"])
    page = client.post(f"/workflows/{workflow.pk}/lifecycle/retention/", {"retention_days": typed})
    assert page.status_code == 400 and "from 7 to 3650" in page.content.decode()
    response = api(personas["admin"]).put(f"/api/workflows/{workflow.pk}/retention/", {"retention_days": typed},
                                          format="json")
    assert response.status_code == 400 and "retention_days" in response.data
    workflow.refresh_from_db()
    assert workflow.retention_days is None
    assert not AuditEntry.objects.filter(action="workflow.retention").exists()


def test_retention_is_set_by_administrators_on_the_page_and_the_api(personas, api):
    workflow = make_workflow(personas["designer"])
    client = Client()
    client.force_login(personas["admin"])
    assert client.post(f"/workflows/{workflow.pk}/lifecycle/retention/", {"retention_days": "30"}).status_code == 302
    workflow.refresh_from_db()
    assert workflow.retention_days == 30
    response = api(personas["admin"]).patch(f"/api/workflows/{workflow.pk}/retention/", {"retention_days": None},
                                            format="json")
    assert response.status_code == 200 and response.data["retention_days"] is None
    entries = list(AuditEntry.objects.filter(action="workflow.retention").order_by("id"))
    assert [(e.data["before"], e.data["after"]) for e in entries] == [(None, 30), (30, None)]
    designer = Client()
    designer.force_login(personas["designer"])
    assert designer.post(f"/workflows/{workflow.pk}/lifecycle/retention/",
                         {"retention_days": "30"}).status_code == 403


def test_files_held_for_a_preview_that_never_ran_are_swept_by_the_workers(settings, tmp_path):
    """An original previewed (or a file staged) and never run was deleted only when someone staged
    another file: on a quiet installation, never. The workers' periodic duty sweeps what expired."""
    from datetime import timedelta

    from django.utils import timezone

    from workflows.lifecycle import retention
    from workflows.models import StoredBlob, blobs

    settings.ARTIFACTS_DIR = tmp_path
    expired = blobs.put_bytes(b"an original nobody ran", hold=timedelta(hours=1))
    StoredBlob.objects.filter(pk=expired).update(held_until=timezone.now() - timedelta(minutes=1))
    held = blobs.put_bytes(b"a preview still open", hold=timedelta(hours=1))
    retention.tick()
    assert not blobs.exists(expired) and blobs.exists(held)
