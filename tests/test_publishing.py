"""Drafts that do not go live: saving makes a draft; runs, REST intake and schedules use the published
version; publishing checks the version can run, and where a workflow needs a second person, the
four-eyes rule of promotions decides who may approve."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from tests.builders import edge, make_user, make_workflow, node
from workflows.models import AuditEntry, Dataset, Notification, Run, Schedule, Workflow

pytestmark = pytest.mark.django_db


def rest_graph(sink: str = "out", cron: str = "") -> dict:
    """REST intake (and a schedule when `cron` is given) → extract → a table named `sink`."""
    nodes = [node("src", "source.rest", fields=["text"]), node("ext", "extract", patterns=["email"], entities=[]),
             node(sink, "sink.table")]
    edges = [edge("src", "ext"), edge("ext", sink)]
    if cron:
        nodes.append(node("cron", "source.schedule", cron=cron, dataset="weekly", fields=["text"]))
        edges.append(edge("cron", "ext"))
    return {"nodes": nodes, "edges": edges}


def broken_graph() -> dict:
    graph = rest_graph()
    graph["nodes"].append(node("cls", "classify", model="no-such-model@production"))
    graph["edges"].append(edge("ext", "cls"))
    return graph


def save(client, workflow, graph, message="edit"):
    workflow.refresh_from_db()
    r = client.post(f"/api/workflows/{workflow.pk}/versions/", {"graph": graph, "parent": workflow.head,
                                                                "message": message}, format="json")
    assert r.status_code == 201, r.data
    return r.data["number"]


def publish(client, workflow, number, **extra):
    return client.post(f"/api/workflows/{workflow.pk}/publish/", {"version": number, **extra}, format="json")


def live_run(workflow) -> Run:
    return Run.objects.get(workflow=workflow, is_live=True)


# --- what runs use -------------------------------------------------------------------------------


def test_a_saved_but_unpublished_edit_does_not_change_what_intake_schedules_and_api_runs_use(personas, api):
    designer = api(personas["designer"])
    workflow = make_workflow(personas["designer"], rest_graph(cron="0 7 * * *"))
    content = b"text\nhello a@b.it\n"
    Dataset.objects.create(name="weekly", filename="weekly.csv", content=content, size=len(content), rows=1,
                           columns=["text"], mapping={})
    assert designer.post(f"/api/workflows/{workflow.pk}/intake/", {"items": [{"text": "one"}]},
                         format="json").status_code == 202
    assert save(designer, workflow, rest_graph(sink="renamed", cron="30 9 * * *")) == 2

    operator = api(personas["operator"])
    assert operator.post(f"/api/workflows/{workflow.pk}/intake/", {"items": [{"text": "two"}]},
                         format="json").status_code == 202
    assert live_run(workflow).version.number == 1
    r = operator.post(f"/api/workflows/{workflow.pk}/runs/", {"items": [{"text": "three"}]}, format="json")
    assert r.status_code == 201, r.data
    assert r.data["version_number"] == 1 and r.data["draft"] is False
    schedule = Schedule.objects.get(workflow=workflow)
    assert schedule.cron == "0 7 * * *"  # the draft's cron is not the schedule's until it is published
    from workflows.engine.schedules import fire

    assert fire(schedule) == 1
    assert Run.objects.filter(workflow=workflow, origin="schedule").get().version.number == 1

    r = publish(designer, workflow, 2)
    assert r.status_code == 200, r.data
    assert r.data["published"] == 2 and Workflow.objects.get(pk=workflow.pk).published == 2
    assert Schedule.objects.get(workflow=workflow).cron == "30 9 * * *"
    assert operator.post(f"/api/workflows/{workflow.pk}/intake/", {"items": [{"text": "four"}]},
                         format="json").status_code == 202
    assert live_run(workflow).version.number == 2  # the old live run was closed and finishes on v1
    entry = AuditEntry.objects.filter(action="workflow.published").latest("id")
    assert entry.data["from"] == 1 and entry.data["to"] == 2


def test_a_workflow_with_nothing_published_refuses_intake_saying_to_publish_first(personas, api):
    designer = api(personas["designer"])
    workflow = make_workflow(personas["designer"], broken_graph())
    assert Workflow.objects.get(pk=workflow.pk).published is None  # not runnable: not published at creation
    save(designer, workflow, rest_graph())
    r = designer.post(f"/api/workflows/{workflow.pk}/intake/", {"items": [{"text": "x"}]}, format="json")
    assert r.status_code == 400
    assert "publish a version first" in " ".join(r.data["problems"])
    assert not Run.objects.filter(workflow=workflow).exists()


def test_creating_a_runnable_workflow_publishes_it_so_the_gallery_runs_in_one_step(personas, api):
    r = api(personas["designer"]).post("/api/workflows/", {"name": "Intake", "graph": rest_graph()}, format="json")
    assert r.status_code == 201 and r.data["published"] == 1 and r.data["head"] == 1


def test_a_designer_test_runs_a_draft_and_the_run_says_it_is_a_draft(personas, api, client):
    designer = api(personas["designer"])
    workflow = make_workflow(personas["designer"], rest_graph())
    save(designer, workflow, rest_graph(sink="renamed"))
    r = designer.post(f"/api/workflows/{workflow.pk}/runs/", {"items": [{"text": "x"}], "version": 2}, format="json")
    assert r.status_code == 201, r.data
    assert r.data["version_number"] == 2 and r.data["draft"] is True
    client.force_login(personas["designer"])
    page = client.get(f"/runs/{r.data['id']}/").content.decode()
    assert 'id="draft-run"' in page
    # An operator runs what is live, never a draft.
    r = api(personas["operator"]).post(f"/api/workflows/{workflow.pk}/runs/", {"items": [{"text": "x"}],
                                                                               "version": 2}, format="json")
    assert r.status_code == 403
    assert Workflow.objects.get(pk=workflow.pk).published == 1


# --- publishing --------------------------------------------------------------------------------------------


def test_an_unrunnable_draft_cannot_be_published_and_every_problem_is_named(personas, api):
    designer = api(personas["designer"])
    workflow = make_workflow(personas["designer"], rest_graph())
    save(designer, workflow, broken_graph())
    r = publish(designer, workflow, 2)
    assert r.status_code == 400, r.data
    assert "no-such-model" in " ".join(r.data["problems"])
    assert Workflow.objects.get(pk=workflow.pk).published == 1
    assert not AuditEntry.objects.filter(action="workflow.published", data__to=2).exists()


def test_publishing_needs_the_publish_role_and_the_policy_is_the_administrators(personas, api):
    workflow = make_workflow(personas["designer"], rest_graph())
    save(api(personas["designer"]), workflow, rest_graph(sink="renamed"))
    for role in ("operator", "validator", "trainer", "business_owner"):
        assert publish(api(personas[role]), workflow, 2).status_code == 403, role
    policy = f"/api/workflows/{workflow.pk}/publish/policy/"
    assert api(personas["designer"]).post(policy, {"needs_approval": True}, format="json").status_code == 403
    r = api(personas["admin"]).post(policy, {"needs_approval": True}, format="json")
    assert r.status_code == 200 and r.data["publish_needs_approval"] is True
    assert Workflow.objects.get(pk=workflow.pk).published == 1


def test_the_author_cannot_approve_their_own_publication(personas, api):
    editor = make_user("designer2", "designer")
    workflow = make_workflow(personas["designer"], rest_graph())
    Workflow.objects.filter(pk=workflow.pk).update(publish_needs_approval=True)
    save(api(editor), workflow, rest_graph(sink="renamed"))
    r = publish(api(personas["designer"]), workflow, 2, reason="Rename the table")
    assert r.status_code == 202, r.data
    assert r.data["published"] == 1 and r.data["request"]["version"] == 2
    assert Workflow.objects.get(pk=workflow.pk).published == 1
    # the approvers are told; the requester is not
    waiting = Notification.objects.filter(kind="publication.waiting")
    assert set(waiting.values_list("user__username", flat=True)) >= {"validator", "validator2"}
    assert not waiting.filter(user__username__in=["designer", "designer2"]).exists()

    decide = f"/api/workflows/{workflow.pk}/publish/request/"
    r = api(personas["designer"]).post(decide, {"decision": "approve"}, format="json")
    assert r.status_code == 403 and "another person" in r.data["detail"]  # the requester
    r = api(editor).post(decide, {"decision": "approve"}, format="json")
    assert r.status_code == 403 and "edited this draft" in r.data["detail"]  # the draft's author
    assert api(personas["operator"]).post(decide, {"decision": "approve"}, format="json").status_code == 403
    assert Workflow.objects.get(pk=workflow.pk).published == 1
    assert AuditEntry.objects.filter(action="workflow.publish.refused").count() == 2

    # a second request while one is open is refused
    assert publish(api(personas["designer"]), workflow, 2).status_code == 400
    r = api(personas["validator"]).post(decide, {"decision": "approve", "reason": "Looks right"}, format="json")
    assert r.status_code == 200, r.data
    assert r.data["decision"] == "approved" and r.data["previous"] == 1
    assert Workflow.objects.get(pk=workflow.pk).published == 2
    entry = AuditEntry.objects.filter(action="workflow.published").latest("id")
    assert entry.data["from"] == 1 and entry.data["to"] == 2 and entry.actor == personas["validator"]
    assert Notification.objects.filter(kind="publication.decided", user=personas["designer"]).exists()
    assert api(personas["validator"]).get(decide).status_code == 404  # nothing open any more


def test_a_rejection_needs_a_reason_and_leaves_the_live_version(personas, api):
    workflow = make_workflow(personas["designer"], rest_graph())
    Workflow.objects.filter(pk=workflow.pk).update(publish_needs_approval=True)
    save(api(personas["designer"]), workflow, rest_graph(sink="renamed"))
    assert publish(api(personas["designer"]), workflow, 2).status_code == 202
    decide = f"/api/workflows/{workflow.pk}/publish/request/"
    assert api(personas["validator"]).post(decide, {"decision": "reject"}, format="json").status_code == 400
    r = api(personas["validator"]).post(decide, {"decision": "reject", "reason": "Keep the old name"}, format="json")
    assert r.status_code == 200 and r.data["decision"] == "rejected"
    assert Workflow.objects.get(pk=workflow.pk).published == 1


def test_promotions_and_publications_share_one_four_eyes_rule():
    from workflows.design import publishing
    from workflows.four_eyes import FourEyes
    from workflows.governance import promotion

    assert isinstance(promotion.FOUR_EYES, FourEyes) and isinstance(publishing.FOUR_EYES, FourEyes)
    assert promotion.FOUR_EYES.check.__func__ is publishing.FOUR_EYES.check.__func__


# --- the canvas -------------------------------------------------------------------------------------------


def test_the_canvas_shows_draft_against_live_with_the_diff_and_publishes(personas, api, client):
    workflow = make_workflow(personas["designer"], rest_graph())
    save(api(personas["designer"]), workflow, rest_graph(sink="renamed"))
    client.force_login(personas["designer"])
    page = client.get(f"/workflows/{workflow.pk}/").content.decode()
    assert "Draft v2" in page and "Live v1" in page
    assert 'id="publish-form"' in page and "Publish v2" in page
    assert 'id="live-diff"' in page and "renamed" in page  # what publishing would change
    assert f'href="/workflows/{workflow.pk}/run/?version=2"' in page  # a test run of the draft

    r = client.post(f"/workflows/{workflow.pk}/publish/", {"version": "2"})
    assert r.status_code == 302
    assert Workflow.objects.get(pk=workflow.pk).published == 2
    page = client.get(f"/workflows/{workflow.pk}/").content.decode()
    assert "Live v2" in page and "Draft v2" not in page and 'id="publish-form"' not in page


def test_the_canvas_names_the_problems_of_a_draft_that_cannot_be_published(personas, api, client):
    workflow = make_workflow(personas["designer"], rest_graph())
    save(api(personas["designer"]), workflow, broken_graph())
    client.force_login(personas["designer"])
    r = client.post(f"/workflows/{workflow.pk}/publish/", {"version": "2"})
    assert r.status_code == 400
    assert 'id="publish-errors"' in r.content.decode() and "no-such-model" in r.content.decode()


def test_the_canvas_asks_for_approval_and_tells_the_requester_why_they_cannot_decide(personas, api, client):
    workflow = make_workflow(personas["designer"], rest_graph())
    Workflow.objects.filter(pk=workflow.pk).update(publish_needs_approval=True)
    save(api(personas["designer"]), workflow, rest_graph(sink="renamed"))
    client.force_login(personas["designer"])
    assert "Request publication of v2" in client.get(f"/workflows/{workflow.pk}/").content.decode()
    assert client.post(f"/workflows/{workflow.pk}/publish/", {"version": "2", "reason": "why"}).status_code == 302
    page = client.get(f"/workflows/{workflow.pk}/").content.decode()
    assert 'id="publish-request"' in page and 'id="publish-why-not"' in page
    client.force_login(personas["validator"])
    page = client.get(f"/workflows/{workflow.pk}/").content.decode()
    assert "Approve and publish" in page
    r = client.post(f"/workflows/{workflow.pk}/publish/decide/", {"decision": "approve"})
    assert r.status_code == 302 and Workflow.objects.get(pk=workflow.pk).published == 2


def test_a_draft_does_not_move_a_schedule_until_published(personas, api):
    workflow = make_workflow(personas["designer"], rest_graph(cron="0 7 * * *"))
    before = Schedule.objects.get(workflow=workflow).next_fire_at
    save(api(personas["designer"]), workflow, rest_graph())  # the draft drops the schedule
    assert Schedule.objects.get(workflow=workflow).next_fire_at == before
    assert publish(api(personas["designer"]), workflow, 2).status_code == 200
    assert not Schedule.objects.filter(workflow=workflow).exists()
    assert before > timezone.now() - dt.timedelta(days=1)


@pytest.mark.django_db(transaction=True)
def test_two_people_asking_at_the_same_moment_leave_one_open_request(personas):
    """Where a second person must approve, one request may be open per workflow: two publishers
    asking at the same moment (each in a thread, with a connection of its own) wait for each other on
    the workflow's row; one files the request, the other is told one is open."""
    import threading

    from django.core.exceptions import ValidationError
    from django.db import connection

    from workflows.design.publishing import publish as publish_version
    from workflows.design.versions import save_version
    from workflows.graph import parse_graph
    from workflows.models.graph import PublishRequest

    second = make_user("dora", "designer")
    workflow = make_workflow(personas["designer"], rest_graph(), name="Guarded")
    Workflow.objects.filter(pk=workflow.pk).update(publish_needs_approval=True)
    drafts = []
    for i in range(2):
        workflow.refresh_from_db()
        drafts.append(save_version(workflow, parse_graph(rest_graph(sink=f"out{i}")), user=personas["admin"],
                                   parent=workflow.head))
    start, outcomes = threading.Barrier(2), []

    def ask(user, version) -> None:
        try:
            start.wait(10)
            outcomes.append(("filed", publish_version(Workflow.objects.get(pk=workflow.pk), version, user=user)))
        except ValidationError as exc:
            outcomes.append(("refused", exc.messages[0]))
        finally:
            connection.close()

    threads = [threading.Thread(target=ask, args=(who, version))
               for who, version in ((personas["designer"], drafts[0]), (second, drafts[1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(kind for kind, _ in outcomes) == ["filed", "refused"], outcomes
    assert "still open" in next(text for kind, text in outcomes if kind == "refused")
    assert PublishRequest.objects.filter(workflow=workflow, decision=PublishRequest.OPEN).count() == 1


def test_a_draft_with_a_step_no_handler_can_run_is_not_published(personas, api):
    """Publishing checked what a run start checks except the handlers: a draft with a node type the
    catalogue knows but no installed handler runs went live, and every intake then failed."""
    from workflows.graph.catalog import CATALOG, NodeType
    from workflows.graph.catalog import register as register_type

    register_type(NodeType("test.unhandled", "routing", "Unhandled", "A node type without a handler (tests only)."))
    try:
        designer = api(personas["designer"])
        workflow = make_workflow(personas["designer"], rest_graph(), name="Unhandled")
        graph = rest_graph()
        graph["nodes"].append(node("odd", "test.unhandled"))
        graph["edges"].append(edge("ext", "odd"))
        number = save(designer, workflow, graph)
        answer = publish(designer, workflow, number)
        assert answer.status_code == 400, answer.data
        assert "no handler is installed for 'test.unhandled'" in str(answer.data)
        workflow.refresh_from_db()
        assert workflow.published == 1
    finally:
        CATALOG.pop("test.unhandled", None)
