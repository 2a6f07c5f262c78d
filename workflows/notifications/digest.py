"""One e-mail instead of a flood: what is pending for a user goes out as one digest, at most every
NOTIFY_DIGEST_MINUTES, in the user's language, through Django's mail framework (SMTP settings from the
environment: EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS).

A notification read in the app before its digest leaves is not mailed: the person has seen it.
Every worker's monitor ticks this; the conditional UPDATE on the user's `digest_sent_at` lets one of
them send each digest. A failed send is logged and tried again one period later (a crash between
sending and marking sends that digest twice: at least once, never lost).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext, ngettext

from workflows.models import Notification, NotificationProfile

from .events import mail_configured
from .inbox import email_language
from .texts import text

logger = logging.getLogger(__name__)


def pending() -> Any:
    return Notification.objects.filter(email=True, emailed_at__isnull=True, read_at__isnull=True)


def absolute(link: str) -> str:
    """Links in an e-mail need the site's address (NOTIFY_SITE_URL); without it the path is given."""
    base = settings.NOTIFY_SITE_URL.rstrip("/")
    return f"{base}{link}" if base and link.startswith("/") else link


def _claim(user_id: int, now: datetime) -> bool:
    """Take this user's digest for this tick, unless one went less than a period ago or another
    worker took it first."""
    profile, _ = NotificationProfile.objects.get_or_create(user_id=user_id)
    last = profile.digest_sent_at
    if last is not None and last > now - timedelta(minutes=settings.NOTIFY_DIGEST_MINUTES):
        return False
    return NotificationProfile.objects.filter(pk=user_id, digest_sent_at=last).update(digest_sent_at=now) == 1


def compose(user: Any, notifications: list[Notification]) -> EmailMessage:
    """The digest, written in the user's e-mail language."""
    with translation.override(email_language(user)):
        subject = ngettext("Cognitive Factory: %(count)s new notification",
                           "Cognitive Factory: %(count)s new notifications", len(notifications)) % {
            "count": len(notifications)}
        lines = [gettext("Hello %(name)s,") % {"name": user.get_username()}, "",
                 ngettext("this happened since the last e-mail:", "these happened since the last e-mail:",
                          len(notifications)), ""]
        for n in notifications:
            lines.append(f"- {text(n.kind, n.params)}")
            if n.link:
                lines.append(f"  {absolute(n.link)}")
        lines += ["", gettext("Choose what you receive, in the app and by e-mail: %(url)s")
                  % {"url": absolute(reverse("notification-preferences"))}]
    return EmailMessage(subject=subject, body="\n".join(lines) + "\n", to=[user.email],
                        headers={"Auto-Submitted": "auto-generated"})


def send_digests(now: datetime | None = None) -> int:
    """Send every digest that is due; answers how many e-mails went out."""
    if not mail_configured():
        return 0
    now = now or timezone.now()
    sent = 0
    user_ids = list(pending().filter(created_at__lte=now).order_by("user_id").values_list("user_id", flat=True)
                    .distinct()[:10000])
    users = get_user_model().objects.in_bulk(user_ids)
    for user_id in user_ids:
        user = users.get(user_id)
        if user is None or not user.is_active or not user.email or not _claim(user_id, now):
            continue
        notifications = list(pending().filter(user_id=user_id, created_at__lte=now).order_by("created_at", "id"))
        if not notifications:
            continue
        try:
            compose(user, notifications).send()
        except Exception:
            # The server refused or is down: the notifications stay pending for the next period.
            logger.exception("notification digest to user %s not sent", user_id)
            continue
        Notification.objects.filter(pk__in=[n.pk for n in notifications]).update(emailed_at=now)
        sent += 1
    return sent
