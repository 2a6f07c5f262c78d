"""Django admin screens for what an administrator registers: large-model endpoints and webhook
destinations (where documents may be sent, and whether that is inside the firm or outside); and API
tokens listed without their keys."""

from __future__ import annotations

from django.contrib import admin
from rest_framework.authtoken.admin import TokenAdmin
from rest_framework.authtoken.models import TokenProxy

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


# DRF's token admin shows every key (a password for the API) in its list, and a token's string is its
# key, so its detail and delete pages show it too: a list of who holds a token, and nothing else.
admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class TokenHoldersAdmin(TokenAdmin):
    list_display = ("user", "created")
    list_display_links = None

    def has_add_permission(self, request, obj=None) -> bool:  # tokens come from /api/auth/token/
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_view_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_view_permission(request)
