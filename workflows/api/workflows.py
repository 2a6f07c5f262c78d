"""REST API for workflows and their versions. Thin: parse, authorise, call domain code, respond."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.text import slugify
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action, api_view
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.access import get_workflow_for_user, team_for_new, visible_teams, visible_workflows
from workflows.design import publishing, texts, versions
from workflows.design.exchange import ImportSerializer, export_document
from workflows.design.references import graph_resolvers
from workflows.graph import Graph, diff, errors, validate
from workflows.graph.plan import build_plan
from workflows.models import Workflow, WorkflowVersion
from workflows.models.graph import PublishRequest
from workflows.roles import ROLE_TITLES, capabilities_of, require, roles_of, roles_on

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


class PublishSerializer(serializers.Serializer):
    version = serializers.IntegerField(min_value=1, max_value=s.MAX_INT, help_text="The version to make live.")
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="",
                                   help_text="Why; shown to whoever decides when a second person must approve.")


class PublicationRequestSerializer(serializers.ModelSerializer):
    version = serializers.IntegerField(source="version.number", read_only=True)
    requested_by = serializers.CharField(source="requested_by.get_username", read_only=True, default=None)
    decided_by = serializers.CharField(source="decided_by.get_username", read_only=True, default=None)
    why_not_decide = serializers.SerializerMethodField(
        help_text="Why you may not approve or reject it (four eyes), or empty when you may.")

    class Meta:
        model = PublishRequest
        fields = ["id", "version", "requested_by", "requested_at", "reason", "decision", "decided_by", "decided_at",
                  "decision_reason", "previous", "why_not_decide"]
        read_only_fields = fields

    def get_why_not_decide(self, obj: PublishRequest) -> str:
        user = self.context.get("user")
        why = publishing.why_not_decide(obj, user) if user is not None else ""
        return gettext(why) if why else ""  # why_not_decide answers in English


class PublishResultSerializer(serializers.Serializer):
    published = serializers.IntegerField(allow_null=True, help_text="The live version's number now.")
    request = PublicationRequestSerializer(allow_null=True,
                                       help_text="The request filed when a second person must approve (202).")


class PublishDecisionSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject", "cancel"])
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="",
                                   help_text="Required to reject.")


class PublishPolicySerializer(serializers.Serializer):
    needs_approval = serializers.BooleanField(help_text="Whether publishing needs a second person (four eyes).")


def _refused(exc: DjangoValidationError) -> Response:
    if isinstance(exc, publishing.Unpublishable):
        return Response({"detail": gettext("The version cannot be published."), "problems": exc.problems},
                        status=status.HTTP_400_BAD_REQUEST)
    return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)


def validation_result(graph: Graph) -> dict[str, Any]:
    problems = validate(graph, **graph_resolvers())
    runnable = not errors(problems)
    return {
        "runnable": runnable,
        "problems": texts.problems_json(problems),  # each with `text`, in the caller's language
        "order": build_plan(graph).order if runnable else [],  # validated just above: no second pass
    }


def _team(request: Request, chosen: Any) -> Any:
    """The team a new workflow goes to (access.team_for_new); 400 when the caller must choose one."""
    try:
        return team_for_new(request.user, chosen, "workflow.edit")
    except ValueError as exc:
        raise serializers.ValidationError({"team": [str(exc)]}) from None


class WorkflowViewSet(viewsets.GenericViewSet):
    """Workflows: list, create, read, rename; versions: save, list, read, restore, diff; import/export."""

    serializer_class = s.WorkflowSerializer
    lookup_value_regex = r"[0-9]+"
    pagination_class = Pagination

    def get_queryset(self):
        mine = visible_workflows(self.request.user)
        if self.request.query_params.get("archived") in ("true", "1"):  # archived ones instead
            return mine.filter(archived=True).select_related("created_by", "team")
        return mine.listed()

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
        team = _team(request, data.validated_data.pop("team", None))
        workflow, _ = versions.create_workflow(user=request.user, team=team, **data.validated_data)
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

    @extend_schema(request=PublishSerializer, responses={200: PublishResultSerializer, 202: PublishResultSerializer},
                   description="Make a version live (what runs, intake and schedules use). Every reason it cannot "
                   "run is listed under `problems` (400). Where the workflow needs a second person, a request is "
                   "filed instead (202) for another designer or validator to approve.")
    @action(detail=True, methods=["post"])
    def publish(self, request: Request, pk: str) -> Response:
        workflow = self.workflow("workflow.publish")
        data = PublishSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        version = _version(workflow, data.validated_data["version"])
        try:
            filed = publishing.publish(workflow, version, user=request.user, reason=data.validated_data["reason"])
        except DjangoValidationError as exc:
            return _refused(exc)
        body = {"published": workflow.published,
                "request": PublicationRequestSerializer(filed, context={"user": request.user}).data if filed else None}
        return Response(body, status=status.HTTP_202_ACCEPTED if filed else status.HTTP_200_OK)

    @extend_schema(methods=["GET"], responses=PublicationRequestSerializer,
                   description="The open request to publish a version (404 when none is open).")
    @extend_schema(methods=["POST"], request=PublishDecisionSerializer, responses=PublicationRequestSerializer,
                   description="Approve, reject (with a reason) or cancel the open request. Four eyes: neither the "
                   "requester nor an author of the draft may approve or reject it (403).")
    @action(detail=True, methods=["get", "post"], url_path="publish/request")
    def publish_request(self, request: Request, pk: str) -> Response:
        workflow = self.workflow()
        pending = publishing.open_request(workflow)
        if pending is None:
            raise Http404(gettext("No request to publish a version of this workflow is open."))
        if request.method == "POST":
            data = PublishDecisionSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            decision, reason = data.validated_data["decision"], data.validated_data["reason"]
            try:
                if decision == "approve":
                    pending = publishing.approve(pending, user=request.user, reason=reason)
                elif decision == "reject":
                    pending = publishing.reject(pending, user=request.user, reason=reason)
                else:
                    pending = publishing.cancel(pending, user=request.user)
            except DjangoValidationError as exc:
                return _refused(exc)
        return Response(PublicationRequestSerializer(pending, context={"user": request.user}).data)

    @extend_schema(request=PublishPolicySerializer, responses=s.WorkflowSerializer,
                   description="Whether publishing this workflow needs a second person. Administrators only.")
    @action(detail=True, methods=["post"], url_path="publish/policy")
    def publish_policy(self, request: Request, pk: str) -> Response:
        workflow = self.workflow("workflow.policy")
        data = PublishPolicySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        publishing.set_policy(workflow, needs_approval=data.validated_data["needs_approval"], user=request.user)
        return Response(s.WorkflowSerializer(workflow).data)

    @extend_schema(request=ImportSerializer, responses={201: s.WorkflowSerializer},
                   description="Create a new workflow from an export document. The graph is validated; a graph "
                   "with problems is imported as a draft that cannot run until fixed.")
    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def import_(self, request: Request) -> Response:
        require(request.user, "workflow.edit")
        data = ImportSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        workflow, _ = versions.import_workflow(name=data.validated_data["name"], user=request.user,
                                               team=_team(request, request.data.get("team")),
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
    teams = serializers.ListField(child=serializers.DictField(), help_text="Each team where the caller has a "
                                  "role: id, name and roles there (organisation-wide roles apply in every team).")


@extend_schema(responses=MeSerializer)
@api_view(["GET"])
def me(request: Request) -> Response:
    roles = sorted(roles_of(request.user))
    return Response({
        "username": request.user.get_username(),
        "roles": roles,
        "role_titles": [str(ROLE_TITLES[r]) for r in roles],
        "capabilities": capabilities_of(request.user),
        "teams": [{"id": team.pk, "name": team.name, "roles": sorted(roles_on(request.user, team))}
                  for team in visible_teams(request.user, "workflow.view")],
    })
