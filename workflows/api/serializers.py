from __future__ import annotations

from typing import Any

from rest_framework import serializers

from workflows.design import texts
from workflows.design.exchange import GraphField, TextField
from workflows.models import Workflow, WorkflowVersion

# The largest PostgreSQL integer: ids and offsets above it are refused or clamped, never sent to the database.
MAX_INT = 2**31 - 1


class ProblemSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField(help_text="In English, as stored.")
    text = serializers.SerializerMethodField(help_text="The message in the caller's language (Accept-Language).")
    severity = serializers.ChoiceField(choices=["error", "warning"])
    node = serializers.CharField(allow_null=True)
    nodes = serializers.ListField(child=serializers.CharField())
    edge = serializers.IntegerField(allow_null=True)
    field = serializers.CharField(allow_null=True)

    def get_text(self, obj: Any) -> str:
        return texts.problem_json(obj)["text"]


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
    template = serializers.CharField(read_only=True,
                                     help_text="The gallery template this workflow was created from; empty if none.")
    latest = serializers.SerializerMethodField()
    team_name = serializers.CharField(source="team.name", read_only=True)

    class Meta:
        model = Workflow
        fields = ["id", "name", "description", "team", "team_name", "head", "published", "publish_needs_approval",
                  "template", "created_by", "created_at", "latest", "archived", "archived_at", "retention_days"]
        read_only_fields = ["id", "team", "head", "published", "publish_needs_approval", "template", "created_by",
                            "created_at", "latest", "archived", "archived_at", "retention_days"]

    def get_latest(self, obj: Workflow) -> dict[str, Any] | None:
        latest = obj.latest
        return VersionSummarySerializer(latest).data if latest else None


class WorkflowCreateSerializer(serializers.Serializer):
    name = TextField(max_length=200)
    description = TextField(required=False, allow_blank=True, default="")
    graph = GraphField(required=False, help_text="Initial graph; an empty graph when omitted.")
    message = TextField(required=False, allow_blank=True, max_length=500, default="Created")
    team = serializers.IntegerField(required=False, min_value=1, max_value=MAX_INT,
                                    help_text="The team's id; needed only by someone in several teams (default: their "
                                              "only team, else General).")


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
