"""Django admin screens for what an administrator registers: large-model endpoints and webhook
destinations (where documents may be sent, and whether that is inside the firm or outside)."""

from __future__ import annotations

from django.contrib import admin

from workflows.models import LLMEndpoint, WebhookDestination


@admin.register(WebhookDestination)
class WebhookDestinationAdmin(admin.ModelAdmin):
    list_display = ("name", "url", "location", "region", "enabled")
    list_filter = ("location", "enabled")
    search_fields = ("name", "url", "region")


@admin.register(LLMEndpoint)
class LLMEndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "base_url", "model_name", "location", "region", "enabled")
    list_filter = ("location", "enabled")
    search_fields = ("name", "base_url", "model_name", "region")
