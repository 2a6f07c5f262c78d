"""Every endpoint × every role: allowed → 2xx, denied → 403/404, anonymous → 401 or the login page.

The matrix is also a checklist: a URL pattern without a row here fails `test_every_route_has_a_row`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.builders import make_workflow, triage_graph
from workflows.models import AuditEntry
from workflows.roles import ROLES

pytestmark = pytest.mark.django_db

EDITORS = {"designer", "admin"}
EVERY_ROLE = set(ROLES)
AUTHENTICATED = EVERY_ROLE | {"outsider", "validator2"}
ROLE_OF = {**{role: role for role in ROLES}, "validator2": "validator", "outsider": None}


@dataclass
class Row:
    name: str  # URL pattern name
    method: str
    path: str  # formatted with {wf}
    allowed: set[str]
    payload: Any = None
    api: bool = True


def rows() -> list[Row]:
    return [
        Row("workflow-list", "get", "/api/workflows/", EVERY_ROLE),
        Row("workflow-list", "post", "/api/workflows/", EDITORS, {"name": "New", "graph": triage_graph()}),
        Row("workflow-detail", "get", "/api/workflows/{wf}/", EVERY_ROLE),
        Row("workflow-detail", "patch", "/api/workflows/{wf}/", EDITORS, {"description": "changed"}),
        Row("workflow-versions", "get", "/api/workflows/{wf}/versions/", EVERY_ROLE),
        Row("workflow-versions", "post", "/api/workflows/{wf}/versions/", EDITORS,
            {"graph": triage_graph(), "parent": 1}),
        Row("workflow-version", "get", "/api/workflows/{wf}/versions/1/", EVERY_ROLE),
        Row("workflow-restore", "post", "/api/workflows/{wf}/versions/1/restore/", EDITORS, {}),
        Row("workflow-diff", "get", "/api/workflows/{wf}/diff/?from=1&to=1", EVERY_ROLE),
        Row("workflow-export", "get", "/api/workflows/{wf}/export/", EVERY_ROLE),
        Row("workflow-import", "post", "/api/workflows/import/", EDITORS,
            {"format": "cognitive-factory/workflow", "format_version": 1, "name": "Imp", "graph": triage_graph()}),
        Row("workflow-validate", "post", "/api/workflows/validate/", EVERY_ROLE, {"graph": triage_graph()}),
        Row("api-catalog", "get", "/api/catalog/", EVERY_ROLE),
        Row("api-me", "get", "/api/me/", AUTHENTICATED),
        Row("workflow-list", "get", "/", EVERY_ROLE, api=False),
        Row("workflow-create", "post", "/workflows/new/", EDITORS, {"name": "From page"}, api=False),
        Row("workflow-detail", "get", "/workflows/{wf}/", EVERY_ROLE, api=False),
        Row("workflow-diff", "get", "/workflows/{wf}/diff/?from=1&to=1", EVERY_ROLE, api=False),
        # The canvas: node panel, history, import from a file, templates gallery.
        Row("canvas-panel", "get", "/workflows/{wf}/panel/?node=cls&type=classify&config=%7B%7D", EVERY_ROLE,
            api=False),
        Row("canvas-panel", "post", "/workflows/{wf}/panel/", EDITORS,
            {"_node": "cls", "_type": "classify", "cfg-model": "minilm@production"}, api=False),
        Row("canvas-history", "get", "/workflows/{wf}/history/", EVERY_ROLE, api=False),
        Row("canvas-samples", "get", "/workflows/{wf}/samples/?node=cls", EVERY_ROLE, api=False),
        Row("canvas-run", "get", "/workflows/{wf}/canvas-run/", EVERY_ROLE, api=False),
        Row("workflow-upload", "post", "/workflows/import/", EDITORS,
            {"document": '{"format": "cognitive-factory/workflow", "format_version": 1, "name": "Up", '
                         '"graph": {"nodes": [], "edges": []}}'},
            api=False),
        Row("gallery", "get", "/templates/", EVERY_ROLE, api=False),
        Row("gallery-use", "post", "/templates/ticket-triage/use/", EDITORS, {}, api=False),
    ]


# Routes outside the role matrix, each with the reason.
EXEMPT = {
    "login": "public login page",
    "admin-login": "the Django admin's public login page (throttled like the site's)",
    "logout": "ends the caller's own session",
    "api-token": "exchanges a username and password for a token",
    "api-schema": "public API description",
    "api-docs": "public API description",
    "api-redoc": "public API description",
    "set_language": "sets the caller's own language cookie (Django's set_language)",
    "javascript-catalog": "the scripts' translation catalogue, the same for everyone",
    "favicon": "the site icon, the same for everyone",
    "webhook-receive": "inbound webhooks authenticate by signature (tests/inbound/test_webhooks.py)",
}


def _request(client: Client, row: Row, wf: int):
    path = row.path.format(wf=wf)
    if row.method == "get":
        return client.get(path)
    if row.api:
        return getattr(client, row.method)(path, row.payload, content_type="application/json")
    return client.post(path, row.payload)


@pytest.mark.parametrize("row", rows(), ids=lambda r: f"{r.method} {r.path}")
def test_role_matrix(personas, row):
    wf = make_workflow(personas["designer"]).pk
    for who in sorted(AUTHENTICATED):
        client = Client()
        client.force_login(personas[who])
        response = _request(client, row, wf)
        if who in row.allowed or ROLE_OF[who] in row.allowed:
            assert 200 <= response.status_code < 400, (who, response.status_code,
                                                       getattr(response, "content", b"")[:300])
            if row.method == "post" and row.name == "workflow-versions":
                wf = make_workflow(personas["designer"]).pk  # the next saver starts from a fresh head
        else:
            assert response.status_code in (403, 404), (who, response.status_code)
    anonymous = _request(Client(), row, wf)
    if row.api:
        assert anonymous.status_code == 401
    else:
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


def test_refusals_are_audited(personas, api):
    wf = make_workflow(personas["designer"])
    api(personas["operator"]).post(f"/api/workflows/{wf.pk}/versions/", {"graph": triage_graph(), "parent": 1},
                                   format="json")
    entry = AuditEntry.objects.filter(action="access.denied").latest("id")
    assert entry.actor == personas["operator"] and entry.data["capability"] == "workflow.edit"
    assert entry.object_id == str(wf.pk)


def test_token_auth_for_scripts(personas):
    from rest_framework.test import APIClient

    client = APIClient()
    r = client.post("/api/auth/token/", {"username": "designer", "password": "correct-horse-battery-staple"},
                    format="json")
    assert r.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {r.data['token']}")
    assert client.get("/api/workflows/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token wrong")
    assert client.get("/api/workflows/").status_code == 401


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            if p.namespace == "admin":
                continue
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield p.name, prefix + str(p.pattern)


def test_every_route_has_a_row():
    # the channels' rows live in a module of their own, which imports this one
    from tests.test_role_matrix_channels import lifecycle_rows, mailbox_rows, notification_rows, webhook_source_rows
    from tests.test_role_matrix_teams import publication_rows, team_rows

    covered = ({r.name for r in rows()} | {r.name for r in run_rows()} | {r.name for r in governance_rows()}
               | {r.name for r in kpi_rows()} | {r.name for r in endpoint_rows()}
               | {r.name for r in notification_rows()} | {r.name for r in webhook_source_rows()}
               | {r.name for r in mailbox_rows()} | {r.name for r in lifecycle_rows()} | {r.name for r in team_rows()}
               | {r.name for r in publication_rows()} | set(EXEMPT))
    missing = sorted({f"{name} ({route})" for name, route in _walk(get_resolver().url_patterns) if name not in covered})
    assert not missing, f"Routes without a role-matrix row: {missing}"
    from workflows.live.routing import websocket_urlpatterns

    sockets = {r.name for r in socket_rows()}
    missing = sorted({f"{name} ({route})" for name, route in _walk(websocket_urlpatterns) if name not in sockets})
    assert not missing, f"Socket routes without a role-matrix row: {missing}"


# --- runs: every request gets fresh objects, since cancelling or deciding twice is refused.

RUNNERS = {"operator", "designer", "admin"}
REVIEWERS = {"operator", "admin"}


def run_rows() -> list[Row]:
    items = {"items": [{"text": "hello", "lang": "en"}]}
    return [
        Row("api-workflow-runs", "get", "/api/workflows/{wf}/runs/", EVERY_ROLE),
        Row("api-workflow-runs", "post", "/api/workflows/{wf}/runs/", RUNNERS, items),
        Row("api-upload-preview", "post", "/api/workflows/{wf}/runs/preview/", RUNNERS, "file"),
        Row("api-intake", "post", "/api/workflows/{wf}/intake/", RUNNERS, items),
        Row("api-run-list", "get", "/api/runs/", EVERY_ROLE),
        Row("api-run-detail", "get", "/api/runs/{run}/", EVERY_ROLE),
        Row("api-run-cancel", "post", "/api/runs/{run}/cancel/", RUNNERS, {}),
        Row("api-run-retry", "post", "/api/runs/{run}/retry/", RUNNERS, {}),
        Row("api-run-items", "get", "/api/runs/{run}/items/", EVERY_ROLE),
        Row("api-run-item", "get", "/api/runs/{run}/items/{item}/", EVERY_ROLE),
        Row("api-run-export", "get", "/api/runs/{run}/export/?as=jsonl", EVERY_ROLE),
        Row("api-review-decide", "post", "/api/reviews/{review}/decide/", REVIEWERS, {"label": "ok"}),
        Row("run-start", "get", "/workflows/{wf}/run/", RUNNERS, api=False),
        Row("run-list", "get", "/runs/", EVERY_ROLE, api=False),
        Row("run-detail", "get", "/runs/{run}/", EVERY_ROLE, api=False),
        Row("run-cancel", "post", "/runs/{run}/cancel/", RUNNERS, {}, api=False),
        Row("run-retry", "post", "/runs/{run}/retry/", RUNNERS, {}, api=False),
        Row("run-results", "get", "/runs/{run}/results/", EVERY_ROLE, api=False),
        Row("run-item", "get", "/runs/{run}/items/{item}/", EVERY_ROLE, api=False),
        Row("run-original", "get", "/runs/{run}/originals/{original}/", EVERY_ROLE, api=False),
        Row("api-run-original", "get", "/api/runs/{run}/originals/{original}/", EVERY_ROLE),
        Row("run-download", "get", "/runs/{run}/download.csv", EVERY_ROLE, api=False),
        Row("api-datasets", "get", "/api/datasets/", EVERY_ROLE),
        Row("api-datasets", "post", "/api/datasets/", RUNNERS, "dataset"),
        Row("dataset-list", "get", "/datasets/", EVERY_ROLE, api=False),
        Row("dataset-list", "post", "/datasets/", RUNNERS, "dataset", api=False),
        Row("run-sample", "post", "/workflows/{sample_wf}/sample/", RUNNERS, {}, api=False),
    ]


def _run_objects(personas) -> dict[str, Any]:
    from tests.documents.files import text_pdf
    from tests.engine.helpers import make_runnable_workflow, pattern_graph
    from workflows.engine.documents import items_from_file
    from workflows.engine.launch import create_run
    from workflows.models import ReviewTask

    graph = pattern_graph()
    graph["nodes"].append({"id": "rest", "type": "source.rest", "config": {"fields": ["text", "lang"]}})
    graph["edges"].append({"source": "rest", "source_port": "out", "target": "ext", "target_port": "in"})
    workflow = make_runnable_workflow(personas["designer"], graph)
    document = items_from_file(text_pdf(["a"]), "a.pdf")[0]  # the item's original, served by run-original
    run = create_run(workflow, user=personas["operator"], items=[{**document, "lang": "en"}])
    item = run.items.get()
    review = ReviewTask.objects.create(run=run, item=item, node="ext")
    sample = make_runnable_workflow(personas["designer"], pattern_graph())
    sample.template = "catalogue-enrichment"  # any template with sample documents
    sample.save(update_fields=["template"])
    return {"wf": workflow.pk, "run": run.pk, "item": item.pk, "review": review.pk, "sample_wf": sample.pk,
            "original": document["original"]}


def _run_request(client: Client, row: Row, ids: dict[str, int]):
    from django.core.files.uploadedfile import SimpleUploadedFile

    path = row.path.format(**ids)
    if row.method == "get":
        return client.get(path)
    if row.payload == "file":
        return client.post(path, {"file": SimpleUploadedFile("x.csv", b"text,lang\nhello,en\n")})
    if row.payload == "dataset":
        return client.post(path, {"name": "weekly", "file": SimpleUploadedFile("x.csv", b"text,lang\nhello,en\n")})
    if row.api:
        return client.post(path, row.payload, content_type="application/json")
    return client.post(path, row.payload)


@pytest.mark.parametrize("row", run_rows(), ids=lambda r: f"{r.method} {r.path}")
def test_run_role_matrix(personas, row):
    for who in sorted(AUTHENTICATED):
        ids = _run_objects(personas)
        client = Client()
        client.force_login(personas[who])
        response = _run_request(client, row, ids)
        if who in row.allowed or ROLE_OF[who] in row.allowed:
            assert 200 <= response.status_code < 400, (who, response.status_code,
                                                       getattr(response, "content", b"")[:300])
        else:
            assert response.status_code in (403, 404), (who, response.status_code)
    anonymous = _run_request(Client(), row, _run_objects(personas))
    if row.api:
        assert anonymous.status_code == 401
    else:
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


# --- governance: a fresh model, versions, request, job and review task for every request.

TRAINERS = {"trainer", "admin"}
REQUESTERS = {"trainer", "designer", "admin"}
VALIDATORS = {"validator"}
AUDITORS = {"validator", "admin", "business_owner"}


def governance_rows() -> list[Row]:
    approve = {"action": "approve", "reason": "ok"}
    return [
        Row("model-list", "get", "/models/", EVERY_ROLE, api=False),
        Row("model-detail", "get", "/models/{model}/", EVERY_ROLE, api=False),
        Row("model-version", "get", "/models/{model}/v2/", EVERY_ROLE, api=False),
        Row("model-import", "post", "/models/import/", TRAINERS, "onnx", api=False),
        Row("labelled-set-upload", "post", "/models/labelled-sets/", TRAINERS, "csv", api=False),
        Row("model-train", "post", "/models/{model}/train/", TRAINERS, {"labelled_set": "{labelled}"}, api=False),
        Row("model-optimise", "post", "/models/{enc}/v1/optimise/", TRAINERS, {}, api=False),
        Row("classifier-create", "post", "/models/new/", TRAINERS, {"name": "{model}-new", "labels": "a\nb"},
            api=False),
        Row("node-classifier", "post", "/workflows/{zs}/nodes/cls/classifier/", TRAINERS, {}, api=False),
        Row("model-job", "get", "/models/jobs/{job}/", EVERY_ROLE, api=False),
        Row("model-rollback", "post", "/models/{model}/rollback/", REQUESTERS,
            {"alias": "production", "reason": "x"}, api=False),
        Row("promotion-create", "post", "/models/{model}/v2/promote/", REQUESTERS,
            {"alias": "shadow", "reason": "x"}, api=False),
        Row("promotion-list", "get", "/promotions/", EVERY_ROLE, api=False),
        Row("promotion-detail", "get", "/promotions/{request}/", EVERY_ROLE, api=False),
        Row("promotion-decide", "post", "/promotions/{request}/decide/", VALIDATORS, approve, api=False),
        Row("drift", "get", "/drift/", EVERY_ROLE, api=False),
        Row("drift-action", "post", "/drift/action/", EDITORS,
            {"action": "route_review", "workflow": "{wf}", "node": "cls"}, api=False),
        Row("review-queue", "get", "/review/", REVIEWERS, api=False),
        Row("review-decide", "post", "/review/{review}/decide/", REVIEWERS, {"label": "billing"}, api=False),
        Row("audit-log", "get", "/audit/", AUDITORS, api=False),
        Row("audit-verify", "post", "/audit/verify/", AUDITORS, {}, api=False),
        Row("api-models", "get", "/api/models/", EVERY_ROLE),
        Row("api-model", "get", "/api/models/{model}/", EVERY_ROLE),
        Row("api-model-import", "post", "/api/models/import/", TRAINERS, "onnx"),
        Row("api-model-train", "post", "/api/models/{model}/train/", TRAINERS, {"labelled_set": "{labelled}"}),
        Row("api-model-optimise", "post", "/api/models/{enc}/v1/optimise/", TRAINERS, {}),
        Row("api-classifier-create", "post", "/api/classifiers/", TRAINERS,
            {"name": "{model}-new", "labels": ["a", "b"]}),
        Row("api-node-classifier", "post", "/api/workflows/{zs}/nodes/cls/classifier/", TRAINERS, {}),
        Row("api-node-classifier", "get", "/api/workflows/{zs}/nodes/cls/classifier/", EVERY_ROLE),
        Row("api-job", "get", "/api/jobs/{job}/", EVERY_ROLE),
        Row("api-labelled-sets", "get", "/api/labelled-sets/", EVERY_ROLE),
        Row("api-labelled-sets", "post", "/api/labelled-sets/", TRAINERS, "csv"),
        Row("api-promotions", "get", "/api/promotions/", EVERY_ROLE),
        Row("api-promotions", "post", "/api/promotions/", REQUESTERS,
            {"model": "{model}", "version": 2, "alias": "shadow", "reason": "x"}),
        Row("api-promotion", "get", "/api/promotions/{request}/", EVERY_ROLE),
        Row("api-promotion-decide", "post", "/api/promotions/{request}/decide/", VALIDATORS, approve),
        Row("api-review-tasks", "get", "/api/review/", REVIEWERS),
        Row("api-review-label", "post", "/api/review/{review}/label/", REVIEWERS, {"label": "billing"}),
        Row("api-drift", "get", "/api/drift/", EVERY_ROLE),
        Row("api-audit", "get", "/api/audit/", AUDITORS),
        Row("api-audit-verify", "post", "/api/audit/verify/", AUDITORS, {}),
    ]


def _governance_objects(personas, n: int) -> dict[str, object]:
    from tests.builders import register_model
    from workflows.governance.jobs import create_job
    from workflows.models import ReviewTask
    from workflows.models.registry import LabelledSet, ModelJob, PromotionRequest, register_version

    ids = _run_objects(personas)
    register_model("minilm", "embedder", sha="e" * 64)
    name = f"gov{n}"
    v1 = register_model(name, "classifier", labels=["billing", "technical"])
    v2, _ = register_version(model_name=name, kind="classifier", meta={"sha256": f"{n:064d}", "size": 2},
                             source="trained", runtime="head", parent=v1, author=personas["trainer"],
                             trained_by=personas["trainer"])
    labelled = LabelledSet.objects.create(name=f"set{n}", source="upload", labels=["billing", "technical"],
                                          items=[{"text": f"t{i}", "label": ["billing", "technical"][i % 2]}
                                                 for i in range(12)])
    request = PromotionRequest.objects.create(version=v2, alias="candidate", reason="x",
                                              requested_by=personas["designer"], status=PromotionRequest.READY)
    job = create_job(kind=ModelJob.OPTIMISE, model=v1.model, base_version=v1, created_by=personas["trainer"])
    ReviewTask.objects.filter(pk=ids["review"]).update(proposal={"label": "billing", "confidence": 0.5})
    from tests.builders import edge, make_workflow, node

    zero_shot = make_workflow(personas["designer"], {
        "nodes": [node("src", "source.upload", fields=["text"]),
                  node("cls", "classify", model="minilm@production", method="zero_shot",
                       labels={"billing": "invoices", "technical": "errors"}), node("out", "sink.table")],
        "edges": [edge("src", "cls"), edge("cls", "out")]}, name=f"Zero-shot {n}")
    from workflows.governance.classifiers import classifier_for_node

    classifier_for_node(zero_shot, "cls")  # made by a first label: GET reads it, POST answers it again
    # Optimising is offered for encoders only (a trained head is refused: int8 buys it nothing).
    register_version(model_name=f"enc{n}", kind="embedder", runtime="minilm", source="packaged",
                     meta={"sha256": f"{n + 500:064d}", "size": 1})
    return {**ids, "model": name, "labelled": labelled.pk, "request": request.pk, "job": job.pk, "zs": zero_shot.pk,
            "enc": f"enc{n}"}


def _governance_request(client: Client, row: Row, ids: dict[str, object], n: int):
    import json

    from django.core.files.uploadedfile import SimpleUploadedFile

    path = row.path.format(**ids)
    if row.method == "get":
        return client.get(path)
    if row.payload == "onnx":
        from tests.governance.test_importer import tiny_model

        data = tiny_model().SerializeToString() if row.api else b"not a model"
        return client.post(path, {"file": SimpleUploadedFile("m.onnx", data), "name": f"imp{n}", "kind": "embedder"})
    if row.payload == "csv":
        return client.post(path, {"file": SimpleUploadedFile("s.csv", b"text,label\na,x\nb,y\n"), "name": f"up{n}"})
    payload = json.loads(json.dumps(row.payload).replace("{model}", str(ids["model"]))
                         .replace('"{labelled}"', str(ids["labelled"]))
                         .replace('"{wf}"', str(ids["wf"])))
    if row.api:
        if "labelled_set" in payload:
            payload["labelled_set"] = f"set{n}"
        return client.post(path, payload, content_type="application/json")
    return client.post(path, payload)


def check_row(personas, row: Row, request) -> None:
    """`request(client, n)` as every persona (allowed: 2xx/3xx; others: 403 or 404) and anonymously
    (the API: 401; pages: the login redirect); n makes each call's objects its own."""
    for n, who in enumerate(sorted(AUTHENTICATED)):
        client = Client()
        client.force_login(personas[who])
        response = request(client, n)
        if who in row.allowed or ROLE_OF[who] in row.allowed:
            assert 200 <= response.status_code < 400, (who, response.status_code,
                                                       getattr(response, "content", b"")[:300])
        else:
            assert response.status_code in (403, 404), (who, response.status_code)
    anonymous = request(Client(), 99)
    if row.api:
        assert anonymous.status_code == 401
    else:
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


@pytest.mark.parametrize("row", governance_rows(), ids=lambda r: f"{r.method} {r.path}")
def test_governance_role_matrix(personas, row):
    check_row(personas, row, lambda client, n: _governance_request(client, row, _governance_objects(personas, n), n))


# --- business KPIs: the workflow is the designer's, so designers see it and operators do not
# (operators see the workflows they ran); business owners and admins see every workflow.

KPI_OF_DESIGNERS = {"business_owner", "admin", "designer"}
KPI_VIEW = {"business_owner", "admin", "designer", "operator"}
BASELINE_EDITORS = {"business_owner", "admin"}
BASELINE = {"manual_minutes": "6", "hourly_cost": "30", "manual_accuracy": "95", "sla_hours": "24",
            "review_minutes": "2", "compute_eur_per_cpu_hour": "0.1", "grid_g_co2_per_kwh": "300",
            "watts_per_core": "20"}


def kpi_rows() -> list[Row]:
    return [
        Row("kpi-overview", "get", "/kpis/", KPI_VIEW, api=False),
        Row("kpi-dashboard", "get", "/workflows/{wf}/kpis/", KPI_OF_DESIGNERS, api=False),
        Row("kpi-baseline", "get", "/workflows/{wf}/kpis/baseline/", BASELINE_EDITORS, api=False),
        Row("kpi-baseline", "post", "/workflows/{wf}/kpis/baseline/", BASELINE_EDITORS, BASELINE, api=False),
        Row("kpi-packs", "get", "/workflows/{wf}/kpis/packs/", KPI_OF_DESIGNERS, api=False),
        Row("kpi-pack", "get", "/workflows/{wf}/kpis/packs/2025-W13/", KPI_OF_DESIGNERS, api=False),
        Row("kpi-pack-csv", "get", "/workflows/{wf}/kpis/packs/2025-W13/pack.csv", KPI_OF_DESIGNERS, api=False),
        Row("kpi-pack-sign", "post", "/workflows/{wf}/kpis/packs/2025-W13/sign/", {"business_owner"}, {}, api=False),
        Row("api-kpis", "get", "/api/kpis/", KPI_VIEW),
        Row("api-workflow-kpis", "get", "/api/workflows/{wf}/kpis/", KPI_OF_DESIGNERS),
        Row("api-kpi-baseline", "put", "/api/workflows/{wf}/kpis/baseline/", BASELINE_EDITORS, BASELINE),
        Row("api-kpi-what-if", "get", "/api/workflows/{wf}/kpis/what-if/?node=cas&threshold=0.5&week=2025-W13",
            KPI_OF_DESIGNERS),
        Row("api-kpi-packs", "get", "/api/workflows/{wf}/kpis/packs/", KPI_OF_DESIGNERS),
        Row("api-kpi-pack-sign", "post", "/api/workflows/{wf}/kpis/packs/2025-W13/sign/", {"business_owner"}, {}),
    ]


@pytest.mark.parametrize("row", kpi_rows(), ids=lambda r: f"{r.method} {r.path}")
def test_kpi_role_matrix(personas, row):
    from tests.kpi import ledger

    def fresh() -> int:
        workflow = make_workflow(personas["designer"])
        ledger.build(workflow, personas["designer"])
        return workflow.pk

    for who in sorted(AUTHENTICATED):
        client = Client()
        client.force_login(personas[who])
        response = _request(client, row, fresh())
        if who in row.allowed or ROLE_OF[who] in row.allowed:
            assert 200 <= response.status_code < 400, (who, response.status_code,
                                                       getattr(response, "content", b"")[:300])
        else:
            assert response.status_code in (403, 404), (who, response.status_code)
    anonymous = _request(Client(), row, fresh())
    if row.api:
        assert anonymous.status_code == 401
    else:
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]


# --- where documents may go: every role reads endpoints, destinations and policies; administrators change them.

ENDPOINT_MANAGERS = {"admin"}
ENDPOINT = {"name": "ep{n}", "base_url": "https://llm.example.com/v1", "model_name": "m", "location": "external",
            "region": "EU", "api_key_env": "", "price_in_per_1k": "0,5", "price_out_per_1k": "1", "enabled": True}
DESTINATION = {"name": "dest{n}", "url": "https://crm.example.com/hook", "location": "external", "region": "EU",
               "enabled": True}


def endpoint_rows() -> list[Row]:
    return [
        Row("endpoint-list", "get", "/endpoints/", EVERY_ROLE, api=False),
        Row("endpoint-create", "get", "/endpoints/llm/new/", ENDPOINT_MANAGERS, api=False),
        Row("endpoint-create", "post", "/endpoints/llm/new/", ENDPOINT_MANAGERS, ENDPOINT, api=False),
        Row("endpoint-edit", "get", "/endpoints/llm/{endpoint}/", ENDPOINT_MANAGERS, api=False),
        Row("endpoint-edit", "post", "/endpoints/llm/{endpoint}/", ENDPOINT_MANAGERS, ENDPOINT, api=False),
        Row("destination-create", "post", "/endpoints/webhooks/new/", ENDPOINT_MANAGERS, DESTINATION, api=False),
        Row("destination-edit", "post", "/endpoints/webhooks/{destination}/", ENDPOINT_MANAGERS, DESTINATION,
            api=False),
        Row("residency-policy", "post", "/endpoints/residency/{wf}/", ENDPOINT_MANAGERS,
            {"allow_external_endpoints": "on"}, api=False),
        Row("api-endpoints", "get", "/api/endpoints/", EVERY_ROLE),
        Row("api-endpoints", "post", "/api/endpoints/", ENDPOINT_MANAGERS, ENDPOINT),
        Row("api-endpoint", "get", "/api/endpoints/{endpoint}/", EVERY_ROLE),
        Row("api-endpoint", "patch", "/api/endpoints/{endpoint}/", ENDPOINT_MANAGERS, {"enabled": False}),
        Row("api-endpoint", "put", "/api/endpoints/{endpoint}/", ENDPOINT_MANAGERS, ENDPOINT),
        Row("api-destinations", "get", "/api/destinations/", EVERY_ROLE),
        Row("api-destinations", "post", "/api/destinations/", ENDPOINT_MANAGERS, DESTINATION),
        Row("api-destination", "get", "/api/destinations/{destination}/", EVERY_ROLE),
        Row("api-destination", "patch", "/api/destinations/{destination}/", ENDPOINT_MANAGERS, {"region": "US"}),
        Row("api-destination", "put", "/api/destinations/{destination}/", ENDPOINT_MANAGERS, DESTINATION),
        Row("api-residency", "get", "/api/workflows/{wf}/residency/", EVERY_ROLE),
        Row("api-residency", "put", "/api/workflows/{wf}/residency/", ENDPOINT_MANAGERS,
            {"allow_external_endpoints": True, "require_redaction": True}),
        Row("api-residency", "patch", "/api/workflows/{wf}/residency/", ENDPOINT_MANAGERS,
            {"require_redaction": False}),
    ]


def _endpoint_request(personas, client: Client, row: Row, n: int):
    """One request of an endpoint row against fresh objects; names carry `n` so creations never collide."""
    from workflows.models import LLMEndpoint, WebhookDestination

    endpoint = LLMEndpoint.objects.create(name=f"edit{n}", base_url="https://llm.example.com/v1", model_name="m",
                                          location="external", region="EU")
    destination = WebhookDestination.objects.create(name=f"hook{n}", url="https://crm.example.com/hook",
                                                    location="external", region="EU")
    ids = {"wf": make_workflow(personas["designer"]).pk, "endpoint": endpoint.name, "destination": destination.name}
    path = row.path.format(**ids)
    if row.method == "get":
        return client.get(path)
    payload = {k: v.format(n=n) if isinstance(v, str) else v for k, v in row.payload.items()}
    if "/{endpoint}/" in row.path or "/{destination}/" in row.path:
        payload["name"] = payload.get("name") and (endpoint.name if "{endpoint}" in row.path else destination.name)
        payload = {k: v for k, v in payload.items() if v is not None}
    if row.api:
        return getattr(client, row.method)(path, payload, content_type="application/json")
    payload = {k: ("on" if v is True else v) for k, v in payload.items() if v is not False}
    return client.post(path, payload)


@pytest.mark.parametrize("row", endpoint_rows(), ids=lambda r: f"{r.method} {r.path}")
def test_endpoint_role_matrix(personas, row):
    check_row(personas, row, lambda client, n: _endpoint_request(personas, client, row, n))


# --- live sockets: permission before accept; a refusal closes with a 44xx code.


def socket_rows() -> list[Row]:
    return [
        Row("ws-run-live", "socket", "/ws/runs/{run}/", EVERY_ROLE),
        Row("ws-workflow-live", "socket", "/ws/workflows/{wf}/live/", EVERY_ROLE),
    ]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("row", socket_rows(), ids=lambda r: r.path)
def test_socket_role_matrix(personas, row):
    from channels.testing import WebsocketCommunicator

    from factory.asgi import application
    from tests.live.sockets import run_async

    ids = _run_objects(personas)
    path = row.path.format(**ids)

    def subscribe(user) -> tuple[bool, int | None]:
        headers = [(b"origin", b"http://testserver")]
        if user is not None:
            client = Client()
            client.force_login(user)
            headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))

        async def go():
            com = WebsocketCommunicator(application, path, headers=headers)
            connected, code = await com.connect(timeout=5)
            if connected:
                await com.receive_from(timeout=5)  # the snapshot
                await com.disconnect()
            return connected, code

        return run_async(go)

    for who in sorted(AUTHENTICATED):
        connected, code = subscribe(personas[who])
        if who in row.allowed or ROLE_OF[who] in row.allowed:
            assert connected, (who, code)
        else:
            assert not connected, who
    assert not subscribe(None)[0]
