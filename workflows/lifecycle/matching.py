"""Finding a person's identifier in text and JSON columns, the same way on PostgreSQL and SQLite, and
taking it out of a row.

The database narrows the rows: on PostgreSQL `UPPER(column::text) LIKE UPPER('%…%')` (a JSON column
read as its text); on SQLite, whose LIKE folds ASCII only and whose JSON text escapes every accented
letter (\\u00f2), a function of ours that reads the JSON back and folds the case. Python then decides
on the values only (a JSON key that happens to hold the word is not the person's data), so the counts
shown are the rows that will change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from django.db import connections
from django.db.models import BooleanField, F, Func, JSONField, Q, QuerySet, TextField, Value
from django.db.models.functions import Cast

# What an erased text becomes. Stored data, never translated: pages show it as it is.
PLACEHOLDER = "[erased]"
SNIPPET_CONTEXT = 30


def fold(text: str) -> str:
    return text.lower()


def _sqlite_contains(value: Any, needle: Any) -> int:
    if value is None or needle is None:
        return 0
    text = str(value)
    if "\\u" in text:
        try:
            text = json.dumps(json.loads(text), ensure_ascii=False)
        except ValueError:
            pass
    return int(str(needle) in fold(text))


class _FoldContains(Func):
    function = "cf_fold_contains"
    output_field = BooleanField()


def _register(alias: str) -> None:
    connection = connections[alias]
    connection.ensure_connection()
    connection.connection.create_function("cf_fold_contains", 2, _sqlite_contains, deterministic=True)


def matching(queryset: QuerySet, fields: Iterable[str], needle: str) -> QuerySet:
    """Rows where any of `fields` (text or JSON) contains `needle`, ignoring case."""
    needle = fold(needle)
    model = queryset.model
    vendor = connections[queryset.db].vendor
    if vendor != "postgresql":
        _register(queryset.db)
    condition = Q()
    aliases: dict[str, Any] = {}
    for name in fields:
        alias = f"_erasure_{name}"
        is_json = isinstance(model._meta.get_field(name), JSONField)
        if vendor == "postgresql":
            if is_json:
                aliases[alias] = Cast(name, TextField())
                condition |= Q(**{f"{alias}__icontains": needle})
            else:
                condition |= Q(**{f"{name}__icontains": needle})
        else:
            aliases[alias] = _FoldContains(F(name), Value(needle))
            condition |= Q(**{alias: True})
    return queryset.alias(**aliases).filter(condition)


def text_contains(value: Any, needle: str) -> bool:
    return isinstance(value, str) and fold(needle) in fold(value)


def json_contains(value: Any, needle: str) -> bool:
    """Whether any text value (not a key) inside `value` contains `needle`."""
    return any(text_contains(text, needle) for text in texts_of(value))


def texts_of(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from texts_of(inner)
    elif isinstance(value, list | tuple):
        for inner in value:
            yield from texts_of(inner)


def scrub(value: Any, needle: str) -> tuple[Any, int]:
    """`value` with every text that contains `needle` replaced whole by PLACEHOLDER (the text is about
    the person: a ticket that names them goes, not just the name in it); numbers, flags and texts
    without it are kept, so counters, labels and costs the KPIs read survive. (new value, texts replaced)."""
    if isinstance(value, str):
        return (PLACEHOLDER, 1) if text_contains(value, needle) else (value, 0)
    if isinstance(value, dict):
        replaced = 0
        out = {}
        for key, inner in value.items():
            out[key], n = scrub(inner, needle)
            replaced += n
        return out, replaced
    if isinstance(value, list):
        replaced = 0
        items = []
        for inner in value:
            new, n = scrub(inner, needle)
            items.append(new)
            replaced += n
        return items, replaced
    return value, 0


def mask(text: str) -> str:
    """An identifier as a page may show it: enough to recognise, not enough to read it off."""
    def word(part: str) -> str:
        return part[:1] + "•" * max(len(part) - 1, 2) if part else part

    if "@" in text:
        local, _, domain = text.partition("@")
        name, dot, tld = domain.rpartition(".")
        return f"{word(local)}@{word(name) if dot else word(domain)}{dot}{tld if dot else ''}"
    parts = re.split(r"(\s+)", text)
    if len(parts) == 1 and len(text) > 4:
        return text[:1] + "•" * (len(text) - 2) + text[-1:]
    return "".join(p if p.isspace() else word(p) for p in parts)


def snippet(text: str, needle: str, context: int = SNIPPET_CONTEXT) -> str:
    """The text around the first occurrence of `needle`, the occurrence masked."""
    at = fold(text).find(fold(needle))
    if at < 0:
        return ""
    end = at + len(needle)
    before = text[max(0, at - context):at]
    after = text[end:end + context]
    return (("…" if at > context else "") + before + mask(text[at:end]) + after
            + ("…" if end + context < len(text) else "")).replace("\n", " ")


def first_snippet(values: Iterable[Any], needle: str) -> str:
    for value in values:
        for text in texts_of(value):
            found = snippet(text, needle)
            if found:
                return found
    return ""
