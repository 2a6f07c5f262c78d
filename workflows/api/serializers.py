from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import serializers

from workflows.graph import CATALOG, Graph, GraphFormatError, canonical_json_size, parse_graph
from workflows.models import Workflow, WorkflowVersion

EXPORT_FORMAT = "cognitive-factory/workflow"
# The largest PostgreSQL integer: ids and offsets above it are refused or clamped, never sent to the database.
MAX_INT = 2**31 - 1


def graph_from_payload(value: Any, *, strict_types: bool = True) -> Graph:
    """Parse graph JSON from a request, or raise a 400 that lists what to fix."""
    if not isinstance(value, dict):
        raise serializers.ValidationError("The graph must be a JSON object with 'nodes' and 'edges'.")
    size = canonical_json_size(value)
    if size > settings.GRAPH_MAX_BYTES:
        raise serializers.ValidationError(
            f"The graph is {size / 1024:.0f} KB; the limit is {settings.GRAPH_MAX_BYTES // 1024} KB. "
            "Keep documents out of node config and split very large workflows."
        )
    try:
        graph = parse_graph(value, max_nodes=settings.GRAPH_MAX_NODES)
    except GraphFormatError as exc:
        raise serializers.ValidationError(exc.problems) from None
    unknown = [n for n in graph.nodes if n.type not in CATALOG]
    if strict_types and unknown:
        # The canvas only offers known types; an unknown one means a hand-edited or foreign file.
        raise serializers.ValidationError([
            f"Node '{n.id}' has unknown type '{n.type}'. Known types: {', '.join(sorted(CATALOG))}." for n in unknown
        ])
    return graph


class TextField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of quietly turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(f"Must be text, not {type(data).__name__}.")
        return super().to_internal_value(data)


class GraphField(serializers.JSONField):
    def __init__(self, *args: Any, strict_types: bool = True, **kwargs: Any):
        self.strict_types = strict_types
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any) -> Graph:
        return graph_from_payload(super().to_internal_value(data), strict_types=self.strict_types)

    def to_representation(self, value: Any) -> Any:
        return value.to_json() if isinstance(value, Graph) else value


class ProblemSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    severity = serializers.ChoiceField(choices=["error", "warning"])
    node = serializers.CharField(allow_null=True)
    nodes = serializers.ListField(child=serializers.CharField())
    edge = serializers.IntegerField(allow_null=True)
    field = serializers.CharField(allow_null=True)


class VersionSummarySerializer(serializers.ModelSerializer):
    author = serializers.CharField(source="author_name", read_only=True)
    parent = serializers.IntegerField(source="parent.number", allow_null=True, read_only=True)
    problem_count = serializers.SerializerMethodField()

    class Meta:
        model = WorkflowVersion
        fields = ["number", "parent", "checksum", "author", "message", "created_at", "is_runnable",
                  "problem_count", "restored_from"]

    def get_problem_count(self, obj: WorkflowVersion) -> int:
        return len(obj.problems)


class VersionSerializer(VersionSummarySerializer):
    problems = ProblemSerializer(many=True, read_only=True)
    graph = serializers.JSONField(read_only=True)

    class Meta(VersionSummarySerializer.Meta):
        fields = [*VersionSummarySerializer.Meta.fields, "problems", "graph"]


class WorkflowSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.get_username", read_only=True, default=None)
    template = serializers.CharField(read_only=True, help_text="The gallery template this workflow was created from; empty if none.")
    latest = serializers.SerializerMethodField()

    class Meta:
        model = Workflow
        fields = ["id", "name", "description", "head", "template", "created_by", "created_at", "latest"]
        read_only_fields = ["id", "head", "template", "created_by", "created_at", "latest"]

    def get_latest(self, obj: Workflow) -> dict[str, Any] | None:
        latest = obj.latest
        return VersionSummarySerializer(latest).data if latest else None


class WorkflowCreateSerializer(serializers.Serializer):
    name = TextField(max_length=200)
    description = TextField(required=False, allow_blank=True, default="")
    graph = GraphField(required=False, help_text="Initial graph; an empty graph when omitted.")
    message = TextField(required=False, allow_blank=True, max_length=500, default="Created")


class WorkflowUpdateSerializer(serializers.Serializer):
    name = TextField(max_length=200, required=False)
    description = TextField(required=False, allow_blank=True)


class SaveVersionSerializer(serializers.Serializer):
    graph = GraphField()
    parent = serializers.IntegerField(
        min_value=0,
        help_text="The version number the edit started from (0 for the first). A save on top of a version "
        "that is no longer the latest is refused with 409.",
    )
    message = TextField(required=False, allow_blank=True, max_length=500, default="")


class RestoreSerializer(serializers.Serializer):
    parent = serializers.IntegerField(min_value=0, required=False,
                                      help_text="The version the user was looking at; 409 when it is stale.")
    message = TextField(required=False, allow_blank=True, max_length=500, default="")


class ValidateSerializer(serializers.Serializer):
    graph = GraphField(strict_types=False)


class ValidationResultSerializer(serializers.Serializer):
    runnable = serializers.BooleanField()
    problems = ProblemSerializer(many=True)
    order = serializers.ListField(child=serializers.CharField(), help_text="Execution order when runnable.")


class ImportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=[EXPORT_FORMAT], help_text=f"Must be '{EXPORT_FORMAT}'.")
    format_version = serializers.IntegerField(min_value=1, max_value=1)
    name = TextField(max_length=200)
    description = TextField(required=False, allow_blank=True, default="")
    graph = GraphField()


class DiffSerializer(serializers.Serializer):
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    nodes = serializers.DictField()
    edges = serializers.DictField()
    identical = serializers.BooleanField()


class ConflictSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    latest_version = serializers.IntegerField()
    latest_author = serializers.CharField()
    latest_message = serializers.CharField()
    latest_created_at = serializers.DateTimeField()
