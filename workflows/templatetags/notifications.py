"""The bell in the top bar: `{% load notifications %}{% notification_bell %}` renders it with the
signed-in user's unread count (one indexed count per page; the bell then polls on its own)."""

from __future__ import annotations

from typing import Any

from django import template

from workflows.notifications.inbox import unread_count

register = template.Library()


@register.inclusion_tag("notifications/_bell.html", takes_context=True)
def notification_bell(context: Any) -> dict[str, Any]:
    request = context.get("request")
    return {"count": unread_count(getattr(request, "user", None))}
