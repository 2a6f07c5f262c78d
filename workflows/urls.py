from __future__ import annotations

from django.urls import include, path

from workflows.views import audit, canvas, classifiers, datasets, endpoints, gallery, kpi, runs
from workflows.views import registry as registry_views
from workflows.views import review as review_views
from workflows.views import workflows as workflow_pages

urlpatterns = [
    path("", workflow_pages.workflow_list, name="workflow-list"),
    path("workflows/new/", workflow_pages.workflow_create, name="workflow-create"),
    # A workflow's page is its canvas.
    path("workflows/<int:pk>/", canvas.workflow_canvas, name="workflow-detail"),
    path("workflows/<int:pk>/panel/", canvas.node_panel, name="canvas-panel"),
    path("workflows/<int:pk>/history/", canvas.canvas_history, name="canvas-history"),
    path("workflows/<int:pk>/samples/", canvas.node_samples, name="canvas-samples"),
    path("workflows/<int:pk>/canvas-run/", canvas.canvas_run, name="canvas-run"),
    path("workflows/<int:pk>/publication/", canvas.canvas_publication, name="canvas-publication"),
    path("workflows/<int:pk>/publish/", canvas.canvas_publish, name="canvas-publish"),
    path("workflows/<int:pk>/publish/decide/", canvas.canvas_publish_decide, name="canvas-publish-decide"),
    path("workflows/<int:pk>/publish/policy/", canvas.canvas_publish_policy, name="canvas-publish-policy"),
    path("workflows/import/", canvas.workflow_upload, name="workflow-upload"),
    path("templates/", gallery.gallery, name="gallery"),
    path("templates/<slug:slug>/use/", gallery.use_template, name="gallery-use"),
    path("workflows/<int:pk>/diff/", workflow_pages.workflow_diff, name="workflow-diff"),
    path("workflows/<int:pk>/run/", runs.run_start, name="run-start"),
    path("runs/", runs.run_list, name="run-list"),
    path("datasets/", datasets.dataset_list, name="dataset-list"),
    path("workflows/<int:pk>/sample/", gallery.run_sample, name="run-sample"),
    path("runs/<int:pk>/", runs.run_detail, name="run-detail"),
    path("runs/<int:pk>/cancel/", runs.run_cancel, name="run-cancel"),
    path("runs/<int:pk>/retry/", runs.run_retry, name="run-retry"),
    path("runs/<int:pk>/results/", runs.run_results, name="run-results"),
    path("runs/<int:pk>/items/<int:item_id>/", runs.run_item, name="run-item"),
    path("runs/<int:pk>/originals/<str:sha256>/", runs.run_original, name="run-original"),
    path("runs/<int:pk>/download.<str:fmt>", runs.run_download, name="run-download"),
    # Governance: registry, promotions, model jobs, drift, review queue, audit log.
    path("models/", registry_views.model_list, name="model-list"),
    path("models/import/", registry_views.model_import, name="model-import"),
    path("models/new/", classifiers.classifier_create, name="classifier-create"),
    path("workflows/<int:pk>/nodes/<str:node>/classifier/", classifiers.node_classifier, name="node-classifier"),
    path("models/labelled-sets/", registry_views.labelled_set_upload, name="labelled-set-upload"),
    path("models/jobs/<int:pk>/", registry_views.job_detail, name="model-job"),
    path("models/<slug:name>/", registry_views.model_detail, name="model-detail"),
    path("models/<slug:name>/train/", registry_views.model_train, name="model-train"),
    path("models/<slug:name>/rollback/", registry_views.model_rollback, name="model-rollback"),
    path("models/<slug:name>/v<int:number>/", registry_views.version_detail, name="model-version"),
    path("models/<slug:name>/v<int:number>/optimise/", registry_views.model_optimise, name="model-optimise"),
    path("models/<slug:name>/v<int:number>/promote/", registry_views.promotion_create, name="promotion-create"),
    path("promotions/", registry_views.promotion_list, name="promotion-list"),
    path("promotions/<int:pk>/", registry_views.promotion_detail, name="promotion-detail"),
    path("promotions/<int:pk>/decide/", registry_views.promotion_decide, name="promotion-decide"),
    path("drift/", registry_views.drift_page, name="drift"),
    path("drift/action/", registry_views.drift_action, name="drift-action"),
    path("review/", review_views.review_queue, name="review-queue"),
    path("review/<int:pk>/decide/", review_views.review_decide, name="review-decide"),
    # Where documents may go: large-model endpoints, webhook destinations, data-residency policies.
    path("endpoints/", endpoints.endpoint_list, name="endpoint-list"),
    path("endpoints/llm/new/", endpoints.endpoint_create, {"kind": "llm"}, name="endpoint-create"),
    path("endpoints/llm/<slug:name>/", endpoints.endpoint_edit, {"kind": "llm"}, name="endpoint-edit"),
    path("endpoints/webhooks/new/", endpoints.endpoint_create, {"kind": "webhook"}, name="destination-create"),
    path("endpoints/webhooks/<slug:name>/", endpoints.endpoint_edit, {"kind": "webhook"}, name="destination-edit"),
    path("endpoints/residency/<int:pk>/", endpoints.residency_policy, name="residency-policy"),
    path("audit/", audit.audit_log, name="audit-log"),
    path("audit/verify/", audit.audit_verify, name="audit-verify"),
    path("", include("workflows.views.webhook_sources")),  # inbound webhooks: /hooks/<slug>/ and their pages
    path("", include("workflows.views.mailboxes")),  # a workflow's mailbox page
    path("", include("workflows.views.lifecycle")),  # retention, archive, delete; erasure on request
    path("", include("workflows.views.teams")),  # administration: teams and their members
    path("notifications/", include("workflows.views.notifications")),  # the inbox, the bell, preferences
    # Business KPIs
    path("kpis/", kpi.kpi_overview, name="kpi-overview"),
    path("workflows/<int:pk>/kpis/", kpi.kpi_dashboard, name="kpi-dashboard"),
    path("workflows/<int:pk>/kpis/baseline/", kpi.kpi_baseline, name="kpi-baseline"),
    path("workflows/<int:pk>/kpis/packs/", kpi.kpi_packs, name="kpi-packs"),
    path("workflows/<int:pk>/kpis/packs/<str:week>/", kpi.kpi_pack, name="kpi-pack"),
    path("workflows/<int:pk>/kpis/packs/<str:week>/pack.csv", kpi.kpi_pack_csv, name="kpi-pack-csv"),
    path("workflows/<int:pk>/kpis/packs/<str:week>/sign/", kpi.kpi_pack_sign, name="kpi-pack-sign"),
]
