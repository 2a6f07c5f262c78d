"""Websocket routes. Each consumer checks permission before accepting (see live/consumers.py)."""

from __future__ import annotations

from django.urls import path  # noqa: F401  (used as routes are added)

websocket_urlpatterns: list = []
