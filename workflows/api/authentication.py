"""Session authentication whose CSRF refusal does not depend on the body's media type.

DRF's check reads the form token from the parsed body. On a view that takes only uploads
(multipart), a JSON body cannot be parsed, so a request without any token was answered 415
(Unsupported media type) as soon as the browser held a CSRF cookie, instead of being refused for
CSRF. Nothing was done either way; the answer now says why: no token, no mutation.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.utils.translation import gettext
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions


class SessionAuthentication(authentication.SessionAuthentication):
    def enforce_csrf(self, request: Any) -> None:
        try:
            super().enforce_csrf(request)
        except exceptions.UnsupportedMediaType:
            if request.META.get(settings.CSRF_HEADER_NAME):
                raise  # a token came in the header: the body's type is the real problem
            raise exceptions.PermissionDenied(gettext("CSRF Failed: CSRF token missing.")) from None


class SessionScheme(OpenApiAuthenticationExtension):
    """The OpenAPI description of this authentication: drf-spectacular's cookie scheme, as for DRF's own."""

    target_class = SessionAuthentication
    name = "cookieAuth"
    priority = -1

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {"type": "apiKey", "in": "cookie", "name": settings.SESSION_COOKIE_NAME}
