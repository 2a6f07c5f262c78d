"""Which column of an uploaded file feeds which field of the workflow's source: a guess by the
column's name (Italian and English) and by what it holds, shown with sample values for a person to
confirm. Pure: it reads a parsed file (engine/intake.py) and nothing else.

The costly mistake is classifying ticket numbers instead of tickets, so a column that looks like an
identifier (short tokens without spaces, nearly all different, or digits) is never guessed for
`text`, whatever its name; with no good candidate the field is left for the person to choose.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

# Names a column goes by for each field, normalised (lower case, no accents, "_" between words).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "text": ("text", "testo", "body", "corpo", "descrizione", "description", "messaggio", "message", "messaggi",
             "content", "contenuto", "richiesta", "request", "nota", "note", "comment", "commento", "document",
             "documento"),
    "subject": ("subject", "oggetto", "title", "titolo", "summary"),
    "lang": ("lang", "language", "lingua", "locale", "idioma"),
    "language": ("language", "lang", "lingua", "locale"),
    "channel": ("channel", "canale", "source", "fonte", "via"),
    "customer_type": ("customer_type", "tipo_cliente", "cliente_tipo", "segment", "segmento", "customer_segment"),
    "segment": ("segment", "segmento", "customer_type", "tipo_cliente"),
    "email": ("email", "e_mail", "mail", "sender", "mittente", "from"),
    "sender": ("sender", "mittente", "from", "email", "e_mail"),
    "date": ("date", "data", "created", "created_at", "received", "ricevuto"),
    "id": ("id", "ticket_id", "codice", "code", "numero", "number", "ref", "riferimento"),
    # A labelled set's true class (governance/labelsets.py guesses it like a run field).
    "label": ("label", "etichetta", "category", "categoria", "class", "classe", "classification",
              "classificazione", "tag", "target", "sentiment", "intent", "topic", "argomento"),
}
# A column's name that says "identifier" (whole name, or its last word).
ID_NAMES = frozenset({"id", "uid", "uuid", "key", "code", "codice", "cod", "numero", "number", "num", "no", "nr",
                      "ref", "riferimento", "ticket", "protocollo", "pratica"})
LANGUAGE_CODES = frozenset({"it", "en", "de", "fr", "es", "pt", "nl", "ita", "eng", "deu", "fra", "spa"})
SAMPLE_ROWS = 200
SAMPLES_SHOWN = 3
SAMPLE_CHARS = 40
ID_MAX_CHARS = 24


@dataclass(frozen=True)
class Column:
    """What the mapping form shows of a column: its name, a few values, whether it looks like an id."""

    name: str
    samples: tuple[str, ...]
    id_like: bool
    mean_words: float


@dataclass(frozen=True)
class Choice:
    """The column guessed for a field ("" when none fits) and why: "name", "content" or ""."""

    field: str
    column: str
    reason: str


def normalise(name: str) -> str:
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "_", plain).strip("_")


def _values(rows: list[dict[str, Any]], column: str) -> list[str]:
    found = []
    for row in rows:
        value = row.get(column)
        if value is None or isinstance(value, dict | list):
            continue
        text = str(value).strip()
        if text:
            found.append(text)
    return found


def looks_like_id(name: str, values: list[str]) -> bool:
    """Short tokens without spaces that are (nearly) all different, or digits: ticket numbers,
    codes, UUIDs. A column named like an identifier with short single-token values counts too."""
    if not values:
        return False
    tokens = all(len(v) <= ID_MAX_CHARS and not any(c.isspace() for c in v) for v in values)
    if not tokens:
        return False
    digits = all(re.fullmatch(r"[#\-/._]*\d[\d\-/._]*", v) for v in values)
    unique = len(set(values)) >= 0.9 * len(values) and len(values) > 1
    words = normalise(name).split("_")
    return digits or unique or normalise(name) in ID_NAMES or (words[-1] in ID_NAMES)


def describe(columns: list[str], rows: list[dict[str, Any]]) -> list[Column]:
    """Every column with its first distinct values and what it looks like (from the first rows)."""
    sample = rows[:SAMPLE_ROWS]
    described = []
    for name in columns:
        values = _values(sample, name)
        shown = tuple(dict.fromkeys(v[:SAMPLE_CHARS] + ("…" if len(v) > SAMPLE_CHARS else "") for v in values))
        words = sum(len(v.split()) for v in values) / len(values) if values else 0.0
        described.append(Column(name, shown[:SAMPLES_SHOWN], looks_like_id(name, values), words))
    return described


def _name_score(field: str, column: str) -> int:
    """3: the column is named as the field or a synonym; 2: one of its words is; 0: no relation."""
    names = {normalise(field), *SYNONYMS.get(normalise(field), ())}
    normal = normalise(column)
    if normal in names:
        return 3
    words = set(normal.split("_"))
    return 2 if words & names else 0


def _is_language(values: list[str]) -> bool:
    return bool(values) and all(v.lower() in LANGUAGE_CODES for v in values)


def guess(fields: list[str], columns: list[str], rows: list[dict[str, Any]]) -> list[Choice]:
    """A column for each field, each column used once: names first (exact before partial), then
    content (the longest free text for `text`, language codes for a language field)."""
    described = {c.name: c for c in describe(columns, rows)}
    chosen: dict[str, Choice] = {}
    used: set[str] = set()

    def fits(field: str, column: str) -> bool:
        return column not in used and not (normalise(field) == "text" and described[column].id_like)

    for wanted in (3, 2):
        for field in fields:
            if field in chosen:
                continue
            for column in columns:
                if fits(field, column) and _name_score(field, column) == wanted:
                    chosen[field] = Choice(field, column, "name")
                    used.add(column)
                    break
    for field in fields:
        if field in chosen:
            continue
        candidates = [c for c in columns if fits(field, c)]
        pick = ""
        if normalise(field) == "text":
            prose = [c for c in candidates if described[c].mean_words >= 3]
            pick = max(prose, key=lambda c: described[c].mean_words, default="")
        elif normalise(field) in ("lang", "language", "lingua"):
            pick = next((c for c in candidates if _is_language(_values(rows[:SAMPLE_ROWS], c))), "")
        if pick:
            used.add(pick)
        chosen[field] = Choice(field, pick, "content" if pick else "")
    return [chosen[f] for f in fields]
