"""Content-Security-Policy on every response.

Django 5.2 has no CSP of its own; this is the small part we need. The policy is
settings.CONTENT_SECURITY_POLICY; the middleware adds the live sockets' origin (ws:// or wss:// and the
request's host) to connect-src, and applies a view's `csp_update` (only the third-party API docs have
one). A response that already carries the header keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

HEADER = "Content-Security-Policy"


def csp_update(**directives: list[str]) -> Callable:
    """Add sources to directives for one view: `csp_update(style_src=["'unsafe-inline'"])(view)`.

    A directive the base policy does not have is created with exactly the sources given (it no longer
    falls back to default-src), so name 'self' there when it is wanted."""
    update = {name.replace("_", "-"): list(sources) for name, sources in directives.items()}

    def decorator(view: Callable) -> Callable:
        @wraps(view)  # keeps csrf_exempt and DRF's cls/initkwargs on the wrapped view
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            response = view(request, *args, **kwargs)
            response.csp_update = update
            return response

        return wrapped

    return decorator


def policy_for(request: HttpRequest, update: dict[str, list[str]] | None = None) -> str:
    directives = {name: list(sources) for name, sources in settings.CONTENT_SECURITY_POLICY.items()}
    for name, sources in (update or {}).items():
        current = directives.setdefault(name, [])
        current.extend(s for s in sources if s not in current)
    if "connect-src" in directives:
        # 'self' covers same-origin ws:/wss: in CSP Level 3 browsers; older ones need the origin named.
        try:
            host = request.get_host()  # validated against ALLOWED_HOSTS: no spaces or semicolons
        except DisallowedHost:
            host = ""
        if host:
            directives["connect-src"].append(("wss://" if request.is_secure() else "ws://") + host)
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if settings.DEBUG and (response.status_code == 404 or response.status_code >= 500):
            return response  # Django's technical error pages (DEBUG only) have inline style and script
        if HEADER not in response:
            response[HEADER] = policy_for(request, getattr(response, "csp_update", None))
        return response


class RefuseNulMiddleware:
    """A NUL character in a page's query string gets a 400 before the view runs: PostgreSQL text
    cannot hold it, so a filter on it would otherwise be a database error, a 500. The API checks it in
    its views (workflows.api.errors.text_query), after authentication and permissions, so that a
    caller who may not see a resource learns nothing more than 401/403/404."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        if ("%00" in query or "\x00" in query) and not request.path.startswith("/api/"):
            return HttpResponseBadRequest("Remove the NUL character (%00) from the address: text cannot hold it.",
                                          content_type="text/plain; charset=utf-8")
        return self.get_response(request)
