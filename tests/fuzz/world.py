"""A small seeded world for the API fuzzer: real objects behind the path parameters it generates.

Without them every `{id}` is a 404 and the fuzzer never reaches the code behind it; with them the
fuzzer sometimes hits a real workflow, version, run, item, review task, model, job or promotion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rest_framework.authtoken.models import Token

from tests.builders import make_baseline, make_workflow, register_model, triage_graph
from workflows.design.versions import save_version
from workflows.roles import ROLES

# Everyone the fuzzer calls as: each role, a user with no role and nobody at all.
IDENTITIES = (*ROLES, "outsider", "anonymous")


@dataclass
class World:
    tokens: dict[str, str]  # identity -> token key (anonymous has none)
    # Real values for path and query parameters, by the route prefix they belong to.
    ids: dict[str, list[Any]] = field(default_factory=dict)

    def headers(self, identity: str) -> dict[str, str]:
        key = self.tokens.get(identity)
        return {"Authorization": f"Token {key}"} if key else {}


def build_world(personas: dict[str, Any]) -> World:
    from tests.engine.helpers import make_runnable_workflow, pattern_graph
    from tests.kpi import ledger
    from workflows.engine.launch import create_run
    from workflows.governance.jobs import create_job
    from workflows.models import ReviewTask
    from workflows.models.registry import LabelledSet, ModelJob, PromotionRequest, register_version

    designer, trainer = personas["designer"], personas["trainer"]
    tokens = {who: Token.objects.create(user=personas[who]).key for who in IDENTITIES if who != "anonymous"}

    register_model("minilm", "embedder", sha="e" * 64)
    register_model("rampart", "extractor")
    tickets = register_model("tickets", "classifier", labels=["billing", "technical", "account"])
    candidate, _ = register_version(model_name="tickets", kind="classifier", meta={"sha256": "c" * 64, "size": 2},
                                    source="trained", runtime="head", parent=tickets, author=trainer,
                                    trained_by=trainer)

    # A triage workflow with two versions, a runnable one with a live REST source, a KPI ledger.
    triage = make_workflow(designer)
    save_version(triage, triage.latest.as_graph(), user=designer, parent=1, message="Second")
    graph = pattern_graph()
    graph["nodes"].append({"id": "rest", "type": "source.rest", "config": {"fields": ["text", "lang"]}})
    graph["edges"].append({"source": "rest", "source_port": "out", "target": "ext", "target_port": "in"})
    runnable = make_runnable_workflow(designer, graph)
    run = create_run(runnable, user=personas["operator"],
                     items=[{"text": "mario.rossi@example.it", "lang": "it"},
                            {"text": "IBAN IT60X0542811101000000123456", "lang": "en"}])
    items = list(run.items.order_by("seq"))
    review = ReviewTask.objects.create(run=run, item=items[0], node="ext",
                                       proposal={"label": "billing", "confidence": 0.5})
    kpi = make_workflow(designer, triage_graph(), name="KPIs")
    ledger.build(kpi, designer)
    make_baseline(kpi, designer)

    labelled = LabelledSet.objects.create(name="fuzz-set", source="upload", labels=["billing", "technical"],
                                          items=[{"text": f"t{i}", "label": ["billing", "technical"][i % 2]}
                                                 for i in range(12)])
    request = PromotionRequest.objects.create(version=candidate, alias="candidate", reason="fuzz",
                                              requested_by=designer, status=PromotionRequest.READY)
    job = create_job(kind=ModelJob.OPTIMISE, model=tickets.model, base_version=tickets, created_by=trainer)

    workflows = [triage.pk, runnable.pk, kpi.pk]
    return World(tokens=tokens, ids={
        "/api/workflows/{id}": workflows,
        "/api/runs/{id}": [run.pk],
        "item_id": [i.pk for i in items],
        "/api/reviews/{id}": [review.pk],
        "/api/review/{id}": [review.pk],
        "/api/promotions/{id}": [request.pk],
        "/api/jobs/{id}": [job.pk],
        "name": ["tickets", "minilm"],
        "number": [1, 2],
        "from": [1, 2],
        "to": [1, 2],
        "version": [1, 2],
        "week": ["2025-W13"],
        "node": ["ext", "cls", "cas", "route"],
        "model": ["tickets"],
        "labelled_set": [labelled.name],
    })


def fingerprint() -> dict[str, Any]:
    """Everything a request could write, audit entries aside (a refusal is audited): a refused request
    (4xx) must leave it as it was."""
    from django_tasks_db.models import DBTaskResult

    from workflows.models import (
        Alias,
        Baseline,
        Dataset,
        Decision,
        Item,
        Label,
        LabelledSet,
        ModelJob,
        ModelVersion,
        PromotionRequest,
        RegisteredModel,
        ReviewTask,
        Run,
        Shard,
        Workflow,
        WorkflowVersion,
    )

    counts = {m.__name__: m.objects.count() for m in (
        Workflow, WorkflowVersion, Run, Item, Shard, Decision, Dataset, LabelledSet, RegisteredModel, ModelVersion,
        PromotionRequest, ModelJob, Label, Baseline, DBTaskResult)}
    return {**counts,
            "workflows": sorted(Workflow.objects.values_list("id", "name", "description", "head")),
            "runs": sorted(Run.objects.values_list("id", "status")),
            "reviews": sorted(ReviewTask.objects.values_list("id", "status")),
            "promotions": sorted(PromotionRequest.objects.values_list("id", "status")),
            "aliases": sorted(Alias.objects.values_list("model_id", "name", "version_id"))}
