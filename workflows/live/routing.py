"""Websocket routes. Each consumer checks permission before accepting (see live/consumers.py)."""

from __future__ import annotations

from django.urls import path

from .consumers import LiveConsumer, WorkflowLiveConsumer

websocket_urlpatterns: list = [
    path("ws/runs/<int:run>/", LiveConsumer.as_asgi(), name="ws-run-live"),
    path("ws/workflows/<int:workflow>/live/", WorkflowLiveConsumer.as_asgi(), name="ws-workflow-live"),
]
