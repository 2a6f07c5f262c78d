"""Filters for the governance pages: percentages, sizes, signed deltas."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _

from workflows import formats

register = template.Library()


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    return formats.share(value, digits)


@register.filter
def signed_pct(value: Any) -> str:
    if value is None or value == "":
        return "—"
    points = float(value) * 100
    sign = "+" if points >= 0 else "−"
    # Translators: a change in percentage points, e.g. "+3,5 pts".
    return _("%(points)s pts") % {"points": sign + formats.number(abs(points), 1)}


@register.filter
def mb(value: Any) -> str:
    if value is None or value == "":
        return "—"
    size = int(value)
    if size >= 100_000:
        return f"{formats.number(size / 1e6, 2)} MB"
    return f"{formats.number(size / 1e3, 1)} kB"


@register.filter
def lookup(mapping: Any, key: Any) -> Any:
    if isinstance(mapping, dict):
        return mapping.get(key, mapping.get(str(key)))
    if isinstance(mapping, list | tuple):
        try:
            return mapping[int(key)]
        except (ValueError, IndexError):
            return None
    return None
