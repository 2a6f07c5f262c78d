"""Data sets for scheduled runs."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.datasets import parse_mapping, store
from workflows.engine.intake import IntakeError
from workflows.models.datasets import Dataset
from workflows.roles import require


class DatasetSerializer(serializers.ModelSerializer):
    class Meta:
        model = Dataset
        fields = ["name", "filename", "size", "rows", "columns", "mapping", "created_at"]


class DatasetUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    file = serializers.FileField()
    mapping = serializers.CharField(required=False, allow_blank=True, help_text='JSON: {"text": "body"}')


@extend_schema(methods=["GET"], operation_id="datasets_list", responses=DatasetSerializer(many=True))
@extend_schema(methods=["POST"], operation_id="datasets_store",
               request={"multipart/form-data": DatasetUploadSerializer},
               responses={201: DatasetSerializer, 400: OpenApiTypes.OBJECT},
               description="Store (or replace) a data set that source.schedule nodes run on.")
@api_view(["GET", "POST"])
@parser_classes([MultiPartParser])
def datasets(request: Request) -> Response:
    if request.method == "GET":
        require(request.user, "run.view")
        return Response(DatasetSerializer(Dataset.objects.all(), many=True).data)
    require(request.user, "run.start")
    form = DatasetUploadSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    upload = form.validated_data["file"]
    try:
        dataset = store(name=form.validated_data["name"], filename=upload.name, data=upload.read(),
                        mapping=parse_mapping(form.validated_data.get("mapping")), user=request.user)
    except IntakeError as exc:
        return Response({"detail": exc.message, "rows": exc.rows}, status=status.HTTP_400_BAD_REQUEST)
    return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)
