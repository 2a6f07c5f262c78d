"""REST API of the data lifecycle: a workflow's retention, archiving and deleting, and erasure of a
person's data on request (search, then confirm with the token the search answered). Same rules and
write paths as the pages (workflows/views/lifecycle.py): workflows/lifecycle/."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.urls import path
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.access import get_workflow_for_user
from workflows.lifecycle import archive, erasure, retention
from workflows.models import Workflow
from workflows.roles import require

from .schema import CONFLICT

TAGS = ["data lifecycle"]


def _refused(exc: DjangoValidationError, field: str | None = None) -> serializers.ValidationError:
    said = " ".join(exc.messages)
    return serializers.ValidationError({field: [said]} if field else {"detail": said})


class RetentionSerializer(serializers.ModelSerializer):
    retention_days = serializers.IntegerField(
        allow_null=True, min_value=retention.MIN_DAYS, max_value=retention.MAX_DAYS,
        help_text=f"Documents are purged this many days after they finished ({retention.MIN_DAYS}–"
                  f"{retention.MAX_DAYS}); null keeps them.")

    class Meta:
        model = Workflow
        fields = ["retention_days", "purged_before"]
        read_only_fields = ["purged_before"]


class ArchiveSerializer(serializers.ModelSerializer):
    class Meta:
        model = Workflow
        fields = ["id", "name", "archived", "archived_at"]
        read_only_fields = fields


@extend_schema(methods=["GET"], tags=TAGS, responses=RetentionSerializer)
@extend_schema(methods=["PUT", "PATCH"], tags=TAGS, request=RetentionSerializer, responses=RetentionSerializer)
@api_view(["GET", "PUT", "PATCH"])
def workflow_retention(request: Request, pk: int) -> Response:
    """How long the workflow keeps documents (and what was made of them) after they finish; the
    workers purge what is older. Changing it needs `data.retention`."""
    workflow = get_workflow_for_user(request.user, pk, "workflow.view" if request.method == "GET" else "data.retention")
    if request.method == "GET":
        return Response(RetentionSerializer(workflow).data)
    serializer = RetentionSerializer(workflow, data=request.data, partial=request.method == "PATCH")
    serializer.is_valid(raise_exception=True)
    days = serializer.validated_data.get("retention_days", workflow.retention_days)
    retention.set_retention(workflow, days, user=request.user)
    return Response(RetentionSerializer(Workflow.objects.get(pk=workflow.pk)).data)


@extend_schema(tags=TAGS, request=None, responses=ArchiveSerializer)
@api_view(["POST"])
def workflow_archive(request: Request, pk: int) -> Response:
    """Archive the workflow: hidden from lists (`GET /api/workflows/?archived=true` lists them), no new
    runs, intake or schedules; live intake runs are closed. Reversible with `restore`. Needs `workflow.archive`."""
    workflow = get_workflow_for_user(request.user, pk, "workflow.archive")
    archive.archive(workflow, user=request.user)
    return Response(ArchiveSerializer(workflow).data)


@extend_schema(tags=TAGS, request=None, responses=ArchiveSerializer)
@api_view(["POST"])
def workflow_restore(request: Request, pk: int) -> Response:
    """Bring an archived workflow back. Needs `workflow.archive`."""
    workflow = get_workflow_for_user(request.user, pk, "workflow.archive")
    archive.restore(workflow, user=request.user)
    return Response(ArchiveSerializer(workflow).data)


DELETED = inline_serializer("WorkflowDeleted", {
    "deleted": serializers.IntegerField(help_text="The workflow's id."),
    "counts": serializers.DictField(child=serializers.IntegerField(),
                                    help_text="Rows removed: runs, items, decisions, labels, versions, …"),
})


DELETE_SCHEMA = extend_schema(request=None, responses={200: DELETED, 409: CONFLICT})


def delete_workflow(request: Request, workflow: Workflow) -> Response:
    """Delete an archived workflow with no active run and no signed weekly pack: its runs, documents,
    versions, schedules and the data sets only it used go; its audit entries stay. Needs
    `workflow.delete`; 409 says what to do first."""
    try:
        counts = archive.delete(workflow, user=request.user)
    except archive.LifecycleError as exc:
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_409_CONFLICT)
    return Response({"deleted": workflow.pk, "counts": counts})


# --- erasure on request ---------------------------------------------------------------------------


class SampleSerializer(serializers.Serializer):
    where = serializers.CharField()
    text = serializers.CharField(help_text="The text around it, the identifier masked.")
    link = serializers.CharField(help_text="The page showing it, when there is one.")


class FoundSerializer(serializers.Serializer):
    kind = serializers.CharField()
    title = serializers.CharField()
    count = serializers.IntegerField()
    samples = SampleSerializer(many=True)


class SearchSerializer(serializers.Serializer):
    identifier = serializers.CharField(max_length=1000, help_text="An e-mail address, a codice fiscale or a full "
                                                                  "name (first name and surname).")


class SearchResultSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send it with the same identifier to /api/erasure/confirm/ to erase "
                                            "(valid for 30 minutes, once).")
    kind = serializers.CharField(help_text="email, tax_code or name.")
    expires_at = serializers.DateTimeField()
    total = serializers.IntegerField()
    in_active_runs = serializers.IntegerField(help_text="Documents found in runs still working.")
    found = FoundSerializer(many=True)


class ConfirmSerializer(SearchSerializer):
    token = serializers.CharField(max_length=200)


class ErasedSerializer(serializers.Serializer):
    request = serializers.IntegerField()
    erased = serializers.DictField(child=serializers.IntegerField(), help_text="Rows erased per kind of record.")
    erased_at = serializers.DateTimeField()


@extend_schema(tags=TAGS, request=SearchSerializer, responses=SearchResultSerializer)
@api_view(["POST"])
def erasure_search(request: Request) -> Response:
    """Find every document, step output, label, review task, data-set and labelled-set row, original
    file, notification and e-mail holding a person's identifier; nothing is erased yet. Needs
    `data.erase` (administrators). Audited without the identifier (a salted hash of it)."""
    require(request.user, "data.erase")  # before the body is read: a refused caller learns nothing of it
    data = SearchSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    try:
        found = erasure.search(data.validated_data["identifier"], user=request.user)
    except erasure.ErasureError as exc:
        raise _refused(exc, "identifier") from None
    return Response({
        "token": found.token, "kind": found.request.kind, "expires_at": found.request.expires_at,
        "total": found.total, "in_active_runs": found.in_active_runs,
        "found": [{"kind": kind, "title": f.title, "count": f.count,
                   "samples": [vars(sample) for sample in f.samples]} for kind, f in found.found.items()],
    })


@extend_schema(tags=TAGS, request=ConfirmSerializer, responses=ErasedSerializer)
@api_view(["POST"])
def erasure_confirm(request: Request) -> Response:
    """Erase what a search found (found again now, so what arrived since goes too): texts holding the
    identifier become "[erased]" in documents, outputs and reviews; labels, data-set and labelled-set
    rows, original files and notifications holding it are deleted. Needs `data.erase`."""
    require(request.user, "data.erase")
    data = ConfirmSerializer(data=request.data)
    data.is_valid(raise_exception=True)
    try:
        done = erasure.confirm(data.validated_data["token"], data.validated_data["identifier"], user=request.user)
    except erasure.ErasureError as exc:
        raise _refused(exc) from None
    return Response({"request": done.pk, "erased": done.erased, "erased_at": done.erased_at})


urlpatterns = [
    path("workflows/<int:pk>/retention/", workflow_retention, name="api-workflow-retention"),
    path("workflows/<int:pk>/archive/", workflow_archive, name="api-workflow-archive"),
    path("workflows/<int:pk>/restore/", workflow_restore, name="api-workflow-restore"),
    path("erasure/", erasure_search, name="api-erasure"),
    path("erasure/confirm/", erasure_confirm, name="api-erasure-confirm"),
]
