"""REST API for a workflow's inbound webhooks (`workflow.edit`, as on the pages): list, create (the
answer carries the secret, once), change how deliveries are read, enable or disable, rotate the secret
(answered once), and test the reading on a sample payload. Every change goes through
workflows/inbound/webhook_sources.py. Senders post to /hooks/<slug>/, outside this API."""

from __future__ import annotations

import json
from typing import Any

from django.http import Http404
from django.urls import path, reverse
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.access import get_workflow_for_user
from workflows.inbound import secrets
from workflows.inbound import webhook_sources as sources
from workflows.models import WebhookSource

EDIT = "workflow.edit"
TAGS = ["inbound webhooks"]


class DeliverySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    received_at = serializers.DateTimeField()
    status = serializers.CharField()
    idempotency_key = serializers.CharField()
    run = serializers.IntegerField(source="run_id", allow_null=True)
    item_ids = serializers.ListField(child=serializers.IntegerField())
    reason = serializers.CharField()


class SourceSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    workflow = serializers.IntegerField(source="workflow_id", read_only=True)
    name = serializers.CharField(max_length=120)
    url = serializers.SerializerMethodField(help_text="Where senders POST their signed deliveries.")
    mapping = serializers.DictField(child=serializers.CharField(allow_blank=True, trim_whitespace=False,
                                                                max_length=500), required=False,
                                    help_text="{item field: JSON pointer (RFC 6901)}, e.g. {\"text\": \"/ticket/body\"}"
                                    "; read inside each element of `items_pointer` when it is set.")
    items_pointer = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=500,
                                          help_text="Pointer to the array of documents when a delivery carries "
                                          "several; empty for one document per delivery.")
    idempotency_pointer = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                                max_length=500, help_text="Pointer to the delivery's own id; empty "
                                                "to read the Idempotency-Key header.")
    replay_window = serializers.IntegerField(required=False, help_text="Seconds either side of the server's clock.")
    enabled = serializers.BooleanField(required=False)
    secret_last4 = serializers.CharField(read_only=True, help_text="The secret itself is answered only when it is "
                                         "made: at creation and rotation.")
    created_by = serializers.CharField(source="created_by.username", read_only=True, default="")
    created_at = serializers.DateTimeField(read_only=True)
    rotated_at = serializers.DateTimeField(read_only=True)

    def get_url(self, source: WebhookSource) -> str:
        return self.context["request"].build_absolute_uri(reverse("webhook-receive", args=[source.slug]))


class SourceDetailSerializer(SourceSerializer):
    deliveries = serializers.SerializerMethodField(help_text="The last 20 authenticated deliveries.")

    @extend_schema_field(DeliverySerializer(many=True))
    def get_deliveries(self, source: WebhookSource) -> list[dict[str, Any]]:
        recent = source.deliveries.order_by("-received_at", "-id")[:20]
        return DeliverySerializer(recent, many=True).data


class TestSerializer(serializers.Serializer):
    payload = serializers.JSONField(help_text="A sample of what the sender posts.")
    mapping = serializers.DictField(
        child=serializers.CharField(allow_blank=True, trim_whitespace=False, max_length=500), required=False,
        help_text="Unsaved settings to try instead of the saved ones.")
    items_pointer = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False, max_length=500)
    idempotency_pointer = serializers.CharField(required=False, allow_blank=True, trim_whitespace=False,
                                                max_length=500)


def _source(request: Request, pk: int, source_id: int) -> WebhookSource:
    workflow = get_workflow_for_user(request.user, pk, EDIT)
    source = WebhookSource.objects.select_related("workflow", "created_by").filter(pk=source_id,
                                                                                   workflow=workflow).first()
    if source is None:
        raise Http404(gettext("No such inbound webhook."))
    return source


def _invalid(exc: sources.SourceInvalid) -> serializers.ValidationError:
    return serializers.ValidationError(exc.problems)


def _unavailable(exc: secrets.SecretsUnavailable) -> Response:
    return Response({"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE)


@extend_schema(methods=["GET"], tags=TAGS, responses=SourceSerializer(many=True))
@extend_schema(methods=["POST"], tags=TAGS, request=SourceSerializer, responses={201: OpenApiTypes.OBJECT},
               description="Create an inbound webhook. The answer is the source with `secret`: keep it, it is "
               "never answered again (rotate to get a new one).")
@api_view(["GET", "POST"])
def source_list(request: Request, pk: int) -> Response:
    workflow = get_workflow_for_user(request.user, pk, EDIT)
    context = {"request": request}
    if request.method == "GET":
        return Response(SourceSerializer(workflow.webhook_sources.select_related("created_by"), many=True,
                                         context=context).data)
    data = SourceSerializer(data=request.data, context=context)
    data.is_valid(raise_exception=True)
    try:
        source, secret = sources.create_source(workflow, data.validated_data, user=request.user)
    except sources.SourceInvalid as exc:
        raise _invalid(exc) from None
    except secrets.SecretsUnavailable as exc:
        return _unavailable(exc)
    return Response({**SourceSerializer(source, context=context).data, "secret": secret,
                     "curl": sources.curl_example(source, SourceSerializer(context=context).get_url(source), secret)},
                    status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})


@extend_schema(tags=TAGS, request=SourceSerializer, responses=SourceDetailSerializer,
               description="One inbound webhook with its last deliveries; PATCH changes how deliveries are read "
               "(name, mapping, pointers, replay window) and `enabled` (false refuses deliveries with 403).")
@api_view(["GET", "PATCH"])
def source_detail(request: Request, pk: int, source_id: int) -> Response:
    source = _source(request, pk, source_id)
    context = {"request": request}
    if request.method == "PATCH":
        data = SourceSerializer(data=request.data, partial=True, context=context)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        enabled = values.pop("enabled", None)
        try:
            if values:
                sources.update_source(source, values, user=request.user)
        except sources.SourceInvalid as exc:
            raise _invalid(exc) from None
        if enabled is not None:
            sources.set_enabled(source, enabled, user=request.user)
    return Response(SourceDetailSerializer(source, context=context).data)


@extend_schema(tags=TAGS, request=None, responses=OpenApiTypes.OBJECT,
               description="A new secret, answered once; the old one stops verifying at once.")
@api_view(["POST"])
def source_rotate(request: Request, pk: int, source_id: int) -> Response:
    source = _source(request, pk, source_id)
    try:
        secret = sources.rotate_secret(source, user=request.user)
    except secrets.SecretsUnavailable as exc:
        return _unavailable(exc)
    return Response({"id": source.pk, "secret": secret, "secret_last4": source.secret_last4,
                     "rotated_at": source.rotated_at}, headers={"Cache-Control": "no-store"})


@extend_schema(tags=TAGS, request=TestSerializer, responses=OpenApiTypes.OBJECT,
               description="The items a sample payload makes with the saved settings (or unsaved ones given "
               "beside it), and the idempotency key found in it. Nothing is stored and no run starts; 400 lists "
               "every problem, each naming the pointer or field at fault.")
@api_view(["POST"])
def source_test(request: Request, pk: int, source_id: int) -> Response:
    source = _source(request, pk, source_id)
    data = TestSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    values = {k: v for k, v in data.validated_data.items() if k != "payload"}
    sample = json.dumps(data.validated_data["payload"], ensure_ascii=False)
    preview = sources.preview(source, sample, values)
    if preview.problems:
        return Response({"detail": " ".join(preview.problems), "problems": preview.problems, "items": preview.items},
                        status=status.HTTP_400_BAD_REQUEST)
    return Response({"items": preview.items, "idempotency_key": preview.key})


urlpatterns = [
    path("workflows/<int:pk>/webhook-sources/", source_list, name="api-webhook-sources"),
    path("workflows/<int:pk>/webhook-sources/<int:source_id>/", source_detail, name="api-webhook-source"),
    path("workflows/<int:pk>/webhook-sources/<int:source_id>/rotate/", source_rotate,
         name="api-webhook-source-rotate"),
    path("workflows/<int:pk>/webhook-sources/<int:source_id>/test/", source_test, name="api-webhook-source-test"),
]
