"""Pattern extraction for the fields a model should not guess: checksummed or strictly formatted.

Each finder yields `Span`s with character offsets into the original text. Checksums (IBAN mod-97,
partita IVA, codice fiscale) turn a look-alike number into a confident field or nothing. English
and Italian formats: € 1.234,56 and EUR 1,234.56; 12/03/2025, 12 marzo 2025, March 12, 2025.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Span:
    kind: str
    start: int
    end: int
    value: str
    confidence: float
    source: str = "pattern"
    normalized: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "confidence": round(self.confidence, 4),
            "source": self.source,
        }
        if self.normalized is not None:
            data["normalized"] = self.normalized
        return data


# --- email, url ----------------------------------------------------------------------------------

# The lookbehind refuses a start inside a run of local-part characters (every one of them, `%`
# included): each run is then scanned once, so text without an "@" costs linear time, not quadratic.
EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b")
URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"']+", re.IGNORECASE)


def find_email(text: str) -> Iterator[Span]:
    for m in EMAIL.finditer(text):
        yield Span("email", m.start(), m.end(), m.group(), 0.99, normalized=m.group().lower())


def find_url(text: str) -> Iterator[Span]:
    for m in URL.finditer(text):
        value = m.group().rstrip(".,;:!?)]}'\"")
        yield Span("url", m.start(), m.start() + len(value), value, 0.95)


# --- phone ---------------------------------------------------------------------------------------

PHONE = re.compile(
    r"(?<![\w+/.,])"
    r"(?P<intl>(?:\+|00)\d{1,3}[ .\-]?)?"
    r"(?:\(\d{1,4}\)[ .\-]?)?"
    r"\d{2,4}(?:[ .\-]?\d{2,4}){1,4}"
    r"(?![\w/]|[.,]\d)"
)


def find_phone(text: str) -> Iterator[Span]:
    for m in PHONE.finditer(text):
        value = m.group()
        digits = re.sub(r"\D", "", value)
        if not 8 <= len(digits) <= 15:
            continue
        national = digits if not m.group("intl") else ""
        if m.group("intl"):
            confidence = 0.95
        elif re.fullmatch(r"3\d{8,9}|0\d{5,10}", national):
            confidence = 0.8  # Italian mobile (3xx) and landline (0x) numbers
        elif "(" in value or re.search(r"\d[ .\-]\d", value):
            confidence = 0.6  # grouped digits: looks dialled, could be a reference
        else:
            continue  # a bare run of digits is more likely an order or account number
        normalized = "+" + digits[2:] if value.startswith("00") else ("+" if value.startswith("+") else "") + digits
        yield Span("phone", m.start(), m.end(), value, confidence, normalized=normalized)


# --- IBAN ----------------------------------------------------------------------------------------

IBAN_LENGTHS = {
    "AD": 24,
    "AT": 20,
    "BE": 16,
    "BG": 22,
    "CH": 21,
    "CY": 28,
    "CZ": 24,
    "DE": 22,
    "DK": 18,
    "EE": 20,
    "ES": 24,
    "FI": 18,
    "FR": 27,
    "GB": 22,
    "GR": 27,
    "HR": 21,
    "HU": 28,
    "IE": 22,
    "IS": 26,
    "IT": 27,
    "LI": 21,
    "LT": 20,
    "LU": 20,
    "LV": 21,
    "MC": 27,
    "MT": 31,
    "NL": 18,
    "NO": 15,
    "PL": 28,
    "PT": 25,
    "RO": 24,
    "SE": 24,
    "SI": 19,
    "SK": 24,
    "SM": 27,
    "VA": 22,
}
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}")


def iban_valid(compact: str) -> bool:
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    if compact[:2] in IBAN_LENGTHS and len(compact) != IBAN_LENGTHS[compact[:2]]:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def find_iban(text: str) -> Iterator[Span]:
    for m in IBAN.finditer(text):
        # The greedy match may run into a following code or word; walk back to the longest prefix
        # whose length fits the country and whose checksum holds.
        positions = [m.start() + i for i, c in enumerate(m.group()) if c != " "]
        compact = m.group().replace(" ", "")
        lengths = [IBAN_LENGTHS[compact[:2]]] if compact[:2] in IBAN_LENGTHS else range(len(compact), 14, -1)
        for length in lengths:
            if length <= len(compact) and iban_valid(compact[:length]):
                end = positions[length - 1] + 1
                if end < len(text) and text[end].isalnum():
                    continue  # cut inside a word: not this length
                yield Span("iban", m.start(), end, text[m.start() : end], 0.99, normalized=compact[:length])
                break


# --- Italian VAT (partita IVA) and other EU VAT numbers -------------------------------------------

VAT_IT = re.compile(r"(?<![\w])(?:IT[ ]?)?\d{11}(?!\w)")
VAT_EU = re.compile(
    r"(?<![\w])(?:AT|BE|BG|CY|CZ|DE|DK|EE|EL|ES|FI|FR|HR|HU|IE|LT|LU|LV|MT|NL|PL|PT|RO|SE|SI|SK)"
    r"[ ]?[0-9A-Z]{8,12}(?!\w)"
)
VAT_CONTEXT = re.compile(
    r"(?:p\.?\s?iva|partita\s+iva|vat|ust-?idnr|tva|btw|nif|c\.?f\./p\.?\s?iva)\W{0,12}$", re.IGNORECASE
)


def partita_iva_valid(digits: str) -> bool:
    if not re.fullmatch(r"\d{11}", digits) or digits == "0" * 11:
        return False
    total = 0
    for index, char in enumerate(digits[:10]):
        value = int(char)
        if index % 2 == 1:  # every second digit is doubled, Luhn style
            value *= 2
            value = value - 9 if value > 9 else value
        total += value
    return (10 - total % 10) % 10 == int(digits[10])


def find_vat(text: str) -> Iterator[Span]:
    for m in VAT_IT.finditer(text):
        digits = m.group()[-11:]
        if not partita_iva_valid(digits):
            continue
        context = bool(VAT_CONTEXT.search(text[max(0, m.start() - 30) : m.start()]))
        confidence = 0.98 if (m.group().startswith("IT") or context) else 0.7
        yield Span("vat", m.start(), m.end(), m.group(), confidence, normalized="IT" + digits)
    for m in VAT_EU.finditer(text):
        # No checksum for these here: only trust them when the text calls them VAT numbers.
        if VAT_CONTEXT.search(text[max(0, m.start() - 30) : m.start()]):
            yield Span("vat", m.start(), m.end(), m.group(), 0.8, normalized=m.group().replace(" ", ""))


# --- codice fiscale ------------------------------------------------------------------------------

_OMO = "0123456789LMNPQRSTUV"  # omocodia replaces digits by these letters
CODICE_FISCALE = re.compile(
    r"(?<![\w])[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z](?!\w)",
    re.IGNORECASE,
)
_CF_ODD = dict(
    zip(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        [
            1,
            0,
            5,
            7,
            9,
            13,
            15,
            17,
            19,
            21,
            1,
            0,
            5,
            7,
            9,
            13,
            15,
            17,
            19,
            21,
            2,
            4,
            18,
            20,
            11,
            3,
            6,
            8,
            12,
            14,
            16,
            10,
            22,
            25,
            24,
            23,
        ],
        strict=True,
    )
)


def codice_fiscale_check(code: str) -> str:
    total = 0
    for index, char in enumerate(code[:15].upper()):
        if index % 2 == 0:  # 1st, 3rd, … (1-based odd positions)
            total += _CF_ODD[char]
        else:
            total += int(char) if char.isdigit() else ord(char) - ord("A")
    return chr(ord("A") + total % 26)


def find_codice_fiscale(text: str) -> Iterator[Span]:
    for m in CODICE_FISCALE.finditer(text):
        code = m.group().upper()
        if codice_fiscale_check(code) == code[15]:
            yield Span("codice_fiscale", m.start(), m.end(), m.group(), 0.99, normalized=code)


# --- amounts -------------------------------------------------------------------------------------

_CURRENCY = {
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "$": "USD",
    "usd": "USD",
    "us$": "USD",
    "£": "GBP",
    "gbp": "GBP",
    "chf": "CHF",
    "dollars": "USD",
    "dollari": "USD",
    "sterline": "GBP",
    "pounds": "GBP",
}
_NUMBER = r"\d{1,3}(?:[.,' \u00a0]\d{3})+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?"
_SYMBOL = r"€|\$|£|US\$|\b(?:EUR|USD|GBP|CHF)\b"
_WORD = r"(?:EUR|USD|GBP|CHF|euro|euros|dollars|dollari|pounds|sterline)\b"
AMOUNT = re.compile(
    rf"(?P<pre>{_SYMBOL})\s?(?P<n1>{_NUMBER})(?:\s?(?:k|mila|thousand)\b)?"
    rf"|(?<![\w.,])(?P<n2>{_NUMBER})\s?(?P<post>€|{_WORD})",
    re.IGNORECASE,
)


def parse_number(raw: str) -> float | None:
    number = raw.replace("\u00a0", "").replace(" ", "").replace("'", "")
    last_dot, last_comma = number.rfind("."), number.rfind(",")
    if last_dot >= 0 and last_comma >= 0:
        decimal = "." if last_dot > last_comma else ","
    elif last_dot >= 0 or last_comma >= 0:
        sep = "." if last_dot >= 0 else ","
        tail = number.rsplit(sep, 1)[1]
        # "12,50" / "12.5" are decimals; "1.234" / "1,234" group thousands.
        decimal = sep if len(tail) <= 2 else None
    else:
        decimal = None
    if decimal:
        thousands = "," if decimal == "." else "."
        number = number.replace(thousands, "").replace(decimal, ".")
    else:
        number = number.replace(".", "").replace(",", "")
    try:
        return float(number)
    except ValueError:
        return None


def find_amount(text: str) -> Iterator[Span]:
    for m in AMOUNT.finditer(text):
        raw = m.group("n1") or m.group("n2")
        symbol = (m.group("pre") or m.group("post") or "").lower()
        value = parse_number(raw.strip())
        if value is None:
            continue
        currency = _CURRENCY.get(symbol, symbol.upper())
        yield Span("amount", m.start(), m.end(), m.group(), 0.95, normalized={"amount": value, "currency": currency})


# --- dates ---------------------------------------------------------------------------------------

_MONTHS = {
    **{
        m: i
        for i, m in enumerate(
            [
                "january",
                "february",
                "march",
                "april",
                "may",
                "june",
                "july",
                "august",
                "september",
                "october",
                "november",
                "december",
            ],
            1,
        )
    },
    **{
        m: i
        for i, m in enumerate(
            [
                "gennaio",
                "febbraio",
                "marzo",
                "aprile",
                "maggio",
                "giugno",
                "luglio",
                "agosto",
                "settembre",
                "ottobre",
                "novembre",
                "dicembre",
            ],
            1,
        )
    },
    **{
        m: i
        for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)
    },
    **{
        m: i
        for i, m in enumerate(["gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic"], 1)
    },
    "sept": 9,
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
DATE_NUMERIC = re.compile(r"(?<![\w/.\-])(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})(?![\w/]|[.\-]\d)")
DATE_ISO = re.compile(r"(?<![\w/.\-])(\d{4})-(\d{2})-(\d{2})(?![\w])")
DATE_DAY_MONTH = re.compile(
    rf"(?<![\w])(\d{{1,2}})(?:°|º|st|nd|rd|th)?(?:\s+of)?\s+({_MONTH})\.?,?\s+(\d{{4}})(?!\w)", re.IGNORECASE
)
DATE_MONTH_DAY = re.compile(rf"(?<![\w])({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})(?!\w)", re.IGNORECASE)


def _date(year: int, month: int, day: int) -> str | None:
    if year < 100:
        year += 2000 if year < 70 else 1900
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def find_date(text: str, *, day_first: bool = True) -> Iterator[Span]:
    for m in DATE_NUMERIC.finditer(text):
        a, b, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
        if a > 12 or (day_first and b <= 12):
            day, month, confidence = a, b, (0.95 if a > 12 or a == b else 0.85)
        else:
            month, day, confidence = a, b, 0.9 if b > 12 else 0.7
        if iso := _date(year, month, day):
            yield Span("date", m.start(), m.end(), m.group(), confidence, normalized=iso)
    for m in DATE_ISO.finditer(text):
        if iso := _date(int(m.group(1)), int(m.group(2)), int(m.group(3))):
            yield Span("date", m.start(), m.end(), m.group(), 0.97, normalized=iso)
    for m in DATE_DAY_MONTH.finditer(text):
        if iso := _date(int(m.group(3)), _MONTHS[m.group(2).lower()], int(m.group(1))):
            yield Span("date", m.start(), m.end(), m.group(), 0.97, normalized=iso)
    for m in DATE_MONTH_DAY.finditer(text):
        if iso := _date(int(m.group(3)), _MONTHS[m.group(1).lower()], int(m.group(2))):
            yield Span("date", m.start(), m.end(), m.group(), 0.97, normalized=iso)


FINDERS: dict[str, Callable[[str], Iterator[Span]]] = {
    "email": find_email,
    "url": find_url,
    "phone": find_phone,
    "iban": find_iban,
    "vat": find_vat,
    "codice_fiscale": find_codice_fiscale,
    "amount": find_amount,
    "date": find_date,
}
# When two kinds claim overlapping characters, the stricter one wins: a checksummed IBAN over the
# phone-looking digits inside it, a date over the amount-looking "12.03".
PRIORITY = ["iban", "codice_fiscale", "vat", "email", "url", "date", "amount", "phone"]


def find_patterns_all(text: str) -> list[Span]:
    """Every pattern span of every kind, overlaps resolved by `PRIORITY`, in text order."""
    found = [span for kind in PRIORITY for span in FINDERS[kind](text)]
    rank = {kind: i for i, kind in enumerate(PRIORITY)}
    # One byte per character, set once a kept span covers it: checking a span costs its length, and
    # a finder's matches do not overlap each other, so the whole pass stays linear in the text (a
    # pairwise check was quadratic in the number of spans: 150,000 amounts took minutes).
    claimed = bytearray(len(text))
    kept: list[Span] = []
    for span in sorted(found, key=lambda s: (rank[s.kind], s.start, -(s.end - s.start))):
        if claimed.find(1, span.start, span.end) == -1:
            claimed[span.start:span.end] = b"\x01" * (span.end - span.start)
            kept.append(span)
    return sorted(kept, key=lambda s: (s.start, s.kind))


def find_patterns(text: str, kinds: list[str] | tuple[str, ...] | None = None) -> list[Span]:
    """The pattern spans of the wanted kinds. Every finder runs even for unwanted kinds, so an
    unwanted stricter kind (an IBAN) still stops a wanted looser one (a phone) from claiming its
    digits."""
    return [s for s in find_patterns_all(text) if kinds is None or s.kind in kinds]
