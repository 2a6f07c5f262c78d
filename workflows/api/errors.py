"""API errors: every refusal is JSON that says what to fix; conflicts name the newer version."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from workflows.graph import GraphFormatError
from workflows.models.graph import VersionConflict


def conflict_response(exc: VersionConflict) -> Response:
    latest = exc.latest
    return Response(
        {
            "detail": str(exc),
            "code": "version_conflict",
            "latest_version": latest.number,
            "latest_author": latest.author_name,
            "latest_message": latest.message,
            "latest_created_at": latest.created_at,
        },
        status=status.HTTP_409_CONFLICT,
    )


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, VersionConflict):
        return conflict_response(exc)
    if isinstance(exc, GraphFormatError):
        return Response({"detail": "The graph is not well-formed.", "graph": exc.problems}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        return Response({"detail": "The request body is too large. A workflow graph must stay under 1 MB; "
                         "send data files through the upload endpoint."}, status=status.HTTP_400_BAD_REQUEST)
    return drf_exception_handler(exc, context)
