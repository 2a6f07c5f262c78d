"""Data sets for scheduled runs."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.decorators import api_view, parser_classes
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.access import restrict, team_for_new
from workflows.datasets import parse_mapping, store
from workflows.engine.intake import IntakeError
from workflows.models.datasets import Dataset
from workflows.roles import require


class DatasetSerializer(serializers.ModelSerializer):
    team_name = serializers.CharField(source="team.name", read_only=True)

    class Meta:
        model = Dataset
        fields = ["name", "team", "team_name", "filename", "size", "rows", "columns", "mapping", "created_at"]


class DatasetUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    file = serializers.FileField()
    mapping = serializers.CharField(required=False, allow_blank=True, help_text='JSON: {"text": "body"}')
    team = serializers.IntegerField(required=False, min_value=1, max_value=2**31 - 1,
                                    help_text="The team's id; needed only by someone in several teams (default: their "
                                              "only team, else General). A name is unique within its team.")


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
        mine = restrict(Dataset.objects.select_related("team"), request.user, "run.view", "team")
        return Response(DatasetSerializer(mine, many=True).data)
    require(request.user, "run.start")
    form = DatasetUploadSerializer(data=request.data)
    form.is_valid(raise_exception=True)
    upload = form.validated_data["file"]
    try:
        team = team_for_new(request.user, form.validated_data.get("team"), "run.start")
    except ValueError as exc:
        return Response({"team": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
    try:
        dataset = store(name=form.validated_data["name"], filename=upload.name, data=upload.read(),
                        mapping=parse_mapping(form.validated_data.get("mapping")), user=request.user, team=team)
    except IntakeError as exc:
        return Response({"detail": exc.message, "rows": exc.rows}, status=status.HTTP_400_BAD_REQUEST)
    return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)
