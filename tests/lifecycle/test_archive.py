"""Archiving a workflow (hidden, no new runs, intake or schedules; reversible) and deleting it (archived,
nothing active, no signed pack; its audit entries stay)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.utils import timezone

from tests.builders import ledger_decision, ledger_item, ledger_run, make_workflow
from tests.engine.helpers import make_runnable_workflow, pattern_graph
from workflows.design.versions import save_version
from workflows.engine.schedules import fire_due_schedules
from workflows.lifecycle import archive
from workflows.models import (
    AuditEntry,
    Dataset,
    Decision,
    Item,
    Original,
    Run,
    Schedule,
    WeeklyPack,
    Workflow,
    WorkflowVersion,
    blobs,
)

pytestmark = pytest.mark.django_db


def rest_workflow(user):
    """Upload, REST intake and a schedule on the data set 'weekly' all feed the pattern line."""
    graph = pattern_graph()
    graph["nodes"] += [{"id": "rest", "type": "source.rest", "config": {"fields": ["text", "lang"]}},
                       {"id": "sched", "type": "source.schedule",
                        "config": {"fields": ["text", "lang"], "cron": "* * * * *", "dataset": "weekly"}}]
    graph["edges"] += [{"source": "rest", "source_port": "out", "target": "ext", "target_port": "in"},
                       {"source": "sched", "source_port": "out", "target": "ext", "target_port": "in"}]
    return make_runnable_workflow(user, graph)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_an_archived_workflow_is_hidden_takes_nothing_and_comes_back(personas, api):
    workflow = rest_workflow(personas["designer"])
    items = {"items": [{"text": "ciao", "lang": "it"}]}
    operator = api(personas["operator"])
    live = operator.post(f"/api/workflows/{workflow.pk}/intake/", items, format="json")
    assert live.status_code == 202
    Dataset.objects.create(name="weekly", filename="w.csv", content=b"text,lang\nciao,it\n", size=1, rows=1,
                           columns=["text", "lang"])
    assert Schedule.objects.filter(workflow=workflow).count() == 1
    Schedule.objects.filter(workflow=workflow).update(next_fire_at=timezone.now() - dt.timedelta(minutes=1))

    archived = api(personas["designer"]).post(f"/api/workflows/{workflow.pk}/archive/")
    assert archived.status_code == 200 and archived.data["archived"] is True and archived.data["archived_at"]
    # Its live run takes no more items and finishes; nothing new starts, from any origin.
    assert not Run.objects.get(pk=live.data["run"]).is_live
    refused = operator.post(f"/api/workflows/{workflow.pk}/runs/", items, format="json")
    assert refused.status_code == 400 and "archived" in " ".join(refused.data["problems"])
    refused = operator.post(f"/api/workflows/{workflow.pk}/intake/", items, format="json")
    assert refused.status_code == 400 and "archived" in " ".join(refused.data["problems"])
    runs = Run.objects.count()
    assert fire_due_schedules() == 0 and Run.objects.count() == runs
    assert not AuditEntry.objects.filter(action="schedule.failed").exists()
    # Hidden from lists, listed when asked for, still open by its address.
    assert workflow.pk not in [w["id"] for w in operator.get("/api/workflows/").data["results"]]
    assert [w["id"] for w in operator.get("/api/workflows/?archived=true").data["results"]] == [workflow.pk]
    page = client_for(personas["operator"])
    assert f"/workflows/{workflow.pk}/" not in page.get("/").content.decode()
    assert f"/workflows/{workflow.pk}/" in page.get("/?archived=1").content.decode()
    canvas = page.get(f"/workflows/{workflow.pk}/").content.decode()
    assert 'id="archived-tag"' in canvas and "Run…" not in canvas
    # Restored: it runs, and its schedule fires again.
    assert api(personas["designer"]).post(f"/api/workflows/{workflow.pk}/restore/").data["archived"] is False
    assert operator.post(f"/api/workflows/{workflow.pk}/runs/", items, format="json").status_code == 201
    assert fire_due_schedules() == 1
    actions = list(AuditEntry.objects.filter(action__in=["workflow.archive", "workflow.restore"])
                   .values_list("action", flat=True))
    assert actions == ["workflow.archive", "workflow.restore"]


def test_archiving_from_the_canvas_page(personas):
    workflow = make_workflow(personas["designer"])
    designer = client_for(personas["designer"])
    assert 'id="archive-form"' in designer.get(f"/workflows/{workflow.pk}/").content.decode()
    assert designer.post(f"/workflows/{workflow.pk}/lifecycle/archive/").status_code == 302
    assert Workflow.objects.get(pk=workflow.pk).archived
    assert 'id="archive-form"' not in client_for(personas["operator"]).get(
        f"/workflows/{workflow.pk}/").content.decode()
    assert client_for(personas["operator"]).post(f"/workflows/{workflow.pk}/lifecycle/restore/").status_code == 403
    assert Workflow.objects.get(pk=workflow.pk).archived


def finished_run_with_a_file(workflow, user, root):
    run = ledger_run(workflow, user, finished_at=timezone.now())
    now = timezone.now()
    sha = blobs.put_bytes(b"%PDF a document", facts={"content_type": "application/pdf", "pages": 1})
    Original.objects.create(run=run, sha256=sha, name="a.pdf", content_type="application/pdf", size=1, pages=1)
    for seq in range(3):
        item = ledger_item(run, seq, received=now, finished=now, payload={"text": f"doc {seq}", "original": sha})
        ledger_decision(run, item, "cls", label="billing")
    return run, sha


def test_deleting_removes_everything_it_holds_and_keeps_its_audit_entries(personas, api, settings, tmp_path):
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    root = settings.ARTIFACTS_DIR / "originals"
    workflow = make_workflow(personas["designer"])
    save_version(workflow, workflow.latest.as_graph(), user=personas["designer"], parent=1, message="Second")
    run, sha = finished_run_with_a_file(workflow, personas["operator"], root)
    for name in ("mine", "shared"):
        Dataset.objects.create(name=name, filename=f"{name}.csv", content=b"text\nx\n", size=1, rows=1,
                               columns=["text"])
    Schedule.objects.create(workflow=workflow, node="s1", cron="0 6 * * 1", dataset="mine")
    Schedule.objects.create(workflow=workflow, node="s2", cron="0 6 * * 1", dataset="shared")
    other = make_workflow(personas["designer"], name="Other")
    Schedule.objects.create(workflow=other, node="s1", cron="0 6 * * 1", dataset="shared")
    admin = api(personas["admin"])

    not_archived = admin.delete(f"/api/workflows/{workflow.pk}/")
    assert not_archived.status_code == 409 and "Archive the workflow first" in not_archived.data["detail"]
    assert api(personas["designer"]).delete(f"/api/workflows/{workflow.pk}/").status_code == 403
    archive.archive(workflow, user=personas["designer"])
    earlier = set(AuditEntry.objects.filter(object_type="workflows.workflow", object_id=str(workflow.pk))
                  .values_list("pk", flat=True))

    deleted = admin.delete(f"/api/workflows/{workflow.pk}/")
    assert deleted.status_code == 200, deleted.data
    assert deleted.data["counts"]["runs"] == 1 and deleted.data["counts"]["items"] == 3
    assert not Workflow.objects.filter(pk=workflow.pk).exists()
    assert not WorkflowVersion.objects.filter(workflow_id=workflow.pk).exists()
    assert not Run.objects.filter(pk=run.pk).exists() and not Item.objects.filter(run_id=run.pk).exists()
    assert not Decision.objects.filter(run_id=run.pk).exists() and not Original.objects.exists()
    assert not blobs.exists(sha)
    assert not Schedule.objects.filter(workflow_id=workflow.pk).exists()
    assert set(Dataset.objects.values_list("name", flat=True)) == {"shared"}
    assert Workflow.objects.filter(pk=other.pk).exists()
    # Its audit entries stay, and one more says it was deleted, by whom, with what.
    kept = set(AuditEntry.objects.filter(object_type="workflows.workflow", object_id=str(workflow.pk))
               .values_list("pk", flat=True))
    assert earlier < kept
    entry = AuditEntry.objects.get(action="workflow.delete")
    assert entry.actor == personas["admin"] and entry.data["runs"] == 1 and entry.data["versions"] == 2
    from workflows.models.audit import verify_chain

    assert verify_chain()[2] == ""


def test_a_workflow_with_an_active_run_or_a_signed_pack_is_not_deleted(personas, api):
    workflow = make_workflow(personas["designer"])
    run = ledger_run(workflow, personas["operator"], status="running")
    archive.archive(workflow, user=personas["designer"])
    admin = api(personas["admin"])
    refused = admin.delete(f"/api/workflows/{workflow.pk}/")
    assert refused.status_code == 409 and "1 active run" in refused.data["detail"]
    Run.objects.filter(pk=run.pk).update(status="succeeded")
    WeeklyPack.objects.create(workflow=workflow, week_start=dt.date(2025, 3, 24), iso_year=2025, iso_week=13,
                              content={}, sha256="0" * 64, signed_by=personas["business_owner"])
    refused = admin.delete(f"/api/workflows/{workflow.pk}/")
    assert refused.status_code == 409 and "signed weekly pack" in refused.data["detail"]
    assert Run.objects.filter(pk=run.pk).exists() and Workflow.objects.filter(pk=workflow.pk).exists()
    assert not AuditEntry.objects.filter(action="workflow.delete").exists()


def test_the_page_deletes_only_when_the_name_is_typed(personas):
    workflow = make_workflow(personas["designer"], name="Fatture 2024")
    archive.archive(workflow, user=personas["designer"])
    admin = client_for(personas["admin"])
    page = admin.get(f"/workflows/{workflow.pk}/lifecycle/").content.decode()
    assert 'id="delete-form"' in page
    wrong = admin.post(f"/workflows/{workflow.pk}/lifecycle/delete/", {"confirm_name": "Fatture"})
    assert wrong.status_code == 400 and "Type the workflow" in wrong.content.decode()
    assert Workflow.objects.filter(pk=workflow.pk).exists()
    done = admin.post(f"/workflows/{workflow.pk}/lifecycle/delete/", {"confirm_name": "Fatture 2024"})
    assert done.status_code == 302 and not Workflow.objects.filter(pk=workflow.pk).exists()


def test_delete_refused_for_a_workflow_still_in_use_says_to_archive_first_on_the_page(personas):
    workflow = make_workflow(personas["designer"], name="Live")
    admin = client_for(personas["admin"])
    page = admin.get(f"/workflows/{workflow.pk}/lifecycle/").content.decode()
    assert 'id="delete-problem"' in page and 'id="delete-form"' not in page
    refused = admin.post(f"/workflows/{workflow.pk}/lifecycle/delete/", {"confirm_name": "Live"})
    assert refused.status_code == 400 and Workflow.objects.filter(pk=workflow.pk).exists()
