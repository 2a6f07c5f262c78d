"""Numbers typed by people, read the way they meant them, in Italian and in English.

An Italian writes "28,50" and "1.250,00"; an English speaker "28.50" and "1,250.00"; both paste
whatever their spreadsheet gave them. A browser's number input cannot be trusted with this (it
drops or mangles a comma depending on the browser's own locale: "28,50" was stored as 2850), so
decimal inputs are text inputs with `inputmode="decimal"` read here:

- both separators present: the last one is the decimal point, the other groups thousands;
- one separator, followed by other than exactly three digits ("28,50", "28.5", "0,125"): decimal;
- one separator followed by exactly three digits ("1.250", "1,250"): ambiguous, settled by the
  active language (Italian: "." groups and "," is decimal; English the other way round);
- the same separator more than once ("1.250.000"): grouping, and every group must have 3 digits.

Spaces (also the narrow no-break space French and Swiss spreadsheets use) and a leading or
trailing "€" are ignored. Anything else is an error that says what was expected.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.formats import number_format
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

SPACES = re.compile(r"[\s\u00a0\u202f']")
NUMBER = re.compile(r"^[+-]?[0-9][0-9.,]*$|^[+-]?[.,][0-9]+$")
INVALID = _("Enter a number such as 28,50 or 28.50.")


def parse_decimal(text: Any, language: str | None = None) -> Decimal:
    """The number a person typed (see the module docstring). Raises ValueError with the reason."""
    if isinstance(text, int | Decimal):
        return Decimal(text)
    if isinstance(text, float):
        return Decimal(repr(text))
    raw = SPACES.sub("", str(text)).strip("€")
    if not NUMBER.match(raw):
        raise ValueError(str(INVALID))
    sign = ""
    if raw[0] in "+-":
        sign, raw = raw[0], raw[1:]
    italian = (language or get_language() or "en").startswith("it")
    commas, points = raw.count(","), raw.count(".")
    if commas and points:
        decimal_sep = "," if raw.rfind(",") > raw.rfind(".") else "."
        group_sep = "." if decimal_sep == "," else ","
        if raw.count(decimal_sep) > 1:
            raise ValueError(str(INVALID))
        whole, fraction = raw.split(decimal_sep)
        digits = _ungroup(whole, group_sep) + "." + fraction
    elif commas + points == 0:
        digits = raw
    else:
        sep = "," if commas else "."
        parts = raw.split(sep)
        if len(parts) > 2:
            digits = _ungroup(raw, sep)
        elif len(parts[1]) == 3 and parts[0] not in ("", "0", "+0", "-0"):
            grouping = "." if italian else ","
            digits = parts[0] + parts[1] if sep == grouping else parts[0] + "." + parts[1]
        else:
            digits = (parts[0] or "0") + "." + parts[1]
    if "." in digits:  # "1.250" read as 1.25 is 1.25, not a number with three decimal places
        digits = digits.rstrip("0").rstrip(".") or "0"
    try:
        value = Decimal(sign + digits)
    except InvalidOperation as exc:
        raise ValueError(str(INVALID)) from exc
    if not value.is_finite():
        raise ValueError(str(INVALID))
    return value


def _ungroup(text: str, sep: str) -> str:
    groups = text.split(sep)
    if not groups[0] or len(groups[0]) > 3 or any(len(g) != 3 for g in groups[1:]):
        raise ValueError(str(INVALID))
    return "".join(groups)


class DecimalInput(forms.TextInput):
    """A text input that brings up the numeric keypad with a decimal key on phones."""

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__({"inputmode": "decimal", "autocomplete": "off", **(attrs or {})})

    def format_value(self, value: Any) -> str | None:
        if value in (None, ""):
            return None
        if isinstance(value, str):
            return value  # what the person typed, shown back as typed when the form has an error
        return number_format(value, use_l10n=True)


class LocaleDecimalField(forms.DecimalField):
    """A form's decimal field that reads "28,50", "28.50" and "1.250,00" (see parse_decimal)."""

    widget = DecimalInput
    default_error_messages = {"invalid": INVALID}

    def to_python(self, value: Any) -> Decimal | None:
        if value in self.empty_values:
            return None
        try:
            return parse_decimal(value)
        except ValueError as exc:
            raise ValidationError(self.error_messages["invalid"], code="invalid") from exc

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        # A number input's step/min attributes would make the browser refuse "28,50" before we see it.
        return {}


class LocaleDecimalSerializerField(serializers.DecimalField):
    """The API's decimal field: JSON numbers as they are, and strings read like a form's input
    (a client that sends the user's "28,50" as text gets 28.5, not an error or 2850)."""

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, str):
            try:
                data = parse_decimal(data)
            except ValueError:
                self.fail("invalid")
        return super().to_internal_value(data)


# --- shown: numbers, money, shares and durations in the active locale ------------------------------


def _localised(value: float, digits: int, grouping: bool = False) -> str:
    # Django's number_format cuts extra decimals off (20.935 → "20.93"); round first, as "%.2f" does.
    return number_format(round(float(value), digits), digits, use_l10n=True, force_grouping=grouping)


def number(value: Any, digits: int = 1) -> str:
    """A number grouped and pointed the locale's way: "1.250,5" in Italian, "1,250.5" in English."""
    if value is None or isinstance(value, str | bool):
        return "—"
    if isinstance(value, int):
        return number_format(value, use_l10n=True, force_grouping=True)
    return _localised(value, digits, grouping=True)


def money(value: Any) -> str:
    """Euros with cents ("1.250,00 €" in Italian, "€1,250.00" in English); below a cent, "< 0,01 €"
    rather than six decimals nobody reads; no amount, "—"."""
    if value is None or isinstance(value, str | bool):
        return "—"
    value = float(value)
    if value and abs(value) < 0.01:
        # Translators: an amount smaller than one cent; %(amount)s is "0,01".
        return _("< € %(amount)s") % {"amount": number_format(0.01, 2, use_l10n=True)}
    amount = _localised(abs(value), 2, grouping=True)
    # Translators: put the euro sign where your language puts it ("%(amount)s €" in Italian).
    text = _("€ %(amount)s") % {"amount": amount}
    return f"−{text}" if value < 0 else text


def share(value: Any, digits: int = 1) -> str:
    """A share in 0..1 as a percentage: "81,8 %"."""
    if value is None or value == "" or isinstance(value, bool):
        return "—"
    return f"{_localised(float(value) * 100, int(digits))} %"


def duration(hours: Any) -> str:
    """A duration given in hours, in the unit that fits: "45 s", "12 min", "1,5 h", "3,2 d".
    A sub-minute run must not read "0 min"."""
    if hours is None or isinstance(hours, str | bool):
        return "—"
    seconds = float(hours) * 3600
    if seconds < 60:
        return f"{_localised(seconds, 0 if seconds >= 10 else 1)} s"
    if seconds < 3600:
        return f"{_localised(seconds / 60, 0)} min"
    if seconds < 72 * 3600:
        return f"{_localised(seconds / 3600, 1)} h"
    return f"{_localised(seconds / 86400, 1)} d"


def short(value: Any) -> str:
    """Short and readable for live figures: "0,42", "3,2", "57", "1.234" (Italian)."""
    if value is None or isinstance(value, str | bool):
        return "–"
    value = float(value)
    return _localised(value, 2 if value < 1 else 1 if value < 10 else 0, grouping=True)
