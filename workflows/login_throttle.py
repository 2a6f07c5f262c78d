"""Login throttling for the login page, the admin's login page and the API token endpoint.

Failures are counted in Django's cache (Redis in production, so every web process sees them) in a
window that starts with the first failure: per username and client address, and per address for any
username. Once a count reaches its limit, logins from there answer 429 with Retry-After *before* the
password is checked, so a guess during a lockout learns nothing, not even a right one. A successful
login clears its username's count; the address count only runs out with its window, so that an
attacker with one working account cannot reset it. The start of a lockout is audited.
"""

from __future__ import annotations

import hashlib
import math
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth import views as auth_views
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from rest_framework import status
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from workflows.models.audit import record


@dataclass(frozen=True)
class Lockout:
    scope: str  # "account": this username from this address; "address": every username from it
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        """What the person is told, in their language (read when the refusal is made)."""
        minutes = max(1, math.ceil(self.retry_after / 60))
        if self.scope == "account":
            return ngettext("Too many failed logins for this username from your address. Try again in %(minutes)s "
                            "minute.", "Too many failed logins for this username from your address. Try again in "
                            "%(minutes)s minutes.", minutes) % {"minutes": minutes}
        return ngettext("Too many failed logins for your address. Try again in %(minutes)s minute.",
                        "Too many failed logins for your address. Try again in %(minutes)s minutes.", minutes) % {
            "minutes": minutes}


def client_ip(request: HttpRequest) -> str:
    header = settings.CLIENT_IP_HEADER
    if header and request.META.get(header):
        return request.META[header].split(",")[-1].strip()  # the hop our own proxy added
    return request.META.get("REMOTE_ADDR", "")


def _keys(request: HttpRequest, username: str) -> dict[str, str]:
    ip = client_ip(request)
    name = unicodedata.normalize("NFKC", username).casefold()

    def key(*parts: str) -> str:
        return "login-failures:" + hashlib.sha256("\0".join(parts).encode()).hexdigest()

    return {"account": key("account", name, ip), "address": key("address", ip)}


def _limits() -> dict[str, int]:
    return {"account": settings.LOGIN_FAILURE_LIMIT, "address": settings.LOGIN_ADDRESS_FAILURE_LIMIT}


def lockout(request: HttpRequest, username: str) -> Lockout | None:
    """The lockout in force for this username from this client, if any."""
    keys = _keys(request, username)
    found = cache.get_many([*keys.values(), *(k + ":since" for k in keys.values())])
    for scope, limit in _limits().items():
        if (found.get(keys[scope]) or 0) >= limit:
            since = found.get(keys[scope] + ":since") or time.time()
            return Lockout(scope, max(1, math.ceil(since + settings.LOGIN_FAILURE_WINDOW - time.time())))
    return None


def login_failed(request: HttpRequest, username: str) -> Lockout | None:
    """Count a failure; audit and return the lockout it starts, if any."""
    window = settings.LOGIN_FAILURE_WINDOW
    keys = _keys(request, username)
    for scope, limit in _limits().items():
        key = keys[scope]
        cache.add(key + ":since", time.time(), timeout=window)
        cache.add(key, 0, timeout=window)
        try:
            count = cache.incr(key)
        except ValueError:  # the window ended between add and incr
            cache.set(key, 1, timeout=window)
            count = 1
        if count == limit:  # exactly one request sees this, even with many web processes
            record("auth.lockout", object_type="auth.user", object_id=username[:80], scope=scope,
                   address=client_ip(request), failures=count, window_seconds=window)
    return lockout(request, username)


def login_succeeded(request: HttpRequest, username: str) -> None:
    key = _keys(request, username)["account"]
    cache.delete_many([key, key + ":since"])


class LoginView(auth_views.LoginView):
    """Django's login view (session key cycled on login) behind the throttle."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        locked = lockout(request, request.POST.get("username", ""))
        if locked:
            return self.refuse(locked)
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: Any) -> HttpResponse:
        login_succeeded(self.request, self.request.POST.get("username", ""))
        return super().form_valid(form)

    def form_invalid(self, form: Any) -> HttpResponse:
        locked = login_failed(self.request, self.request.POST.get("username", ""))
        if locked:
            return self.refuse(locked)
        return super().form_invalid(form)

    def refuse(self, locked: Lockout) -> HttpResponse:
        response = self.render_to_response(self.get_context_data(form=self.get_form_class()(self.request),
                                                                 lockout=locked),
                                           status=429)
        response["Retry-After"] = str(locked.retry_after)
        return response


class ObtainAuthTokenView(ObtainAuthToken):
    """DRF's username-and-password → token exchange behind the same throttle."""

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = request.data
        username = str(data.get("username", "")) if hasattr(data, "get") else ""
        locked = lockout(request, username)
        if locked:
            return self.refuse(locked)
        try:
            response = super().post(request, *args, **kwargs)
        except ValidationError:
            locked = login_failed(request, username)
            if locked:
                return self.refuse(locked)
            raise
        login_succeeded(request, username)
        return response

    def refuse(self, locked: Lockout) -> Response:
        return Response({"detail": locked.message, "code": "login_throttled"}, status=status.HTTP_429_TOO_MANY_REQUESTS,
                        headers={"Retry-After": str(locked.retry_after)})


obtain_auth_token = ObtainAuthTokenView.as_view()


def admin_login(request: HttpRequest) -> HttpResponse:
    """Django admin's login page (its template, form and context, as AdminSite.login builds them)
    behind the same throttle as the site's login page and the API token endpoint."""
    if request.method == "GET" and admin.site.has_permission(request):
        return redirect("admin:index")
    context = {**admin.site.each_context(request), "title": _("Log in"), "subtitle": None,
               "app_path": request.get_full_path(), "username": request.user.get_username()}
    if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
        context[REDIRECT_FIELD_NAME] = reverse("admin:index")
    return LoginView.as_view(extra_context=context, authentication_form=AdminAuthenticationForm,
                             template_name="admin/login.html")(request)
