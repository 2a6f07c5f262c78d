"""REST API for the caller's own notifications and what they receive. Every signed-in user has an
inbox (no capability needed); another person's notification is a 404, as if it did not exist."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.models import notifications as kinds
from workflows.notifications import inbox
from workflows.notifications.events import mail_configured

from .errors import text_query


class NotificationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    title = serializers.CharField(help_text="The kind, in the caller's language.")
    text = serializers.CharField(help_text="What happened, in the caller's language (Accept-Language).")
    link = serializers.CharField(allow_blank=True, help_text="The page to act on it (a path of this site).")
    created_at = serializers.DateTimeField()
    read = serializers.BooleanField()
    read_at = serializers.DateTimeField(allow_null=True)


class InboxSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Notifications matching the query.")
    unread = serializers.IntegerField(help_text="Unread notifications in all (the bell's count).")
    results = NotificationSerializer(many=True)


class InboxQuery(serializers.Serializer):
    unread = serializers.BooleanField(required=False, default=False, help_text="Only the unread ones.")
    limit = serializers.IntegerField(required=False, default=50, min_value=1, max_value=200)
    offset = serializers.IntegerField(required=False, default=0, min_value=0, max_value=10**9)


class ReadAllSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many were unread and are now read.")


class PreferenceSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=list(kinds.KINDS))
    title = serializers.CharField(read_only=True)
    in_app = serializers.BooleanField(required=False, help_text="Shown in the inbox (default true).")
    email = serializers.BooleanField(required=False, help_text="Sent in the e-mail digest (default true).")


class PreferencesSerializer(serializers.Serializer):
    language = serializers.ChoiceField(choices=[code for code, _ in settings.LANGUAGES], required=False,
                                       help_text="The language of the caller's e-mails.")
    email_enabled = serializers.BooleanField(read_only=True, help_text="Whether this installation sends e-mail.")
    kinds = PreferenceSerializer(many=True, required=False, help_text="A kind left out keeps what it was.")


def _plain_entry(notification: Any) -> dict[str, Any]:
    return NotificationSerializer(inbox.entry(notification)).data


def _preferences(user: Any) -> dict[str, Any]:
    return {"language": inbox.email_language(user), "email_enabled": mail_configured(),
            "kinds": [{"kind": p.kind, "title": p.title, "in_app": p.in_app, "email": p.email}
                      for p in inbox.preferences(user)]}


@extend_schema(parameters=[InboxQuery], responses=InboxSerializer)
@api_view(["GET"])
def notification_list(request: Request) -> Response:
    query = InboxQuery(data=text_query(request))
    query.is_valid(raise_exception=True)
    found = inbox.inbox(request.user)
    if query.validated_data["unread"]:
        found = found.filter(read_at__isnull=True)
    start = query.validated_data["offset"]
    page = found[start:start + query.validated_data["limit"]]
    return Response({"count": found.count(), "unread": inbox.unread_count(request.user),
                     "results": [_plain_entry(n) for n in page]})


@extend_schema(request=None, responses=NotificationSerializer)
@api_view(["POST"])
def notification_read(request: Request, pk: int) -> Response:
    return Response(_plain_entry(inbox.mark_read(inbox.get_for_user(request.user, pk))))


@extend_schema(request=None, responses=ReadAllSerializer)
@api_view(["POST"])
def notification_read_all(request: Request) -> Response:
    return Response({"marked": inbox.mark_all_read(request.user)})


@extend_schema(methods=["GET"], responses=PreferencesSerializer)
@extend_schema(methods=["PUT"], request=PreferencesSerializer, responses=PreferencesSerializer)
@api_view(["GET", "PUT"])
def notification_preferences(request: Request) -> Response:
    if request.method == "PUT":
        body = PreferencesSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        choices: dict[str, dict[str, bool]] = {}
        for choice in body.validated_data.get("kinds", []):
            choices.setdefault(choice["kind"], {}).update({k: choice[k] for k in ("in_app", "email") if k in choice})
        try:
            inbox.save_preferences(request.user, choices, body.validated_data.get("language"))
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"detail": exc.messages}) from None
    return Response(_preferences(request.user))


# Included by workflows/api/urls.py under notifications/.
urlpatterns = [
    path("", notification_list, name="api-notifications"),
    path("read-all/", notification_read_all, name="api-notifications-read-all"),
    path("preferences/", notification_preferences, name="api-notification-preferences"),
    path("<int:pk>/read/", notification_read, name="api-notification-read"),
]
