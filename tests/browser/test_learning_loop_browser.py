"""The learning loop in a real browser, as people walk it: the operator answers spot checks and
escalations, the trainer trains the step's own classifier from them and asks for production with
evidence on a labelled set uploaded through its preview, the requester may not approve, a validator
does, and the next run is decided by the new version.

Setting up the workflow and the documents, and the workers' part (shards, governance queue), are
done in Python between page steps; every decision a person takes is taken on a page."""

from __future__ import annotations

import pytest

from tests.browser.conftest import shot
from tests.browser.test_canvas_browser import canvas_ready, open_panel
from tests.builders import make_workflow
from tests.engine.helpers import drain
from tests.governance.conftest import run_governance_queue
from tests.governance.test_learning_loop import VAGUE, documents, loop_graph

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

FIRST_RUN = 45


def answer_every_task_on_the_page(page, run, kind: str) -> int:
    """Click the true label of every open task of `kind` in the run, one card at a time."""
    from workflows.models import ReviewTask

    answered = 0
    url = "/review/?kind=spot_check" if kind == ReviewTask.SPOT_CHECK else "/review/"
    page.goto(url)
    while page.locator("#tasks .review-task").count():
        card = page.locator("#tasks .review-task").first
        task = ReviewTask.objects.select_related("item").get(pk=int(card.get_attribute("data-task")))
        assert task.run_id == run.pk and task.kind == kind and task.status == ReviewTask.OPEN
        truth = task.item.payload["truth"]
        card.locator("button.pick", has_text=truth).click()
        page.wait_for_selector(f'[data-task="{task.pk}"]', state="detached")
        task.refresh_from_db()
        assert task.status == ReviewTask.DECIDED
        answered += 1
        assert answered <= FIRST_RUN, "the queue does not empty"
        if not page.url.endswith(url):  # wherever the answer lands, the next task is on the same tab
            page.goto(url)
    page.wait_for_selector("#empty")
    return answered


def test_the_factory_learns_in_the_browser(page, login, personas, packaged_models):
    from workflows.engine import launch
    from workflows.models import Decision, Label, ReviewTask
    from workflows.models.registry import LabelledSet, ModelJob, PromotionRequest, RegisteredModel

    workflow = make_workflow(personas["designer"], loop_graph(), name="Support triage")
    first = launch.create_run(workflow, user=personas["operator"],
                              items=[{"text": t, "truth": label} for t, label in documents(FIRST_RUN, seed=1)])
    drain()
    open_tasks = ReviewTask.objects.filter(run=first, status=ReviewTask.OPEN)
    assert open_tasks.count() == FIRST_RUN  # every item is spot-checked or escalated
    spot_count = open_tasks.filter(kind=ReviewTask.SPOT_CHECK).count()
    assert spot_count > 0

    # 1. The operator answers the spot checks (their own tab, with its explanation), then the escalations.
    login(personas["operator"])
    page.goto("/review/?kind=spot_check")
    assert page.locator("#spot-check-explain").is_visible()
    assert "spot check" in page.locator("#tasks .review-task").first.inner_text().lower()
    assert page.locator("#tasks .review-task:not(.spot-check)").count() == 0
    shot(page, "learning-loop-spot-checks")
    spots = answer_every_task_on_the_page(page, first, ReviewTask.SPOT_CHECK)
    escalations = answer_every_task_on_the_page(page, first, ReviewTask.ESCALATION)
    assert spots == spot_count and spots + escalations == FIRST_RUN
    assert not ReviewTask.objects.filter(run=first, status=ReviewTask.OPEN).exists()
    assert Label.objects.filter(item__run=first).count() >= FIRST_RUN
    drain()  # escalated items resume
    page.click("text=Log out")

    # 2. The trainer opens the step on the canvas and trains a classifier of its own from the reviews.
    login(personas["trainer"])
    page.goto(f"/workflows/{workflow.pk}/")
    canvas_ready(page)
    open_panel(page, "cls")
    page.locator("#step-learning button", has_text="Train a classifier for this step").click()
    page.wait_for_url("**/models/*/")
    model = RegisteredModel.objects.get(name=page.url.rstrip("/").rsplit("/", 1)[-1])
    name = model.name
    assert model.origin_workflow == workflow and model.origin_node == "cls"
    assert sorted(model.seed_labels) == sorted(VAGUE) and not model.versions.exists()
    assert page.locator("#train input[name=use_reviews]").is_checked()
    page.click("#train button.primary")
    page.wait_for_url("**/models/jobs/*/")
    job = ModelJob.objects.get(model=model)
    assert job.status != ModelJob.SUCCEEDED and job.result_version is None
    assert run_governance_queue() == 1
    job.refresh_from_db()
    assert job.status == ModelJob.SUCCEEDED, job.error
    version = job.result_version
    assert version.ref == f"{name}:v1" and sorted(version.labels) == sorted(VAGUE)
    page.reload()
    assert page.inner_text("#job-result") == version.ref
    page.wait_for_selector("#learning-curve .learning-curve")
    assert "Learning curve" in page.inner_text("#learning-curve")
    shot(page, "learning-loop-trained")
    page.goto(f"/models/{name}/")
    assert "v1" in page.inner_text("#versions") and "What training chose" in page.inner_text("#learning-curve")

    # 3. Evidence on a separate labelled set, previewed and mapped on upload.
    csv = "\n".join(["body,category,channel"] + [f'"{t}",{label},email' for t, label in documents(45, seed=2)])
    page.goto("/models/")
    form = page.locator("#labelled-upload form")
    form.locator("input[name=file]").set_input_files({"name": "eval.csv", "mimeType": "text/csv",
                                                      "buffer": csv.encode()})
    form.locator("input[name=name]").fill("support-eval")
    form.locator("select[name=model]").select_option(name)
    form.locator("button[name=preview]").click()
    page.wait_for_selector("#labelled-preview")
    assert "body" in page.inner_text("#labelled-preview thead") and not LabelledSet.objects.filter(
        name="support-eval").exists()
    page.select_option("select[name=map_text]", "body")
    page.select_option("select[name=map_label]", "category")
    page.check("input[name=segments][value=channel]")
    page.click("#labelled-set-upload button.primary")
    page.wait_for_url("**/models/")
    labelled = LabelledSet.objects.get(name="support-eval")
    assert len(labelled.items) == 45 and labelled.model == model

    page.goto(f"/models/{name}/v1/")
    page.select_option("#promote select[name=alias]", "production")
    page.fill("#promote textarea[name=reason]", "First trained version")
    page.select_option("#promote select[name=labelled_set]", str(labelled.pk))
    page.click("#promote-button")
    page.wait_for_url("**/promotions/*/")
    promotion = PromotionRequest.objects.get(version=version)
    assert promotion.requested_by == personas["trainer"] and promotion.labelled_set == labelled
    assert run_governance_queue() >= 1
    promotion.refresh_from_db()
    assert promotion.status == PromotionRequest.READY, promotion.evidence_error

    # 4. Four eyes: the requester, who also trained it, is not offered Approve.
    page.reload()
    page.wait_for_selector("#decide")
    assert page.locator("#approve").count() == 0
    if page.locator("#why-not").count():  # the page says why, and not that the evidence is still coming
        assert "Waiting for the evidence" not in page.inner_text("#why-not")
    page.click("text=Log out")

    login(personas["validator"])
    page.goto(f"/promotions/{promotion.pk}/")
    page.fill("#decision-reason", "Clear gain on a separate set")
    if page.locator("#acknowledge-label-change").count():
        page.check("#acknowledge-label-change")
    assert page.locator("#approve").is_enabled()
    page.click("#approve")
    page.wait_for_selector("#decision")
    assert "validator" in page.inner_text("#decision")
    shot(page, "learning-loop-approved")
    promotion.refresh_from_db()
    assert promotion.status == PromotionRequest.APPROVED and promotion.decided_by == personas["validator"]
    assert RegisteredModel.objects.get(name=name).alias("production") == version

    # 5. The next run is decided by the new version.
    second = launch.create_run(workflow, user=personas["operator"],
                               items=[{"text": t, "truth": label} for t, label in documents(30, seed=3)])
    drain()
    refs = set(Decision.objects.filter(run=second, node="cls").values_list("model_ref", flat=True))
    assert refs == {f"{name}:v1"}
