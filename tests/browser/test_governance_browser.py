"""A trainer optimises MiniLM to int8 and asks for production; a second validator approves; the
workflow's next run uses the new version; the audit page shows the verified chain.

The worker's part (the governance queue) is run by the test between page steps."""

from __future__ import annotations

import pytest

from tests.builders import edge, make_user, make_workflow, node
from tests.governance.conftest import run_governance_queue
from tests.runtimes.conftest import artifact_dir, artifacts  # noqa: F401  (the cached real model build)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def packaged_models(transactional_db, settings, artifacts, artifact_dir):  # noqa: F811 (fixtures imported above)
    from workflows.engine.nodes import loader
    from workflows.management.commands.setup_models import register_metas

    settings.ARTIFACTS_DIR = artifact_dir
    loader.clear()
    yield register_metas(artifacts, log=lambda line: None)
    loader.clear()


def test_trainer_optimises_requests_validator_approves_next_run_uses_it(page, login, packaged_models):
    from workflows.engine.launch import create_run
    from workflows.models import AuditEntry, ModelJob, PromotionRequest

    trainer = make_user("tina", "trainer")
    validator = make_user("vera", "validator")
    designer = make_user("dario", "designer")
    graph = {"nodes": [node("src", "source.upload", fields=["text"]),
                       node("cls", "classify", model="minilm@production", method="zero_shot",
                            labels={"billing": "invoices, payments, refunds", "technical": "crashes, errors, bugs"}),
                       node("out", "sink.table")],
             "edges": [edge("src", "cls"), edge("cls", "out")]}
    workflow = make_workflow(designer, graph, name="Zero-shot triage")
    fp32 = packaged_models["minilm-fp32"]

    login(trainer)
    page.goto(f"/models/minilm/v{fp32.number}/")
    page.click("#optimise-button")
    page.wait_for_url("**/models/jobs/*/")
    assert run_governance_queue() == 1
    job = ModelJob.objects.get()
    assert job.status == "succeeded", job.error
    page.reload()
    page.wait_for_selector("#job-report")
    assert "Throughput" in page.inner_text("#job-report")
    new = job.result_version
    page.select_option("#job-promote select[name=alias]", "production")
    page.fill("#job-promote input[name=reason]", "int8: half the size, same answers")
    page.click("#job-promote button")
    page.wait_for_url("**/promotions/*/")
    request = PromotionRequest.objects.get()
    assert request.requested_by == trainer and request.version == new
    assert run_governance_queue() == 1
    page.reload()
    assert "another validator" in page.inner_text("#decide") or page.locator("#approve").count() == 0
    page.click("text=Log out")

    login(validator)
    page.goto(f"/promotions/{request.pk}/")
    page.fill("#decision-reason", "Cosine agreement is fine")
    page.click("#approve")
    page.wait_for_selector("#decision")
    assert "Approved by vera" in page.inner_text("#decision").replace("approved", "Approved")
    request.refresh_from_db()
    assert request.status == "approved" and request.decided_by == validator

    run = create_run(workflow, user=designer, items=[{"text": "My invoice is wrong"}])
    assert run.resolved_models["minilm@production"]["ref"] == new.ref

    page.goto("/audit/")
    page.click("#verify")
    page.wait_for_selector("#verify-result")
    assert "Chain intact" in page.inner_text("#verify-result")
    table = page.inner_text("#audit")
    assert "promotion.approve" in table and "model.optimise.finish" in table
    assert AuditEntry.objects.filter(action="promotion.approve", actor=validator).exists()
