"""The OpenAPI schema tells the truth about refusals too: every operation documents the errors it can
answer with, each a JSON object whose `detail` says what to fix (the fuzzer in tests/fuzz holds
every response to this schema)."""

from __future__ import annotations

from typing import Any

from drf_spectacular import openapi
from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import permissions, serializers


class ErrorSerializer(serializers.Serializer):
    """A refusal. Besides `detail`, a 400 names each field at fault (`{"name": ["…"]}`) or the rows,
    problems or reasons behind it."""

    detail = serializers.CharField(help_text="What went wrong and what to fix.")


def error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


ERRORS = {
    400: error("The request is invalid: `detail` says what to fix; other keys name the fields, rows or problems "
               "at fault."),
    401: error("No valid token or session: log in, or send `Authorization: Token <key>`."),
    403: error("Your role does not allow this; `detail` names the capability."),
    404: error("No such object, or it is not yours to see."),
}
# A list of JSON objects (a 200 answer without a serializer of its own).
ARRAY = {200: {"type": "array", "items": {"type": "object", "additionalProperties": True}}}
CONFLICT = error("The object's state does not allow this now (already decided, not cancellable, a newer version).")


class AutoSchema(openapi.AutoSchema):
    """drf-spectacular's schema plus the errors every operation can answer with."""

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code in self._error_codes():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(ERRORS[code], str(code), direction=direction)
        return responses

    def _error_codes(self) -> list[int]:
        codes = []
        if self.method in {"POST", "PUT", "PATCH"} or self._get_parameters():
            codes.append(400)
        if not all(isinstance(p, permissions.AllowAny) for p in self.view.get_permissions()):
            codes += [401, 403]
        if "{" in self.path:
            codes.append(404)
        return codes


class TokenViewSchema(OpenApiViewExtension):
    """The token exchange (DRF's view, throttled in workflows/login_throttle.py): a bad password is a 400,
    too many a 429."""

    target_class = "rest_framework.authtoken.views.ObtainAuthToken"
    match_subclasses = True
    priority = 1  # over drf-spectacular's own extension for this view

    def view_replacement(self) -> Any:
        @extend_schema(responses={200: inline_serializer("Token", {"token": serializers.CharField()}),
                                  400: ERRORS[400],
                                  429: error("Too many failed logins from your address or for this username; "
                                             "`Retry-After` says how many seconds to wait.")})
        class Documented(self.target):
            pass

        return Documented
