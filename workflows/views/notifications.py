"""The inbox, the bell, the preferences page, and the language switch that e-mails follow.

Thin: every user reads and marks only their own notifications (workflows/notifications/inbox.py
answers 404 for anyone else's); what each role is told is decided where the events happen.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_http_methods, require_POST
from django.views.i18n import set_language as django_set_language

from workflows.models import notifications as kinds
from workflows.notifications import inbox
from workflows.notifications.events import mail_configured


@login_required
def notification_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(inbox.inbox(request.user), 50).get_page(request.GET.get("page"))
    return render(request, "notifications/list.html", {
        "entries": [inbox.entry(n) for n in page], "page": page, "unread": inbox.unread_count(request.user)})


@login_required
def notification_bell(request: HttpRequest) -> HttpResponse:
    """The bell alone, for the top bar's poll."""
    return render(request, "notifications/_bell.html", {"count": inbox.unread_count(request.user)})


def _safe(link: str, request: HttpRequest) -> bool:
    return bool(link) and url_has_allowed_host_and_scheme(link, allowed_hosts={request.get_host()},
                                                          require_https=request.is_secure())


@login_required
@require_POST
def notification_read(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark one read; with `open`, go where it points (the inbox's links do both in one click)."""
    notification = inbox.mark_read(inbox.get_for_user(request.user, pk))
    if request.POST.get("open") and _safe(notification.link, request):
        return redirect(notification.link)
    return redirect("notification-list")


@login_required
@require_POST
def notification_read_all(request: HttpRequest) -> HttpResponse:
    marked = inbox.mark_all_read(request.user)
    messages.success(request, ngettext("%(count)s notification marked as read.",
                                       "%(count)s notifications marked as read.", marked) % {"count": marked})
    return redirect("notification-list")


@login_required
@require_http_methods(["GET", "POST"])
def notification_preferences(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        # An unticked checkbox is not sent: every kind is set from what the form holds.
        choices = {kind: {"in_app": f"in_app.{kind}" in request.POST, "email": f"email.{kind}" in request.POST}
                   for kind in kinds.KINDS}
        try:
            inbox.save_preferences(request.user, choices, request.POST.get("language") or None)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, gettext("Your choices are saved."))
            return redirect("notification-preferences")
    return render(request, "notifications/preferences.html", {
        "preferences": inbox.preferences(request.user), "language": inbox.email_language(request.user),
        "languages": settings.LANGUAGES, "mail": mail_configured(), "address": request.user.email,
        "digest_minutes": settings.NOTIFY_DIGEST_MINUTES},
        status=400 if request.method == "POST" else 200)


def set_language(request: HttpRequest) -> HttpResponse:
    """Django's set_language (the top bar's switcher), remembering a signed-in user's choice for e-mail."""
    response = django_set_language(request)
    language = request.POST.get("language") if request.method == "POST" else None
    if language in dict(settings.LANGUAGES) and request.user.is_authenticated:
        inbox.remember_language(request.user, language)
    return response


# Included by workflows/urls.py under notifications/ (the language switch is routed in factory/urls.py,
# where Django's i18n URLs are).
urlpatterns = [
    path("", notification_list, name="notification-list"),
    path("bell/", notification_bell, name="notification-bell"),
    path("read-all/", notification_read_all, name="notification-read-all"),
    path("preferences/", notification_preferences, name="notification-preferences"),
    path("<int:pk>/read/", notification_read, name="notification-read"),
]
