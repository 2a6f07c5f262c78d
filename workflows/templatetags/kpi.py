"""Formatting for KPI pages: euros, shares, durations, and a headline card's value and change, all
in the user's locale (the formatting itself lives in workflows/formats.py)."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.translation import gettext as _

from workflows import formats

register = template.Library()


@register.filter
def eur(value: Any, digits: int = 2) -> str:
    return formats.money(value)


@register.filter
def pct(value: Any) -> str:
    return formats.share(value)


@register.filter
def hours(value: Any) -> str:
    return formats.duration(value)


@register.filter
def num(value: Any, digits: int = 1) -> str:
    return formats.number(value, digits)


def _format(value: Any, unit: str) -> str:
    if unit == "eur":
        return eur(value)
    if unit == "share":
        return pct(value)
    if unit == "hours":
        return hours(value)
    if unit == "wh":
        return "—" if value is None or isinstance(value, str | bool) else \
            f"{formats.number(value, 2)} Wh"
    return num(value)


@register.filter
def card_value(card: dict[str, Any]) -> str:
    return _format(card["value"], card["unit"])


@register.filter
def card_change(card: dict[str, Any]) -> str:
    change = card.get("change")
    if change is None:
        return _("no comparison")
    if not change:
        return _("same as last week")
    sign = "+" if change > 0 else "−"
    if card["unit"] == "share":
        # Translators: a change in percentage points, e.g. "3,5 pts".
        text = _("%(points)s pts") % {"points": formats.number(abs(change) * 100, 1)}
    elif card["unit"] == "hours":
        text = hours(abs(change))
    else:
        text = _format(abs(change), card["unit"])
    # Translators: e.g. "+3,5 pts vs last week".
    return _("%(change)s vs last week") % {"change": f"{sign}{text}"}


@register.filter
def get(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None
