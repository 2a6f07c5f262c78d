"""Which language a text is written in: a count of stop words, cheap enough for every item.

No model: the large-model node asks this whether a local model can write an item's language at all
before it spends a call (a small model asked about an Italian ticket answers with English fragments).
Stop words carry the signal because every sentence needs them and they rarely cross languages, while
names, codes, amounts and borrowed terms ("app", "login", "Via Roma") carry none. A text with too few
of them (a code, a number, one word) is undetermined, and an undetermined text is never refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NAMES = {"en": "English", "it": "Italian", "fr": "French", "de": "German", "es": "Spanish"}

# A word listed for several languages ("la", "un", "con") is shared out among them, and the most
# ambiguous ("a", "i", "in", "de") are left out: a language wins on the words only it uses ("the", "è",
# "che", "und", "est").
STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("""the and of to is are was were be been being have has had you we they it its this that these
        those with for on at from by not no but or if my your our their me us him her his she he please can could
        would should will shall do does did am an as what when which who whom there here all any some about into
        than then them also just only very after before again because while thanks thank hello dear regards
        since""".split()),
    "it": frozenset("""il lo gli un una uno di del dello della dei degli delle da dal dallo dalla dai dagli dalle nel
        nello nella nei negli nelle sul sullo sulla sui sugli sulle col con per tra fra che non è e ed sono ho hai ha
        abbiamo avete hanno era erano sarà mi ti si ci vi ma anche come più già ancora sempre questo questa questi
        queste quello quella quelli mio mia miei mie tuo tua nostro nostra vostro vostra loro suo sua se perché
        quando dove chi cosa grazie buongiorno buonasera salve gentile gentili cordiali saluti vorrei vorremmo
        potete potreste posso può essere stato stata al allo alla ai agli alle dell dall nell sull l la le però
        oppure quindi ogni nessun nessuna""".split()),
    "fr": frozenset("""le la les un une des du de et est sont je tu vous nous ils elles elle il pas ne que qui pour
        avec dans sur au aux ce cette ces mais ou où bonjour merci votre vos notre nos mon ma mes été avoir être
        très aussi leur leurs l""".split()),
    "de": frozenset("""der die das und ist sind ich du sie wir ihr nicht ein eine einen einem einer mit für auf dem
        den des zu von im bitte danke ihre unser unsere mein meine aber oder wenn wie was auch noch bei nach
        sehr haben hat wurde""".split()),
    "es": frozenset("""el la los las un una unos unas de del y es son yo usted ustedes nosotros no que por para con
        en al pero como más este esta estos mi su sus hola gracias buenos días estoy está están hay muy también
        porque cuando donde""".split()),
}
MIN_WORDS = 2.0  # stop words (shared ones in part) a language needs before it counts at all
MIXED_SHARE = 0.25  # a second language with a quarter of the first one's stop words makes a mixed text
WORD = re.compile(r"[^\W\d_]+")  # letters only: "dell'ordine" → dell, ordine; "c'è" → c, è
ALIASES = {"english": "en", "inglese": "en", "italian": "it", "italiano": "it", "french": "fr", "français": "fr",
           "francese": "fr", "german": "de", "deutsch": "de", "tedesco": "de", "spanish": "es", "español": "es",
           "spagnolo": "es"}


@dataclass(frozen=True)
class Detection:
    """What the stop words say: the dominant language ("" when undetermined) and every language with
    a real share of the text (more than one for a mixed text)."""

    language: str
    languages: tuple[str, ...] = ()
    counts: Mapping[str, float] = field(default_factory=dict)
    declared: bool = False  # taken from the item's own language field, not detected

    @property
    def name(self) -> str:
        return NAMES.get(self.language, self.language)


def _shares() -> dict[str, tuple[tuple[str, float], ...]]:
    listed: dict[str, list[str]] = {}
    for code, words in STOP_WORDS.items():
        for word in words:
            listed.setdefault(word, []).append(code)
    return {word: tuple((code, 1 / len(codes)) for code in codes) for word, codes in listed.items()}


SHARES = _shares()


def detect(text: str) -> Detection:
    scores = dict.fromkeys(STOP_WORDS, 0.0)
    own = dict.fromkeys(STOP_WORDS, 0)  # words no other language lists
    for word in WORD.findall((text or "").lower()):
        shares = SHARES.get(word, ())
        for code, share in shares:
            scores[code] += share
        if len(shares) == 1:
            own[shares[0][0]] += 1
    scores = {code: round(n, 2) for code, n in scores.items()}
    ranked = sorted(((n, code) for code, n in scores.items() if n >= MIN_WORDS), reverse=True)
    if not ranked:
        return Detection("", (), scores)
    top = ranked[0][0]
    if len(ranked) > 1 and ranked[1][0] == top:
        leader = ""  # a tie: the words do not say which
    else:
        leader = ranked[0][1]
    # A second language makes the text mixed when its own words, not ones it shares with the first
    # ("la", "con"), are a real part of the text.
    mixed = tuple(code for n, code in ranked
                  if code != leader and n >= MIXED_SHARE * top and own[code] >= MIN_WORDS)
    return Detection(leader, ((leader,) if leader else ()) + mixed, scores)


def normalise(value: Any) -> str:
    """An item's own language field as a code: "it", "it-IT", "Italiano" → "it"; "" when unknown."""
    if not isinstance(value, str):
        return ""
    value = value.strip().lower()
    code = ALIASES.get(value, value.replace("_", "-").split("-")[0])
    return code if code in NAMES else ""


def language_of(item: Mapping[str, Any], text: str) -> Detection:
    """The item's declared language (a `language` or `lang` field a source or a person set) wins over
    the text's stop words: the source knows, the count guesses."""
    for key in ("language", "lang"):
        code = normalise(item.get(key))
        if code:
            return Detection(code, (code,), {}, declared=True)
    return detect(text)
