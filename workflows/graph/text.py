"""Texts a person reads, written in the pure packages, translatable without importing Django.

`_("Node '%(node)s' has no input.", node=node_id)` marks the message for extraction (makemessages
runs xgettext, which picks up `_()` and `pgettext()` calls, context included) and returns a `Text`:
the English sentence, which is a `str`, so code that logs, stores, compares or joins it sees exactly
the English wording, plus the msgid, its context and its parameters kept apart. The page or the API
that shows it translates it in the reader's language at display time (workflows/design/texts.py:
`gettext(msgid) % params`); a parameter that is a Text itself (a field's label inside a problem) is
translated too. Placeholders are named (`%(name)s`) so a translation may reorder them.
"""

from __future__ import annotations

from typing import Any


class Text(str):
    """An English message that remembers how to translate itself; see the module's docstring."""

    template: str
    params: dict[str, Any]
    context: str

    def __new__(cls, template: str, params: dict[str, Any] | None = None, context: str = "") -> Text:
        params = dict(params or {})
        # No parameters, no formatting: a msgid without placeholders may hold a plain "%".
        self = super().__new__(cls, template % params if params else template)
        self.template, self.params, self.context = template, params, context
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # copies and pickles keep the msgid, not only the English
        return (Text, (self.template, self.params, self.context))

    def to_json(self) -> dict[str, Any]:
        """The form stored in JSON columns (a version's problems, a promotion's evidence)."""
        data: dict[str, Any] = {"msgid": self.template}
        if self.params:
            data["params"] = {k: v.to_json() if isinstance(v, Text) else v for k, v in self.params.items()}
        if self.context:
            data["context"] = self.context
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Text:
        params = {k: cls.from_json(v) if isinstance(v, dict) and "msgid" in v else v
                  for k, v in (data.get("params") or {}).items()}
        return cls(data["msgid"], params, data.get("context") or "")


def _(message: str, /, **params: Any) -> Text:
    """Mark `message` for translation; the English text, translated where it is shown."""
    return Text(message, params)


def pgettext(context: str, message: str, /, **params: Any) -> Text:
    """`_` with a context for the translator: the same English word may need two Italian ones (a run is
    "riuscita", an item "completato"). Named like Django's so that makemessages reads the context."""
    return Text(message, params, context)


def either(texts: list[Any]) -> Any:
    """"A or B or C", translatable: each "or" is a message of its own."""
    joined = texts[0]
    for text in texts[1:]:
        joined = _("%(first)s or %(second)s", first=joined, second=text)
    return joined
