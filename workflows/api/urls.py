from __future__ import annotations

from django.urls import include, path
from rest_framework.routers import SimpleRouter

from workflows import login_throttle

from . import classifiers, datasets, endpoints, kpi, registry, runs, workflows

router = SimpleRouter()
router.register("workflows", workflows.WorkflowViewSet, basename="workflow")

urlpatterns = [
    path("auth/token/", login_throttle.obtain_auth_token, name="api-token"),  # throttled like the login page
    path("me/", workflows.me, name="api-me"),
    path("catalog/", workflows.catalog, name="api-catalog"),
    path("workflows/<int:pk>/runs/", runs.workflow_runs, name="api-workflow-runs"),
    path("workflows/<int:pk>/runs/preview/", runs.upload_preview, name="api-upload-preview"),
    path("workflows/<int:pk>/intake/", runs.intake, name="api-intake"),
    path("runs/", runs.run_list, name="api-run-list"),
    path("runs/<int:pk>/", runs.run_detail, name="api-run-detail"),
    path("runs/<int:pk>/cancel/", runs.run_cancel, name="api-run-cancel"),
    path("runs/<int:pk>/retry/", runs.run_retry, name="api-run-retry"),
    path("runs/<int:pk>/items/", runs.run_items, name="api-run-items"),
    path("runs/<int:pk>/items/<int:item_id>/", runs.run_item, name="api-run-item"),
    path("runs/<int:pk>/export/", runs.run_export, name="api-run-export"),
    path("runs/<int:pk>/originals/<str:sha256>/", runs.run_original, name="api-run-original"),
    path("reviews/<int:pk>/decide/", runs.review_decide, name="api-review-decide"),
    path("datasets/", datasets.datasets, name="api-datasets"),
    # Governance: the model registry, promotions, model jobs, review, drift and the audit log.
    path("models/", registry.model_list, name="api-models"),
    path("classifiers/", classifiers.classifier_create, name="api-classifier-create"),
    path("workflows/<int:pk>/nodes/<str:node>/classifier/", classifiers.node_classifier, name="api-node-classifier"),
    path("models/import/", registry.model_import, name="api-model-import"),
    path("models/<slug:name>/", registry.model_detail, name="api-model"),
    path("models/<slug:name>/train/", registry.model_train, name="api-model-train"),
    path("models/<slug:name>/v<int:number>/optimise/", registry.model_optimise, name="api-model-optimise"),
    path("jobs/<int:pk>/", registry.job_detail, name="api-job"),
    path("labelled-sets/", registry.labelled_sets, name="api-labelled-sets"),
    path("promotions/", registry.promotions, name="api-promotions"),
    path("promotions/<int:pk>/", registry.promotion_detail, name="api-promotion"),
    path("promotions/<int:pk>/decide/", registry.promotion_decide, name="api-promotion-decide"),
    path("review/", registry.review_tasks, name="api-review-tasks"),
    path("review/<int:pk>/label/", registry.review_label, name="api-review-label"),
    path("drift/", registry.drift_report, name="api-drift"),
    path("audit/", registry.audit_list, name="api-audit"),
    path("audit/verify/", registry.audit_verify, name="api-audit-verify"),
    # Where documents may go: large-model endpoints, webhook destinations, data-residency policies.
    path("endpoints/", endpoints.endpoint_list, name="api-endpoints"),
    path("endpoints/<slug:name>/", endpoints.endpoint_detail, name="api-endpoint"),
    path("destinations/", endpoints.destination_list, name="api-destinations"),
    path("destinations/<slug:name>/", endpoints.destination_detail, name="api-destination"),
    path("workflows/<int:pk>/residency/", endpoints.residency_policy, name="api-residency"),
    path("", include("workflows.api.webhook_sources")),  # a workflow's inbound webhooks
    path("", include("workflows.api.mailboxes")),  # a workflow's mailbox
    path("", include("workflows.api.lifecycle")),  # retention, archive; erasure on request
    path("", include("workflows.api.teams")),  # teams and their members (administrators)
    path("notifications/", include("workflows.api.notifications")),  # the caller's own notifications
    path("kpis/", kpi.kpi_overview, name="api-kpis"),
    path("workflows/<int:pk>/kpis/", kpi.workflow_kpis, name="api-workflow-kpis"),
    path("workflows/<int:pk>/kpis/baseline/", kpi.kpi_baseline, name="api-kpi-baseline"),
    path("workflows/<int:pk>/kpis/what-if/", kpi.kpi_what_if, name="api-kpi-what-if"),
    path("workflows/<int:pk>/kpis/packs/", kpi.kpi_packs, name="api-kpi-packs"),
    path("workflows/<int:pk>/kpis/packs/<str:week>/sign/", kpi.kpi_pack_sign, name="api-kpi-pack-sign"),
    *router.urls,
]
