from __future__ import annotations

from django.urls import path
from rest_framework.authtoken.views import obtain_auth_token
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("workflows", views.WorkflowViewSet, basename="workflow")

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("me/", views.me, name="api-me"),
    path("catalog/", views.catalog, name="api-catalog"),
    *router.urls,
]
