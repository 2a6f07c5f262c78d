from __future__ import annotations

from django.urls import path

from workflows.views import pages

urlpatterns = [
    path("", pages.workflow_list, name="workflow-list"),
    path("workflows/new/", pages.workflow_create, name="workflow-create"),
    path("workflows/<int:pk>/", pages.workflow_detail, name="workflow-detail"),
    path("workflows/<int:pk>/diff/", pages.workflow_diff, name="workflow-diff"),
]
