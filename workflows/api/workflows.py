"""REST API for workflows and their versions. Thin: parse, authorise, call domain code, respond."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.utils.text import slugify
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.access import get_workflow_for_user
from workflows.design import texts, versions
from workflows.design.exchange import ImportSerializer, export_document
from workflows.design.references import graph_resolvers
from workflows.graph import Graph, diff, errors, validate
from workflows.graph.plan import build_plan
from workflows.models import Workflow, WorkflowVersion
from workflows.roles import ROLE_TITLES, capabilities_of, require, roles_of

from . import lifecycle
from . import serializers as s

CONFLICT = OpenApiResponse(s.ConflictSerializer, description="The version you edited is no longer the latest.")


class Pagination(LimitOffsetPagination):
    """At most 500 a page; an offset past any real table is clamped so the database never sees a number it
    cannot hold."""

    max_limit = 500

    def get_offset(self, request: Request) -> int:
        return min(super().get_offset(request), s.MAX_INT)


def _version(workflow: Workflow, number: Any) -> WorkflowVersion:
    try:
        return workflow.versions.get(number=int(number))
    except (WorkflowVersion.DoesNotExist, ValueError, TypeError):
        raise Http404(gettext("Workflow %(workflow)s has no version %(number)s.")
                      % {"workflow": workflow.pk, "number": number}) from None


def validation_result(graph: Graph) -> dict[str, Any]:
    problems = validate(graph, **graph_resolvers())
    runnable = not errors(problems)
    return {
        "runnable": runnable,
        "problems": texts.problems_json(problems),  # each with `text`, in the caller's language
        "order": build_plan(graph).order if runnable else [],  # validated just above: no second pass
    }


class WorkflowViewSet(viewsets.GenericViewSet):
    """Workflows: list, create, read, rename; versions: save, list, read, restore, diff; import/export."""

    serializer_class = s.WorkflowSerializer
    lookup_value_regex = r"[0-9]+"
    pagination_class = Pagination

    def get_queryset(self):
        listed = Workflow.objects.listed()
        if self.request.query_params.get("archived") in ("true", "1"):  # archived ones instead
            return Workflow.objects.filter(archived=True).select_related("created_by")
        return listed

    def workflow(self, capability: str = "workflow.view") -> Workflow:
        return get_workflow_for_user(self.request.user, self.kwargs["pk"], capability)

    @extend_schema(responses=s.WorkflowSerializer(many=True), parameters=[
        OpenApiParameter("archived", bool, required=False, description="true: the archived workflows instead.")])
    def list(self, request: Request) -> Response:
        require(request.user, "workflow.view")
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(s.WorkflowSerializer(page, many=True).data)

    @extend_schema(request=s.WorkflowCreateSerializer, responses={201: s.WorkflowSerializer})
    def create(self, request: Request) -> Response:
        require(request.user, "workflow.edit")
        data = s.WorkflowCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workflow, _ = versions.create_workflow(user=request.user, **data.validated_data)
        return Response(s.WorkflowSerializer(workflow).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.WorkflowSerializer)
    def retrieve(self, request: Request, pk: str) -> Response:
        return Response(s.WorkflowSerializer(self.workflow()).data)

    @lifecycle.DELETE_SCHEMA
    def destroy(self, request: Request, pk: str) -> Response:
        """Delete an archived workflow with no active run and no signed weekly pack: its runs, documents,
        versions and schedules go, its audit entries stay. Needs `workflow.delete`; 409 says what to do first."""
        return lifecycle.delete_workflow(request, self.workflow("workflow.delete"))

    @extend_schema(request=s.WorkflowUpdateSerializer, responses=s.WorkflowSerializer)
    def partial_update(self, request: Request, pk: str) -> Response:
        workflow = self.workflow("workflow.edit")
        data = s.WorkflowUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        versions.update_workflow(workflow, user=request.user, **data.validated_data)
        return Response(s.WorkflowSerializer(workflow).data)

    @extend_schema(methods=["GET"], responses=s.VersionSummarySerializer(many=True),
                   description="Version history, newest first.")
    @extend_schema(methods=["POST"], request=s.SaveVersionSerializer,
                   responses={201: s.VersionSerializer, 409: CONFLICT},
                   description="Save a new immutable version on top of `parent`.")
    @action(detail=True, methods=["get", "post"])
    def versions(self, request: Request, pk: str) -> Response:
        if request.method == "GET":
            workflow = self.workflow()
            page = self.paginate_queryset(workflow.versions.select_related("author", "parent").order_by("-number"))
            return self.get_paginated_response(s.VersionSummarySerializer(page, many=True).data)
        workflow = self.workflow("workflow.edit")
        data = s.SaveVersionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = versions.save_version(workflow, data.validated_data["graph"], user=request.user,
                                        parent=data.validated_data["parent"], message=data.validated_data["message"])
        return Response(s.VersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.VersionSerializer)
    @action(detail=True, methods=["get"], url_path=r"versions/(?P<number>[0-9]+)")
    def version(self, request: Request, pk: str, number: str) -> Response:
        return Response(s.VersionSerializer(_version(self.workflow(), number)).data)

    @extend_schema(request=s.RestoreSerializer, responses={201: s.VersionSerializer, 409: CONFLICT},
                   description="Restore an earlier version: its graph becomes a new latest version.")
    @action(detail=True, methods=["post"], url_path=r"versions/(?P<number>[0-9]+)/restore")
    def restore(self, request: Request, pk: str, number: str) -> Response:
        workflow = self.workflow("workflow.edit")
        old = _version(workflow, number)
        data = s.RestoreSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = versions.restore_version(workflow, old, user=request.user,
                                           parent=data.validated_data.get("parent", workflow.head),
                                           message=data.validated_data["message"])
        return Response(s.VersionSerializer(version).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("from", int, required=True), OpenApiParameter("to", int, required=True)],
        responses=s.DiffSerializer,
    )
    @action(detail=True, methods=["get"])
    def diff(self, request: Request, pk: str) -> Response:
        workflow = self.workflow()
        try:
            a, b = int(request.query_params["from"]), int(request.query_params["to"])
        except (KeyError, ValueError):
            raise serializers.ValidationError({"detail": gettext("Give two version numbers: ?from=1&to=2.")}) from None
        old, new = _version(workflow, a), _version(workflow, b)
        return Response({"from_version": a, "to_version": b, **diff(old.as_graph(), new.as_graph())})

    @extend_schema(parameters=[OpenApiParameter("version", int, required=False, description="Default: latest.")],
                   responses={200: OpenApiResponse(description="The workflow export document (JSON file).")})
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str) -> Response:
        workflow = self.workflow()
        number = request.query_params.get("version", workflow.head)
        version = _version(workflow, number)
        response = Response(export_document(workflow, version))
        filename = f"{slugify(workflow.name) or 'workflow'}-v{version.number}.json"
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @extend_schema(request=ImportSerializer, responses={201: s.WorkflowSerializer},
                   description="Create a new workflow from an export document. The graph is validated; a graph "
                   "with problems is imported as a draft that cannot run until fixed.")
    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def import_(self, request: Request) -> Response:
        require(request.user, "workflow.edit")
        data = ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workflow, _ = versions.import_workflow(name=data.validated_data["name"], user=request.user,
                                               description=data.validated_data["description"],
                                               graph=data.validated_data["graph"])
        return Response(s.WorkflowSerializer(workflow).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ValidateSerializer, responses=s.ValidationResultSerializer,
                   description="Validate a graph without saving it: every problem at once.")
    @action(detail=False, methods=["post"])
    def validate(self, request: Request) -> Response:
        require(request.user, "workflow.view")
        data = s.ValidateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response(validation_result(data.validated_data["graph"]))


class CatalogEntrySerializer(serializers.Serializer):
    type = serializers.CharField()
    group = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()


@extend_schema(responses=CatalogEntrySerializer(many=True),
               description="Every node type: ports, config schema, needs, adds.")
@api_view(["GET"])
def catalog(request: Request) -> Response:
    require(request.user, "workflow.view")
    return Response(texts.catalog_json())  # titles, labels and help in the caller's language


class MeSerializer(serializers.Serializer):
    username = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    capabilities = serializers.DictField(child=serializers.BooleanField())


@extend_schema(responses=MeSerializer)
@api_view(["GET"])
def me(request: Request) -> Response:
    roles = sorted(roles_of(request.user))
    return Response({
        "username": request.user.get_username(),
        "roles": roles,
        "role_titles": [str(ROLE_TITLES[r]) for r in roles],
        "capabilities": capabilities_of(request.user),
    })
