"""REST API for new classifiers: register one with its labels, or get a classify step's own.

Thin like the pages (views/classifiers.py): authorise, call governance/classifiers.py, answer JSON.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.access import get_workflow_for_user
from workflows.governance import classifiers
from workflows.models.registry import RegisteredModel
from workflows.roles import require

from .registry import model_json, parsed


class ClassifierSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    labels = serializers.JSONField(help_text="A list of labels, or {label: description}.")
    description = serializers.CharField(required=False, allow_blank=True, default="", max_length=2000)


def classifier_json(model: RegisteredModel) -> dict[str, Any]:
    return {**model_json(model), "labels": classifiers.label_set(model),
            "workflow": model.origin_workflow_id, "node": model.origin_node or None,
            "training_labels": model.truth_labels.filter(field="").count()}


@extend_schema(tags=["governance"], request=ClassifierSerializer, responses={201: OpenApiTypes.OBJECT},
               description="Register a new classifier with its own labels (no version yet: train its first from a "
                           "labelled set or from review labels, POST /api/models/{name}/train/).")
@api_view(["POST"])
def classifier_create(request: Request) -> Response:
    require(request.user, "model.train")
    form = parsed(ClassifierSerializer, request)
    try:
        model = classifiers.create_classifier(name=form["name"], labels=form["labels"],
                                              description=form["description"], user=request.user)
    except ValidationError as exc:
        return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_400_BAD_REQUEST)
    return Response(classifier_json(model), status=status.HTTP_201_CREATED)


@extend_schema(tags=["governance"], request=None, responses={200: OpenApiTypes.OBJECT, 201: OpenApiTypes.OBJECT},
               description="The classifier a classify step's labels train (GET); POST makes it when the step has none "
                           "yet (a zero-shot step's classifier-to-be, seeded with the step's labels).")
@api_view(["GET", "POST"])
def node_classifier(request: Request, pk: int, node: str) -> Response:
    workflow = get_workflow_for_user(request.user, pk)
    if request.method == "GET":
        model = classifiers.classifier_for_node(workflow, node, create=False)
        if model is None:
            return Response({"detail": gettext("This step has no classifier of its own yet; POST to make it.")},
                            status=status.HTTP_404_NOT_FOUND)
        return Response(classifier_json(model))
    require(request.user, "model.train", workflow)
    existed = classifiers.classifier_for_node(workflow, node, create=False)
    model = existed or classifiers.classifier_for_node(workflow, node, user=request.user)
    if model is None:
        said = gettext("'%(node)s' is not a classify step of the workflow's latest version.") % {"node": node}
        return Response({"detail": said}, status=status.HTTP_400_BAD_REQUEST)
    return Response(classifier_json(model), status=status.HTTP_200_OK if existed else status.HTTP_201_CREATED)
