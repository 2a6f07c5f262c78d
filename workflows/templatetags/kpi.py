"""Formatting for KPI pages: euros, shares, hours, and a headline card's value and change."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


def _missing(value: Any) -> bool:
    return value is None or isinstance(value, str | bool)


@register.filter
def eur(value: Any, digits: int = 2) -> str:
    if _missing(value):
        return "—"
    if value and abs(value) < 0.01:
        return f"€ {value:.6f}"
    digits = 4 if abs(value) < 0.1 and value else digits
    return f"€ {value:,.{digits}f}"


@register.filter
def pct(value: Any) -> str:
    return "—" if _missing(value) else f"{value * 100:.1f} %"


@register.filter
def hours(value: Any) -> str:
    if _missing(value):
        return "—"
    if value < 1:
        return f"{value * 60:.0f} min"
    return f"{value:.1f} h"


@register.filter
def num(value: Any, digits: int = 1) -> str:
    if _missing(value):
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _format(value: Any, unit: str) -> str:
    if unit == "eur":
        return eur(value)
    if unit == "share":
        return pct(value)
    if unit == "hours":
        return hours(value)
    if unit == "wh":
        return "—" if _missing(value) else f"{value:,.2f} Wh"
    return num(value)


@register.filter
def card_value(card: dict[str, Any]) -> str:
    return _format(card["value"], card["unit"])


@register.filter
def card_change(card: dict[str, Any]) -> str:
    change = card.get("change")
    if change is None:
        return "no comparison"
    if not change:
        return "same as last week"
    sign = "+" if change > 0 else "−"
    if card["unit"] == "share":
        text = f"{abs(change) * 100:.1f} pts"
    elif card["unit"] == "hours":
        text = hours(abs(change))
    else:
        text = _format(abs(change), card["unit"])
    return f"{sign}{text} vs last week"


@register.filter
def get(mapping: Any, key: Any) -> Any:
    return mapping.get(key) if hasattr(mapping, "get") else None
