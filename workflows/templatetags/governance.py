"""Filters for the governance pages: percentages, sizes, signed deltas."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def pct(value: Any, digits: int = 1) -> str:
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:.{int(digits)}f} %"


@register.filter
def signed_pct(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return f"{float(value) * 100:+.1f} pts"


@register.filter
def mb(value: Any) -> str:
    if value is None or value == "":
        return "—"
    return f"{int(value) / 1e6:.2f} MB" if int(value) >= 100_000 else f"{int(value) / 1e3:.1f} kB"


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
