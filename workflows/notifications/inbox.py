"""A user's own notifications (the inbox, the bell), what they want to receive, and their e-mail
language. One door for the pages and the API alike: nobody reads or marks another person's
notifications (Http404: they do not even learn that it exists)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext

from workflows.models import Notification, NotificationPreference, NotificationProfile
from workflows.models import notifications as kinds

from .texts import text, title


def inbox(user: Any) -> Any:
    """The user's in-app notifications, newest first."""
    return Notification.objects.filter(user=user, in_app=True)


def unread_count(user: Any) -> int:
    if not getattr(user, "is_authenticated", False):
        return 0
    return Notification.objects.filter(user=user, in_app=True, read_at__isnull=True).count()


def get_for_user(user: Any, pk: Any) -> Notification:
    try:
        return Notification.objects.get(pk=int(pk), user=user, in_app=True)
    except (Notification.DoesNotExist, ValueError, TypeError, OverflowError):
        raise Http404(gettext("No such notification.")) from None


def mark_read(notification: Notification) -> Notification:
    if notification.read_at is None:
        now = timezone.now()
        Notification.objects.filter(pk=notification.pk, read_at__isnull=True).update(read_at=now)
        notification.read_at = now
    return notification


def mark_all_read(user: Any) -> int:
    return Notification.objects.filter(user=user, in_app=True, read_at__isnull=True).update(read_at=timezone.now())


def entry(notification: Notification) -> dict[str, Any]:
    """What a page or the API shows of one notification, its sentence in the active language."""
    return {"id": notification.pk, "kind": notification.kind, "title": title(notification.kind),
            "text": text(notification.kind, notification.params), "link": notification.link,
            "created_at": notification.created_at, "read": notification.read_at is not None,
            "read_at": notification.read_at}


# --- preferences ------------------------------------------------------------------------------------

@dataclass
class Preference:
    kind: str
    title: str
    in_app: bool
    email: bool


def preferences(user: Any) -> list[Preference]:
    """Every kind, in the preferences page's order, with what the user chose (default: both)."""
    chosen = {p.kind: p for p in NotificationPreference.objects.filter(user=user)}
    return [Preference(kind, str(name), chosen[kind].in_app if kind in chosen else True,
                       chosen[kind].email if kind in chosen else True) for kind, name in kinds.KINDS.items()]


def check_language(code: Any) -> str:
    if code not in dict(settings.LANGUAGES):
        raise ValidationError(gettext("The language must be one of %(codes)s.")
                              % {"codes": ", ".join(dict(settings.LANGUAGES))})
    return code


def save_preferences(user: Any, choices: dict[str, dict[str, bool]], language: str | None = None) -> None:
    """Write the choices ({kind: {"in_app": bool, "email": bool}}; a flag left out keeps its value) and the
    e-mail language, all or nothing: an unknown kind or language is refused before anything is written."""
    language = check_language(language) if language is not None else None
    unknown = sorted(set(choices) - set(kinds.KINDS))
    if unknown:
        raise ValidationError(gettext("Unknown kind %(kinds)s; the kinds are %(known)s.")
                              % {"kinds": ", ".join(unknown), "known": ", ".join(kinds.KINDS)})
    current = {p.kind: p for p in preferences(user)}
    with transaction.atomic():
        for kind, flags in choices.items():
            NotificationPreference.objects.update_or_create(
                user=user, kind=kind, defaults={"in_app": flags.get("in_app", current[kind].in_app),
                                                "email": flags.get("email", current[kind].email)})
        if language is not None:
            remember_language(user, language)


# --- the e-mail language ------------------------------------------------------------------------------

def email_language(user: Any) -> str:
    chosen = NotificationProfile.objects.filter(user=user).values_list("language", flat=True).first()
    return chosen if chosen in dict(settings.LANGUAGES) else settings.LANGUAGE_CODE


def remember_language(user: Any, code: str) -> None:
    """The user switched the interface's language: their e-mails follow."""
    if getattr(user, "is_authenticated", False) and code in dict(settings.LANGUAGES):
        NotificationProfile.objects.update_or_create(user=user, defaults={"language": code})


def language_at_login(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    """At a login, a person who never chose their e-mails' language gets the one their pages are shown
    in (the browser's, through LocaleMiddleware): an Italian office reads Italian digests from the start."""
    code = getattr(request, "LANGUAGE_CODE", "") if request is not None else ""
    if user is None or code not in dict(settings.LANGUAGES):
        return
    profile, created = NotificationProfile.objects.get_or_create(user=user, defaults={"language": code})
    if not created and not profile.language:
        NotificationProfile.objects.filter(pk=profile.pk, language="").update(language=code)
