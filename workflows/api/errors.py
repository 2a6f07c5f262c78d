"""API errors: every refusal is JSON that says what to fix; conflicts name the newer version."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.views.defaults import page_not_found
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from workflows.design.texts import translate_all
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


def _messages(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [m for v in value.values() for m in _messages(v)]
    if isinstance(value, list):
        return [m for v in value for m in _messages(v)]
    return [str(value)]


def with_detail(data: Any) -> dict[str, Any]:
    """Every error body is an object with a `detail` sentence; field errors stay under their field names."""
    if not isinstance(data, dict):
        return {"detail": " ".join(_messages(data))}
    if "detail" in data:
        return {**data, "detail": " ".join(_messages(data["detail"]))}
    parts = [" ".join(_messages(value)) if key == "non_field_errors" else f"{key}: {' '.join(_messages(value))}"
             for key, value in data.items()]
    detail = "; ".join(parts) or gettext("The request is invalid.")
    return {"detail": detail if len(detail) <= 600 else detail[:599] + "…", **data}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, VersionConflict):
        return conflict_response(exc)
    if isinstance(exc, GraphFormatError):
        return Response({"detail": gettext("The graph is not well-formed."), "graph": translate_all(exc.problems)},
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1e6
        return Response({"detail": gettext("The request body is too large: a JSON body must stay under %(limit)s MB. "
                                           "Send data files through an upload endpoint (multipart), or post REST "
                                           "intake items in smaller batches.") % {"limit": f"{limit:.0f}"}},
                        status=status.HTTP_400_BAD_REQUEST)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(exc, ValidationError):
        response.data = with_detail(response.data)
    return response


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The site's 400 for what Django refuses before a view runs (an upload over its endpoint's cap, a
    malformed multipart body): the reason, as JSON under /api/ and as a page elsewhere."""
    from django.http.multipartparser import MultiPartParserError

    reason = str(exception) if isinstance(exception, MultiPartParserError) and str(exception) else \
        gettext("The request could not be read: check the form or file you sent.")
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": reason}, status=400)
    from django.shortcuts import render

    return render(request, "400.html", {"reason": reason}, status=400)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """The site's 404 (factory/urls.py handler404): JSON under /api/ (what an API client parses), the page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": gettext("Nothing at %(path)s: check the path and its ids against /api/schema/.")
                                       % {"path": request.path}}, status=404)
    return page_not_found(request, exception)


def text_query(request: Any) -> Any:
    """The request's query parameters, refused with a 400 when one holds a NUL character: PostgreSQL
    text cannot hold it, and a filter on it would be a database error, a 500."""
    bad = sorted({key for key, values in request.query_params.lists()
                  if "\x00" in key or any("\x00" in v for v in values)})
    if bad:
        said = gettext("Remove the NUL character (%00): text cannot hold it.")
        raise ValidationError({key.replace("\x00", "\\u0000"): [said] for key in bad})
    return request.query_params
