"""REST API for where documents may go: large-model endpoints, webhook destinations and each
workflow's data-residency policy. Same rules as the page (workflows/views/endpoints.py): every role
reads, `endpoint.manage` writes, through workflows/governance/endpoints.py. API keys are never
answered: only whether the server has one (`api_key_set`)."""

from __future__ import annotations

from typing import Any

from django.core.validators import validate_slug
from django.http import Http404
from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.validators import UniqueValidator

from workflows.access import get_workflow_for_user, visible_workflows
from workflows.formats import LocaleDecimalSerializerField
from workflows.governance import endpoints as governance
from workflows.models import LLMEndpoint, WebhookDestination, Workflow
from workflows.roles import require

MAX_MONTHLY_TOKENS = 10**15


class UsedBySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class _WhereSerializer(serializers.ModelSerializer):
    url_field = ""
    used_by = serializers.SerializerMethodField(help_text="Workflows whose latest version sends documents here.")

    def validate_name(self, value: str) -> str:
        problem = governance.name_problem(value)
        if problem:
            raise serializers.ValidationError(problem)
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def current(name: str) -> Any:
            return attrs.get(name, getattr(self.instance, name, ""))

        problem = governance.url_problem(current("location"), current(self.url_field))
        if problem:
            raise serializers.ValidationError({self.url_field: [problem]})
        return attrs

    def _used_by(self, obj: Any, index: int) -> list[dict[str, Any]]:
        usage = self.context.get("usage") or governance.usage()
        return [{"id": w.pk, "name": w.name} for w in usage[index].get(obj.name, [])]


def _unique(model: type, message: str) -> dict[str, Any]:
    return {"validators": [validate_slug, UniqueValidator(queryset=model.objects.all(), message=message)]}


class EndpointSerializer(_WhereSerializer):
    url_field = "base_url"
    price_in_per_1k = LocaleDecimalSerializerField(max_digits=10, decimal_places=6, min_value=0, required=False)
    price_out_per_1k = LocaleDecimalSerializerField(max_digits=10, decimal_places=6, min_value=0, required=False)
    monthly_budget_tokens = serializers.IntegerField(
        min_value=0, max_value=MAX_MONTHLY_TOKENS, required=False,
        help_text="What all runs together may spend on this endpoint in a calendar month, in tokens; 0: no cap.")
    monthly_budget_eur = LocaleDecimalSerializerField(
        max_digits=12, decimal_places=2, min_value=0, required=False,
        help_text="The same monthly cap in euros (a number, or text as typed: \"28,50\"); 0: no cap.")
    api_key_set = serializers.SerializerMethodField(help_text="Whether the server's environment holds the key "
                                                              "(the key itself is never answered).")

    class Meta:
        model = LLMEndpoint
        fields = [*governance.ENDPOINT_FIELDS, "api_key_set", "used_by"]
        extra_kwargs = {"name": _unique(LLMEndpoint, gettext_lazy("An endpoint with this name already exists."))}

    def get_api_key_set(self, obj: LLMEndpoint) -> bool:
        return governance.key_is_set(obj)

    @extend_schema_field(UsedBySerializer(many=True))
    def get_used_by(self, obj: LLMEndpoint) -> list[dict[str, Any]]:
        return self._used_by(obj, 0)


class DestinationSerializer(_WhereSerializer):
    url_field = "url"

    class Meta:
        model = WebhookDestination
        fields = [*governance.DESTINATION_FIELDS, "used_by"]
        extra_kwargs = {"name": _unique(WebhookDestination,
                                        gettext_lazy("A destination with this name already exists."))}

    @extend_schema_field(UsedBySerializer(many=True))
    def get_used_by(self, obj: WebhookDestination) -> list[dict[str, Any]]:
        return self._used_by(obj, 1)


class PolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = Workflow
        fields = list(governance.POLICY_FIELDS)


KINDS: dict[str, tuple[type, type[_WhereSerializer], Any]] = {
    "llm": (LLMEndpoint, EndpointSerializer, governance.save_endpoint),
    "webhook": (WebhookDestination, DestinationSerializer, governance.save_destination),
}


def _list(request: Request, kind: str) -> Response:
    model, serializer_class, save = KINDS[kind]
    context = {"usage": governance.usage(visible_workflows(request.user))}
    if request.method == "GET":
        require(request.user, "endpoint.view")
        return Response(serializer_class(model.objects.all(), many=True, context=context).data)
    require(request.user, "endpoint.manage")
    serializer = serializer_class(data=request.data, context=context)
    serializer.is_valid(raise_exception=True)
    saved = save(None, serializer.validated_data, user=request.user)
    return Response(serializer_class(saved, context=context).data, status=status.HTTP_201_CREATED)


def _detail(request: Request, kind: str, name: str) -> Response:
    model, serializer_class, save = KINDS[kind]
    require(request.user, "endpoint.view" if request.method == "GET" else "endpoint.manage")
    instance = model.objects.filter(name=name).first()
    if instance is None:
        raise Http404(gettext("Nothing registered under that name."))
    context = {"usage": governance.usage(visible_workflows(request.user))}
    if request.method == "GET":
        return Response(serializer_class(instance, context=context).data)
    serializer = serializer_class(instance, data=request.data, partial=request.method == "PATCH", context=context)
    serializer.is_valid(raise_exception=True)
    saved = save(model.objects.get(pk=instance.pk), serializer.validated_data, user=request.user)
    return Response(serializer_class(saved, context=context).data)


TAGS = ["endpoints"]


@extend_schema(methods=["GET"], tags=TAGS, responses=EndpointSerializer(many=True))
@extend_schema(methods=["POST"], tags=TAGS, request=EndpointSerializer, responses={201: EndpointSerializer})
@api_view(["GET", "POST"])
def endpoint_list(request: Request) -> Response:
    """Large-model endpoints. Registering one needs `endpoint.manage`; external ones must use https."""
    return _list(request, "llm")


@extend_schema(tags=TAGS, request=EndpointSerializer, responses=EndpointSerializer)
@api_view(["GET", "PUT", "PATCH"])
def endpoint_detail(request: Request, name: str) -> Response:
    """One endpoint; changing it (or disabling it: `enabled: false`) needs `endpoint.manage`."""
    return _detail(request, "llm", name)


@extend_schema(methods=["GET"], tags=TAGS, responses=DestinationSerializer(many=True))
@extend_schema(methods=["POST"], tags=TAGS, request=DestinationSerializer, responses={201: DestinationSerializer})
@api_view(["GET", "POST"])
def destination_list(request: Request) -> Response:
    """Webhook destinations. Registering one needs `endpoint.manage`; external ones must use https."""
    return _list(request, "webhook")


@extend_schema(tags=TAGS, request=DestinationSerializer, responses=DestinationSerializer)
@api_view(["GET", "PUT", "PATCH"])
def destination_detail(request: Request, name: str) -> Response:
    """One webhook destination; changing it needs `endpoint.manage`."""
    return _detail(request, "webhook", name)


@extend_schema(tags=TAGS, request=PolicySerializer, responses=PolicySerializer)
@api_view(["GET", "PUT", "PATCH"])
def residency_policy(request: Request, pk: int) -> Response:
    """A workflow's data-residency policy: may it use external endpoints and destinations, and must
    personal data be redacted before text leaves. Changing it needs `endpoint.manage`."""
    capability = "endpoint.view" if request.method == "GET" else "endpoint.manage"
    require(request.user, capability)
    workflow = get_workflow_for_user(request.user, pk, capability)
    if workflow.archived:
        raise Http404(gettext("No such workflow."))
    if request.method == "GET":
        return Response(PolicySerializer(workflow).data)
    serializer = PolicySerializer(workflow, data=request.data, partial=request.method == "PATCH")
    serializer.is_valid(raise_exception=True)
    governance.save_policy(workflow, serializer.validated_data, user=request.user)
    return Response(PolicySerializer(workflow).data)
