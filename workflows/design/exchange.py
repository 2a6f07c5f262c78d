"""A workflow as a document that leaves or enters the factory: the export format, and the one
validator of an incoming document (used by the import API and the import page alike)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext
from rest_framework import serializers

from workflows.design.texts import translate_all
from workflows.graph import CATALOG, Graph, GraphFormatError, canonical_json_size, parse_graph
from workflows.models import Workflow, WorkflowVersion

EXPORT_FORMAT = "cognitive-factory/workflow"


def graph_from_payload(value: Any, *, strict_types: bool = True) -> Graph:
    """Parse graph JSON from a request, or raise a 400 that lists what to fix."""
    if not isinstance(value, dict):
        raise serializers.ValidationError(gettext("The graph must be a JSON object with 'nodes' and 'edges'."))
    size = canonical_json_size(value)
    if size > settings.GRAPH_MAX_BYTES:
        raise serializers.ValidationError(
            gettext("The graph is %(size)s KB; the limit is %(limit)s KB. Keep documents out of node config and "
                    "split very large workflows.")
            % {"size": f"{size / 1024:.0f}", "limit": settings.GRAPH_MAX_BYTES // 1024}
        )
    try:
        graph = parse_graph(value, max_nodes=settings.GRAPH_MAX_NODES)
    except GraphFormatError as exc:
        raise serializers.ValidationError(translate_all(exc.problems)) from None
    unknown = [n for n in graph.nodes if n.type not in CATALOG]
    if strict_types and unknown:
        # The canvas only offers known types; an unknown one means a hand-edited or foreign file.
        raise serializers.ValidationError([
            gettext("Node '%(node)s' has unknown type '%(type)s'. Known types: %(types)s.")
            % {"node": n.id, "type": n.type, "types": ", ".join(sorted(CATALOG))} for n in unknown
        ])
    return graph


class TextField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of quietly turning them into text."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            raise serializers.ValidationError(gettext("Must be text, not %(kind)s.") % {"kind": type(data).__name__})
        return super().to_internal_value(data)


class GraphField(serializers.JSONField):
    def __init__(self, *args: Any, strict_types: bool = True, **kwargs: Any):
        self.strict_types = strict_types
        super().__init__(*args, **kwargs)

    def to_internal_value(self, data: Any) -> Graph:
        return graph_from_payload(super().to_internal_value(data), strict_types=self.strict_types)

    def to_representation(self, value: Any) -> Any:
        return value.to_json() if isinstance(value, Graph) else value


class ImportSerializer(serializers.Serializer):
    format = serializers.ChoiceField(choices=[EXPORT_FORMAT], help_text=f"Must be '{EXPORT_FORMAT}'.")
    format_version = serializers.IntegerField(min_value=1, max_value=1)
    name = TextField(max_length=200)
    description = TextField(required=False, allow_blank=True, default="")
    graph = GraphField()


def export_document(workflow: Workflow, version: WorkflowVersion) -> dict[str, Any]:
    return {
        "format": EXPORT_FORMAT,
        "format_version": 1,
        "name": workflow.name,
        "description": workflow.description,
        "exported_version": version.number,
        "checksum": version.checksum,
        "graph": version.graph,
    }
