from __future__ import annotations

from datetime import date, datetime
from typing import Any

from django import template
from django.utils import formats, timezone

register = template.Library()


@register.filter
def get_item(mapping: Any, key: str) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None


@register.filter
def when(value: Any, style: str = "datetime") -> str:
    """A time in the user's locale and the site's time zone, naming the zone (CET/CEST).

    Every displayed time says its zone because operators compare them with e-mails and logs written
    elsewhere; "14/09/2026 10:05 CEST" cannot be misread, "10:05" can. `style` is "datetime",
    "date" (no zone: a day is a day) or "time". ISO strings (times stored in JSON) are read first.
    """
    if not value:
        return "—"
    if isinstance(value, str):  # a time kept in JSON (evidence, a signed pack) is an ISO string
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, datetime):
        local = timezone.localtime(value) if timezone.is_aware(value) else value
        if style == "date":
            return formats.date_format(local, "SHORT_DATE_FORMAT")
        shown = formats.time_format(local, "TIME_FORMAT") if style == "time" else \
            formats.date_format(local, "SHORT_DATETIME_FORMAT")
        return f"{shown} {local.tzname() or ''}".strip()
    if isinstance(value, date):
        return formats.date_format(value, "SHORT_DATE_FORMAT")
    return str(value)


@register.filter
def status_label(status: Any, kind: str = "run") -> str:
    """A run's or (with "item") an item's stored status word as the reader's language says it."""
    from workflows.design.texts import status_label as label  # templatetags sit above design; kept lazy

    return label(str(status), kind)


@register.filter
def short(value: Any) -> str:
    """A live figure, short and in the reader's locale (workflows/formats.py short)."""
    from workflows import formats  # templatetags sit above formats; kept beside status_label's import

    return formats.short(value)


@register.filter
def translated(value: Any) -> Any:
    """A text of the pure packages (a node type's title, a validation problem) in the reader's language;
    any other value (a name a designer typed) as it is."""
    from workflows.design.texts import translate  # templatetags sit above design; kept lazy as above

    return translate(value)
