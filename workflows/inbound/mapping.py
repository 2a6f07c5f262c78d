"""From a sender's own JSON to items: JSON pointers (RFC 6901) per item field, and an optional pointer
to an array when one delivery carries many documents.

Every problem names the pointer that found nothing (in full, from the document's root, so the sender
can look it up in what it sent), the item field it was for, and where the lookup stopped.
Django only for gettext: the rules here are plain data in, plain data out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext, ngettext

FIELD = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
MAX_POINTER_CHARS = 500
MAX_MAPPED_FIELDS = 50
MAX_PROBLEMS_LISTED = 20
ARRAY_INDEX = re.compile(r"^(0|[1-9][0-9]*)$")
BAD_ESCAPE = re.compile(r"~(?![01])")


class PointerError(ValueError):
    """A pointer that is not RFC 6901 syntax (a setting to fix, not a delivery problem)."""


class MappingError(ValueError):
    """Why a payload makes no items: every problem (the first MAX_PROBLEMS_LISTED), each a sentence."""

    def __init__(self, problems: list[str], more: int = 0):
        self.problems = problems
        self.more = more
        super().__init__(" ".join(problems))

    @property
    def message(self) -> str:
        said = " ".join(self.problems)
        if self.more:
            said += " " + ngettext("(and %(count)s more problem)", "(and %(count)s more problems)",
                                   self.more) % {"count": self.more}
        return said


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of a JSON pointer ("" is the whole document), or PointerError."""
    if not isinstance(pointer, str):
        raise PointerError(gettext("A JSON pointer is text, e.g. /ticket/body."))
    if len(pointer) > MAX_POINTER_CHARS:
        raise PointerError(gettext("The JSON pointer is longer than %(limit)s characters.")
                           % {"limit": MAX_POINTER_CHARS})
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PointerError(gettext("'%(pointer)s' is not a JSON pointer: it starts with '/' (e.g. /ticket/body), "
                                   "or is empty for the whole document.") % {"pointer": pointer})
    tokens = pointer[1:].split("/")
    if any(BAD_ESCAPE.search(token) for token in tokens):
        raise PointerError(gettext("'%(pointer)s' is not a JSON pointer: '~' must be followed by 0 (for a '~' in a "
                                   "name) or 1 (for a '/' in a name).") % {"pointer": pointer})
    # RFC 6901 §4: ~1 first, then ~0, so that "~01" means the name "~1".
    return [token.replace("~1", "/").replace("~0", "~") for token in tokens]


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def join(*parts: str | int) -> str:
    """A pointer from a prefix pointer and more tokens: join("/tickets", 2, "body") == "/tickets/2/body"."""
    prefix, *tokens = parts
    return str(prefix) + "".join("/" + escape(str(t)) for t in tokens)


def kind_of(value: Any) -> str:
    if isinstance(value, dict):
        return gettext("an object")
    if isinstance(value, list):
        return gettext("an array")
    if isinstance(value, str):
        return gettext("text")
    if isinstance(value, bool):
        return gettext("true or false")
    if value is None:
        return gettext("null")
    return gettext("a number")


class NotFound(LookupError):
    def __init__(self, why: str):
        self.why = why
        super().__init__(why)


def resolve(document: Any, pointer: str, base: str = "") -> Any:
    """The value `pointer` refers to in `document`, or NotFound saying where the lookup stopped.
    `base` is the pointer of `document` itself within the delivery, for the message."""
    here = base
    value = document
    for token in parse_pointer(pointer):
        if isinstance(value, dict):
            if token not in value:
                raise NotFound(gettext("'%(where)s' has no member '%(name)s'")
                               % {"where": here or "/", "name": token})
            value = value[token]
        elif isinstance(value, list):
            if not ARRAY_INDEX.match(token):
                raise NotFound(gettext("'%(where)s' is an array: '%(token)s' is not an index (0, 1, 2…)")
                               % {"where": here or "/", "token": token})
            if int(token) >= len(value):
                raise NotFound(ngettext("'%(where)s' has %(count)s element, so no index %(index)s",
                                        "'%(where)s' has %(count)s elements, so no index %(index)s", len(value))
                               % {"where": here or "/", "count": len(value), "index": token})
            value = value[int(token)]
        else:
            raise NotFound(gettext("'%(where)s' is %(kind)s, with nothing inside")
                           % {"where": here or "/", "kind": kind_of(value)})
        here = join(here, token)
    return value


@dataclass(frozen=True)
class Mapping:
    """How a source reads a delivery: {item field: pointer} within each element of `items_pointer`'s
    array (or within the whole document), and the fields every item must carry as non-empty text."""

    fields: dict[str, str]
    items_pointer: str = ""
    required: tuple[str, ...] = ("text",)

    def elements(self, payload: Any) -> list[tuple[str, Any]]:
        """(pointer of the element, element) for each document in the delivery."""
        if not self.items_pointer:
            return [("", payload)]
        try:
            found = resolve(payload, self.items_pointer)
        except NotFound as exc:
            raise MappingError([gettext("The items pointer '%(pointer)s' found nothing: %(why)s.")
                                % {"pointer": self.items_pointer, "why": exc.why}]) from None
        if not isinstance(found, list):
            raise MappingError([gettext("The items pointer '%(pointer)s' found %(kind)s, not an array of items.")
                                % {"pointer": self.items_pointer, "kind": kind_of(found)}])
        if not found:
            raise MappingError([gettext("The items pointer '%(pointer)s' found an empty array: there is nothing to "
                                        "take.") % {"pointer": self.items_pointer}])
        return [(join(self.items_pointer, index), element) for index, element in enumerate(found)]

    def items(self, payload: Any) -> list[dict[str, Any]]:
        """One item per element, or MappingError listing every problem (all or nothing)."""
        problems: list[str] = []
        items = []
        for base, element in self.elements(payload):
            item: dict[str, Any] = {}
            for field, pointer in self.fields.items():
                where = base + pointer
                try:
                    value = resolve(element, pointer, base)
                except NotFound as exc:
                    if field in self.required:
                        problems.append(gettext("'%(pointer)s' (for '%(field)s') found nothing: %(why)s.")
                                        % {"pointer": where or "/", "field": field, "why": exc.why})
                    continue  # an optional field the sender left out: the item goes without it
                if field in self.required and not isinstance(value, str):
                    problems.append(gettext("'%(pointer)s' (for '%(field)s') is %(kind)s; '%(field)s' must be "
                                            "text.") % {"pointer": where or "/", "field": field,
                                                        "kind": kind_of(value)})
                    continue
                if field in self.required and not value.strip():
                    problems.append(gettext("'%(pointer)s' (for '%(field)s') is empty; '%(field)s' needs text.")
                                    % {"pointer": where or "/", "field": field})
                    continue
                item[field] = value
            items.append(item)
        if problems:
            raise MappingError(problems[:MAX_PROBLEMS_LISTED], max(0, len(problems) - MAX_PROBLEMS_LISTED))
        return items


def mapping_problems(fields: Any, items_pointer: Any, idempotency_pointer: Any,
                     required: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """What is wrong with a source's reading settings, by setting name (empty when nothing is)."""
    problems: dict[str, list[str]] = {}

    def add(name: str, message: str) -> None:
        problems.setdefault(name, []).append(message)

    if not isinstance(fields, dict) or not fields:
        add("mapping", gettext("Map at least one item field to a JSON pointer, e.g. {\"text\": \"/ticket/body\"}."))
        fields = {}
    if len(fields) > MAX_MAPPED_FIELDS:
        add("mapping", gettext("Map at most %(limit)s fields.") % {"limit": MAX_MAPPED_FIELDS})
    for field, pointer in fields.items():
        if not isinstance(field, str) or not FIELD.match(field):
            add("mapping", gettext("'%(field)s' is not an item field name: lower-case letters, digits and '_', "
                                   "starting with a letter or '_' (e.g. text, subject).") % {"field": field})
            continue
        try:
            parse_pointer(pointer)
        except PointerError as exc:
            add("mapping", gettext("'%(field)s': %(problem)s") % {"field": field, "problem": exc})
    unmapped = [f for f in required if f not in fields]
    if unmapped and fields:
        add("mapping", ngettext("Map %(fields)s: the workflow's inbound webhook source needs it.",
                                "Map %(fields)s: the workflow's inbound webhook source needs them.", len(unmapped))
            % {"fields": ", ".join(f"'{f}'" for f in unmapped)})
    for name, pointer in (("items_pointer", items_pointer), ("idempotency_pointer", idempotency_pointer)):
        try:
            parse_pointer(pointer or "")
        except PointerError as exc:
            add(name, str(exc))
    return problems


def _place(document: Any, tokens: list[str], value: Any) -> Any:
    """`document` with `value` put at `tokens`, creating objects (or arrays, for index tokens) on the way."""
    if not tokens:
        return value
    head, rest = tokens[0], tokens[1:]
    if ARRAY_INDEX.match(head) and (document is None or isinstance(document, list)):
        array = document if isinstance(document, list) else []
        while len(array) <= int(head):
            array.append(None)
        array[int(head)] = _place(array[int(head)], rest, value)
        return array
    obj = document if isinstance(document, dict) else {}
    obj[head] = _place(obj.get(head), rest, value)
    return obj


def example(fields: dict[str, str], items_pointer: str = "", idempotency_pointer: str = "") -> Any:
    """A payload the mapping reads (for the source's curl example): each mapped field at its pointer,
    inside a one-element array at `items_pointer` when there is one. Pointers must be valid."""
    element: Any = None
    for field, pointer in fields.items():
        element = _place(element, parse_pointer(pointer), gettext("A sample %(field)s") % {"field": field})
    document: Any = _place(None, parse_pointer(items_pointer), [element]) if items_pointer else element
    if idempotency_pointer:
        document = _place(document, parse_pointer(idempotency_pointer), "delivery-0001")
    return document
