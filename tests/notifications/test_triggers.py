"""Each event tells the right people, once, from the one place it happens; a notification never breaks
the action that triggers it, and a rolled-back action tells nobody."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from tests.builders import make_user, make_workflow, register_model
from tests.engine.helpers import make_runnable_workflow, tickets
from tests.engine.test_budgets import a_run, closed_port_url
from tests.engine.test_schedules import scheduled_graph
from workflows.engine.budgets import DatabaseBudget
from workflows.engine.launch import create_run
from workflows.engine.monitor import give_up_shard
from workflows.engine.schedules import fire_due_schedules
from workflows.governance import drift, promotion
from workflows.governance.labelsets import create_labelled_set
from workflows.kpi import isoweeks, pack
from workflows.models import (
    Item,
    LLMEndpoint,
    Notification,
    PromotionRequest,
    ReviewTask,
    Run,
    Schedule,
    Shard,
    WeeklyPack,
)
from workflows.models import notifications as kinds
from workflows.models.registry import register_version
from workflows.notifications import events, notify
from workflows.notifications.duty import check_review_backlog
from workflows.runtimes.llm import BudgetExceeded

pytestmark = pytest.mark.django_db


def told(kind: str) -> set[str]:
    return set(Notification.objects.filter(kind=kind).values_list("user__username", flat=True))


def texts_of(user, kind: str) -> list[str]:
    from workflows.notifications.texts import text

    return [text(n.kind, n.params) for n in Notification.objects.filter(user=user, kind=kind)]


# --- promotions -----------------------------------------------------------------------------------------

@pytest.fixture
def candidate(personas):
    v1 = register_model("tickets", "classifier")
    v2, _ = register_version(model_name="tickets", kind="classifier", meta={"sha256": "b" * 64, "size": 2},
                             source="trained", runtime="head", parent=v1, author=personas["trainer"],
                             trained_by=personas["trainer"])
    create_labelled_set(name="tickets-eval", items=[{"text": "invoice", "label": "billing"},
                                                    {"text": "crash", "label": "technical"}], user=None,
                        model=v1.model)
    return v2


def test_a_promotion_request_tells_the_validators_who_may_decide_it_and_nobody_else(personas, candidate):
    # The trainer is also a validator, but trained the version: four eyes say they may not decide it.
    personas["trainer"].groups.add(Group.objects.get(name="validator"))
    request = promotion.request_promotion(candidate, "production", user=personas["designer"], reason="Better")
    assert told(kinds.PROMOTION_WAITING) == {"validator", "validator2"}
    note = Notification.objects.get(user=personas["validator"], kind=kinds.PROMOTION_WAITING)
    assert note.link == f"/promotions/{request.pk}/" and note.read_at is None and note.in_app
    assert texts_of(personas["validator"], kinds.PROMOTION_WAITING) == [
        f"designer asks to make tickets:v2 tickets@production (request #{request.pk}): it waits for a validator's "
        "decision."]


def test_a_decision_tells_the_requester_and_nobody_else(personas, candidate):
    request = promotion.request_promotion(candidate, "shadow", user=personas["designer"], reason="Try it")
    promotion.reject(request, user=personas["validator"], reason="Evaluate on Italian tickets first")
    assert told(kinds.PROMOTION_DECIDED) == {"designer"}
    assert texts_of(personas["designer"], kinds.PROMOTION_DECIDED) == [
        f"validator rejected request #{request.pk} (tickets:v2 as tickets@shadow): Evaluate on Italian tickets first"]

    again = promotion.request_promotion(candidate, "shadow", user=personas["trainer"], reason="Now with Italian")
    PromotionRequest.objects.filter(pk=again.pk).update(status=PromotionRequest.READY,
                                                        evidence={"evaluation": {"candidate": {"n": 2},
                                                                                 "labels_match": True}})
    again.refresh_from_db()
    promotion.approve(again, user=personas["validator2"], reason="ok")
    assert told(kinds.PROMOTION_DECIDED) == {"designer", "trainer"}
    assert texts_of(personas["trainer"], kinds.PROMOTION_DECIDED) == [
        f"validator2 approved request #{again.pk}: tickets:v2 is now tickets@shadow."]


def test_a_refused_promotion_request_tells_nobody(personas, candidate):
    promotion.request_promotion(candidate, "shadow", user=personas["designer"], reason="Try it")
    with pytest.raises(Exception, match="still open"):
        promotion.request_promotion(candidate, "shadow", user=personas["trainer"], reason="Again")
    assert Notification.objects.filter(kind=kinds.PROMOTION_WAITING).count() == 2  # the first request's only


def test_an_action_rolled_back_tells_nobody(personas, candidate):
    with pytest.raises(RuntimeError), transaction.atomic():
        promotion.request_promotion(candidate, "production", user=personas["designer"], reason="Better")
        assert told(kinds.PROMOTION_WAITING)  # written in the action's own transaction…
        raise RuntimeError("the caller gives up")
    assert not Notification.objects.exists()  # …and gone with it


# --- runs, schedules, budgets ----------------------------------------------------------------------------

def _fail_every_shard(run) -> None:
    """What the monitor does to a shard every worker died on: its items become dead letters."""
    now = timezone.now()
    Run.objects.filter(pk=run.pk).update(status="running")  # as the first shard's worker does
    for shard in Shard.objects.filter(run=run):
        Shard.objects.filter(pk=shard.pk).update(status=Shard.RUNNING, heartbeat=now - dt.timedelta(hours=1))
        assert give_up_shard(shard.pk, shard.attempt, Shard.RUNNING, now - dt.timedelta(minutes=1), now)


def test_a_failed_run_tells_who_started_it(personas):
    workflow = make_runnable_workflow(personas["designer"])
    run = create_run(workflow, user=personas["operator"], items=tickets(3))
    _fail_every_shard(run)
    run.refresh_from_db()
    assert run.status == "failed"
    assert told(kinds.RUN_FAILED) == {"operator"}
    note = Notification.objects.get(kind=kinds.RUN_FAILED)
    assert note.link == f"/runs/{run.pk}/"
    assert texts_of(personas["operator"], kinds.RUN_FAILED) == [
        f"Run #{run.pk} of Patterns failed: none of its 3 documents finished (see its dead letters)."]


def test_a_failed_run_nobody_started_tells_the_workflows_editors(personas):
    workflow = make_runnable_workflow(personas["designer"])
    run = create_run(workflow, user=None, items=tickets(1))  # a mailbox or a webhook starts runs so
    _fail_every_shard(run)
    assert told(kinds.RUN_FAILED) == {"designer", "admin"}


def test_a_run_that_completes_with_some_errors_is_not_a_failure(personas):
    workflow = make_runnable_workflow(personas["designer"])
    run = create_run(workflow, user=personas["operator"], items=tickets(2))
    Item.objects.filter(run=run, seq=0).update(status=Item.DONE)
    Run.objects.filter(pk=run.pk).update(items_done=1)
    _fail_every_shard(run)
    run.refresh_from_db()
    assert run.status == "completed_with_errors" and not told(kinds.RUN_FAILED)


def test_a_schedule_that_cannot_start_tells_the_editors_at_each_firing(personas):
    workflow = make_workflow(personas["designer"], scheduled_graph(dataset="nowhere"))
    schedule = Schedule.objects.get(workflow=workflow)
    first = schedule.next_fire_at
    assert fire_due_schedules(first + dt.timedelta(seconds=1)) == 0
    assert told(kinds.SCHEDULE_FAILED) == {"designer", "admin"}
    assert texts_of(personas["designer"], kinds.SCHEDULE_FAILED) == [
        "The schedule 'cron' of Triage did not start a run: data set 'nowhere' does not exist"]
    schedule.refresh_from_db()
    fire_due_schedules(schedule.next_fire_at + dt.timedelta(seconds=1))  # the next firing fails too: news again
    assert Notification.objects.filter(kind=kinds.SCHEDULE_FAILED, user=personas["designer"]).count() == 2


def test_a_spent_node_budget_tells_its_editors_and_the_runs_starter_once(personas):
    run = a_run(personas["operator"])
    LLMEndpoint.objects.create(name="ep", base_url=closed_port_url(), model_name="m", location="on_premise",
                               region="local")
    budget = DatabaseBudget(run.pk, "llm", "ep", max_tokens=100, max_eur=0.0)
    budget.reserve(80, 0.0)
    for _ in range(3):  # every refused call after the first is old news
        with pytest.raises(BudgetExceeded):
            budget.reserve(30, 0.0)
    assert told(kinds.BUDGET_EXHAUSTED) == {"operator", "designer", "admin"}
    assert Notification.objects.filter(kind=kinds.BUDGET_EXHAUSTED).count() == 3
    assert texts_of(personas["operator"], kinds.BUDGET_EXHAUSTED) == [
        f"The large-model budget of step 'llm' in run #{run.pk} of Patterns is spent: its documents go to people."]


def test_a_spent_monthly_endpoint_budget_tells_the_administrators(personas):
    run = a_run(personas["operator"])
    LLMEndpoint.objects.create(name="ep", base_url=closed_port_url(), model_name="m", location="on_premise",
                               region="local", monthly_budget_tokens=50)
    budget = DatabaseBudget(run.pk, "llm", "ep", max_tokens=0, max_eur=0.0)
    with pytest.raises(BudgetExceeded):
        budget.reserve(60, 0.0)
    assert told(kinds.BUDGET_EXHAUSTED) == {"admin"}
    assert Notification.objects.get(kind=kinds.BUDGET_EXHAUSTED).link == "/endpoints/"


# --- periodic checks: drift, packs to sign, the review backlog ---------------------------------------------

def _decisions(workflow, labels: list[str], confidence: float, when) -> None:
    from workflows.models import Decision

    run = Run.objects.create(workflow=workflow, version=workflow.latest, source_node="src", shard_size=256,
                             batch_size=32, resolved_models={})
    for seq, label in enumerate(labels):
        item = Item.objects.create(run=run, seq=seq, payload={"text": f"ticket {seq}"})
        Decision.objects.create(run=run, item=item, node="cls", model_ref="tickets:v1", label=label,
                                confidence=confidence, port="out", created_at=when)


def test_a_drift_alert_tells_who_may_act_on_it_once(personas, tickets_model):
    workflow = make_workflow(personas["designer"], name="Drifting")
    start = timezone.now() - dt.timedelta(days=3)
    _decisions(workflow, ["billing" if i % 10 < 3 else "technical" for i in range(100)], 0.92, start)
    _decisions(workflow, ["billing" if i % 10 < 3 else "technical" for i in range(100)], 0.92,
               start + dt.timedelta(days=1))
    assert drift.notify_alerts() == 0  # steady: nobody is told
    _decisions(workflow, ["billing" if i % 10 < 7 else "technical" for i in range(100)], 0.6,
               start + dt.timedelta(days=2))
    assert drift.notify_alerts() == 3
    assert told(kinds.DRIFT) == {"designer", "trainer", "admin"}
    assert texts_of(personas["trainer"], kinds.DRIFT) == [
        "Drift at step 'cls' of Drifting (tickets:v1): its decisions no longer look like those made after "
        "promotion. See the drift page."]
    assert drift.notify_alerts() == 0  # the same alert is old news


def test_last_weeks_pack_tells_the_business_owners_until_it_is_signed(personas):
    worked = make_workflow(personas["designer"], name="Worked")
    idle = make_workflow(personas["designer"], name="Idle")
    signed = make_workflow(personas["designer"], name="Signed")
    now = timezone.now()
    monday = isoweeks.week_start_of(now) - dt.timedelta(days=7)
    during = isoweeks.week_bounds(monday)[0] + dt.timedelta(days=2)
    for workflow in (worked, signed):
        Run.objects.create(workflow=workflow, version=workflow.latest, source_node="src", shard_size=256,
                           batch_size=32, resolved_models={}, status="succeeded", created_at=during,
                           finished_at=during)
    WeeklyPack(workflow=signed, week_start=monday, iso_year=monday.isocalendar()[0],
               iso_week=monday.isocalendar()[1], content={}, sha256="0" * 64,
               signed_by=personas["business_owner"]).save()
    assert pack.notify_ready_packs(now) == 1
    assert told(kinds.PACK_READY) == {"business_owner"}
    note = Notification.objects.get(kind=kinds.PACK_READY)
    week = isoweeks.week_label(monday)
    assert note.link == f"/workflows/{worked.pk}/kpis/packs/{week}/" and idle.pk != worked.pk
    assert texts_of(personas["business_owner"], kinds.PACK_READY) == [
        f"The weekly pack of Worked for {week} is ready to sign."]
    assert pack.notify_ready_packs(now) == 0


def test_a_review_backlog_over_its_limit_or_its_age_tells_the_reviewers_once_a_day(personas, settings):
    settings.NOTIFY_REVIEW_BACKLOG = 2
    settings.NOTIFY_REVIEW_SLA_HOURS = 24
    workflow = make_runnable_workflow(personas["designer"])
    run = create_run(workflow, user=personas["operator"], items=tickets(4))
    now = timezone.now()
    items = list(run.items.order_by("seq"))
    for item in items[:2]:
        ReviewTask.objects.create(run=run, item=item, node="ext", created_at=now - dt.timedelta(hours=1))
    ReviewTask.objects.create(run=run, item=items[2], node="ext", kind=ReviewTask.SPOT_CHECK)  # not a backlog
    assert check_review_backlog(now) == 0
    ReviewTask.objects.create(run=run, item=items[3], node="ext", created_at=now - dt.timedelta(hours=30))
    assert check_review_backlog(now) == 4  # too many, and too old: each told to operator and admin
    assert told(kinds.REVIEW_BACKLOG) == {"operator", "admin"}
    assert sorted(texts_of(personas["operator"], kinds.REVIEW_BACKLOG)) == [
        "3 documents wait in the review queue (the limit is 2).",
        "The oldest document in the review queue has waited 30 hours (the limit is 24 hours); 3 documents wait "
        "in all."]
    assert check_review_backlog(now + dt.timedelta(hours=1)) == 0  # the same day: old news
    assert check_review_backlog(now + dt.timedelta(days=1)) == 4


def test_each_team_s_backlog_is_told_to_that_team_s_reviewers_and_names_the_team(personas, settings):
    """Counted over every team, the notice told an operator of one team how many documents another
    team's people had waiting (and nagged them about work they cannot see)."""
    from workflows.models import Membership, Team, Workflow

    settings.NOTIFY_REVIEW_BACKLOG = 1
    settings.NOTIFY_REVIEW_SLA_HOURS = 0
    sales, legal = Team.objects.create(name="Sales"), Team.objects.create(name="Legal")
    seller, lawyer = make_user("sam"), make_user("lea")  # no group role: operators of one team each
    Membership.objects.create(team=sales, user=seller, role="operator")
    Membership.objects.create(team=legal, user=lawyer, role="operator")
    for team, waiting in ((sales, 3), (legal, 1)):
        workflow = make_runnable_workflow(personas["designer"], name=f"{team.name} line")
        Workflow.objects.filter(pk=workflow.pk).update(team=team)
        run = create_run(workflow, user=personas["operator"], items=tickets(waiting))
        for item in run.items.all():
            ReviewTask.objects.create(run=run, item=item, node="ext")
    assert check_review_backlog(timezone.now()) == 3  # Sales only: sam, and the organisation's operator and admin
    assert texts_of(seller, kinds.REVIEW_BACKLOG) == ["3 documents wait in the review queue of Sales (the limit is 1)."]
    assert texts_of(lawyer, kinds.REVIEW_BACKLOG) == []
    assert texts_of(personas["operator"], kinds.REVIEW_BACKLOG) == [
        "3 documents wait in the review queue of Sales (the limit is 1)."]


# --- never breaking the action ------------------------------------------------------------------------------

def test_a_notification_that_cannot_be_written_is_logged_and_the_action_goes_on(personas, caplog):
    with transaction.atomic():
        assert notify(kinds.RUN_FAILED, {"run": object()}, key="broken", to=[personas["operator"]]) == 0
        assert events.notify("no.such.kind", {}, key="k", to=[personas["operator"]]) == 0
        # The caller's transaction is intact: it writes, and commits.
        make_user("after-the-failure")
    assert "notification notify not written" in caplog.text
    assert not Notification.objects.exists()
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.filter(username="after-the-failure").exists()


def test_an_event_is_told_once_per_person_however_often_it_is_written(personas):
    for _ in range(3):
        notify(kinds.RUN_FAILED, {"run": 1}, key="run.failed:1", to=["run.start", personas["operator"]])
    assert Notification.objects.filter(user=personas["operator"]).count() == 1
    assert told(kinds.RUN_FAILED) == {"operator", "designer", "admin"}


def test_inactive_users_are_not_told(personas):
    personas["validator2"].is_active = False
    personas["validator2"].save()
    notify(kinds.PROMOTION_WAITING, {}, key="x")
    assert told(kinds.PROMOTION_WAITING) == {"validator"}
