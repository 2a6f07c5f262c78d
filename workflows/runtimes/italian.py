"""Italian person names and street addresses, found with gazetteers and patterns.

Rampart, the extraction model, learnt English: on Italian tickets it keeps "Luca" of "Luca Esposito"
and loses most of "Via Giuseppe Garibaldi 24/B, 80134 Napoli (NA)". This module finds them without a
model, and `extract.Extractor` merges its spans with Rampart's (kinds "person" and "address").

Names: a capitalised known first name, then more first names, surname particles (De, Di, La, …) and a
surname ("Luca Esposito", "Maria Grazia De Luca"); a known surname before a first name ("Esposito
Luca"); any capitalised words after a title or a label ("Dott.ssa Bianchi", "Intestatario: …"). A first
name alone counts too, unless it is also an everyday word ("Durante", "Mia", "Sabato"): then only after
a greeting or a title. Addresses: a street type (via, viale, piazza, corso, …), a capitalised name and a
civic number ("12", "12/A", "n. 12", "12 bis"), then any CAP + comune + (provincia); a CAP followed by a
known comune alone; a known comune followed by its own province code ("Sesto San Giovanni (MI)").

Gazetteers come from two PyPI packages, read as data files and never imported (their code and
dependencies stay out of the worker), each file checked against its sha256 when first loaded:
- python-codicefiscale 0.12.1 (MIT): 1,248 Italian first names; the comuni with province codes (ANPR).
- Faker 40.54.0 (MIT): it_IT first names, surnames and common words; CAPs with their localities and
  provinces (converted by Faker from GeoNames, CC BY 4.0).
Every scan is linear in the text: regexes with bounded repetition and a bounded look-ahead per token.
"""

from __future__ import annotations

import ast
import bisect
import functools
import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .corpus import package_dir
from .patterns import Span

SOURCE = "gazetteer"


class GazetteerError(RuntimeError):
    pass


@dataclass(frozen=True)
class _File:
    requirement: str  # the pinned requirement that installs it, for the error message
    package: str  # import name: the directory is found without importing (and running) it
    path: str
    sha256: str


_CODICEFISCALE = "python-codicefiscale==0.12.1"
_FAKER = "faker==40.54.0"
FILES = {
    "names": _File(
        _CODICEFISCALE,
        "codicefiscale",
        "data/names.json",
        "8ca35a8754c752354277cd7d269e01f940f712a1abd4b622eadcb9b2b0a4b458",
    ),
    "municipalities": _File(
        _CODICEFISCALE,
        "codicefiscale",
        "data/municipalities.json",
        "7964996948fdb9cf21cf29377c93fb2f08b00700caa5ee5281e7932f6744a617",
    ),
    "person": _File(
        _FAKER,
        "faker",
        "providers/person/it_IT/__init__.py",
        "ad7684dc9255ba5de7549158eafb22cb2f19029584d4bd6c2b7e89e7726a0717",
    ),
    "address": _File(
        _FAKER,
        "faker",
        "providers/address/it_IT/__init__.py",
        "e413dd2fdfff6d476b12140e1ed744bdc39830f0c143bb021581858060b00c6d",
    ),
    "words": _File(
        _FAKER,
        "faker",
        "providers/lorem/it_IT/__init__.py",
        "0588f1a252d2f87790b7b2f552caef8a83fbbaaac6016109f61faec3ac92395b",
    ),
}


def _read(name: str) -> str:
    spec = FILES[name]
    try:
        path = package_dir(spec.package) / spec.path
        data = Path(path).read_bytes()
    except (FileNotFoundError, OSError) as exc:
        raise GazetteerError(f"the Italian gazetteers need {spec.requirement} installed ({exc})") from exc
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise GazetteerError(
            f"{spec.package}/{spec.path} has sha256 {digest}, not the {spec.sha256} of "
            f"{spec.requirement}: install exactly that version"
        )
    return data.decode("utf-8")


def _literals(source: str, names: set[str]) -> dict[str, Any]:
    """Class- or module-level constants of a Python file, read without executing it."""
    found: dict[str, Any] = {}
    for node in ast.parse(source).body:
        for statement in node.body if isinstance(node, ast.ClassDef) else [node]:
            if isinstance(statement, ast.Assign | ast.AnnAssign) and statement.value is not None:
                target = statement.targets[0] if isinstance(statement, ast.Assign) else statement.target
                if isinstance(target, ast.Name) and target.id in names:
                    found[target.id] = ast.literal_eval(statement.value)
    missing = names - set(found)
    if missing:
        raise GazetteerError(f"the gazetteer file lacks {sorted(missing)}")
    return found


def _cap_places(source: str) -> list[tuple[str, str, str]]:
    """(CAP, locality, province) from Faker's `cap_city_province` dict literal. Read with a regex: its
    4,682 entries cost ast 0.25 s, this 0.02 s, and the file's sha256 is checked, so its shape is known."""
    start = source.index("cap_city_province = {")
    body = source[start : source.index("\n    }\n", start)]
    found: list[tuple[str, str, str]] = []
    cap = ""
    for m in re.finditer(r'"(\d{5})":|\["([^"\\]*)", "([A-Z]{2})"\]', body):
        if m.group(1):
            cap = m.group(1)
        else:
            found.append((cap, m.group(2), m.group(3)))
    if len(found) < 4000:
        raise GazetteerError("Faker's it_IT cap_city_province did not read as expected")
    return found


def fold(word: str) -> str:
    """Lower case without accents, one apostrophe: "Nicolò" and "NICOLO" meet as "nicolo"."""
    if word.isascii():
        return word.lower()
    word = word.replace("’", "'")
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c)).casefold()


# A word, with inner apostrophes and hyphens (D'Angelo, Sant'Angelo, Brovello-Carpugnino) and a final
# apostrophe standing for an accent (Nardo', Mondovi': GeoNames and keyboards without à è ì ò ù).
WORD = re.compile(r"[^\W\d_]+(?:['’\-][^\W\d_]+)*(?:['’](?![^\W\d_]))?")


def _fold_word(word: str) -> str:
    return fold(word).rstrip("'")


def _key(name: str) -> str:
    return " ".join(_fold_word(m.group()) for m in WORD.finditer(name))


# First names that are also everyday words (or weekdays, months, places): alone, they are a name only
# after a greeting or a title. Faker's list of common Italian words adds to these.
EVERYDAY = frozenset(
    """
    alba amico angelica aria assunta aurora benedetta benvenuta benvenuto bianca bruna castro celeste
    colombo concetta consolata costante costanza crystal desiderio diamante diva divina domenica donna
    donato durante eden fedele felice fermo fiamma fortunata fortunato franca gemma gian giusto grazia
    greca greco innocenza italia libera liberata libero lieto luna marina massimo mercedes mia mira
    modesto nada norma norvegia novella novello pace pacifico pasqua pier placido primo prospero prudenza
    quarto queen quinto regina rosa sabato salvo salve santa santo seconda secondo serena sereno sesto
    sole stella tea ultimo venere ventura vera vico viola vita vittoria july amber
""".split()
)
# Never a surname slot, whatever the capital letter: greetings, function words, labels.
NOT_NAMES = frozenset(
    """
    a ad ai al alla alle allegato allegati anche ancora avv buonasera buongiorno c cara cari caro cc cell
    cf che chi ci ciao ciò come con cordiali cosa da dal dalla dei del della dell dello dear di distinti
    dott dove e ed egregio email fattura fax fw fwd gentile gentili gli grazie hi ho i il in ing io iva la
    le lei li lo loro lui ma mail me mi ne nel nella no noi non nr numero o oggetto ok ordine p pec per
    perché perche piva più ps qui re s saluti se si sig signor signora sono spa spett srl su sua sue sul
    sulla suo suoi tel telefono ti tra tu tua tuo un una uno vi voi
    gennaio febbraio marzo aprile maggio giugno luglio agosto settembre ottobre novembre dicembre
    lunedi martedi mercoledi giovedi venerdi
""".split()
)
PARTICLES = frozenset("de di del della dello dei degli delle da dal dalla la lo li le".split())


@dataclass(frozen=True)
class Gazetteers:
    first_names: frozenset[str]
    surnames: frozenset[str]
    everyday: frozenset[str]  # first names that need a greeting or a title when alone
    words: frozenset[str]  # common Italian words (Faker's list): a town of that name needs a CAP or province
    comuni: dict[str, frozenset[str]]  # folded name → its province codes
    provinces: frozenset[str]
    caps: dict[str, frozenset[str]]  # CAP → province codes of its localities
    longest_comune: int  # in words


@functools.cache
def gazetteers() -> Gazetteers:
    """Loaded once per process, on first use (0.2 to 0.5 s on this machine)."""
    names = json.loads(_read("names"))
    person = _literals(_read("person"), {"first_names_male", "first_names_female", "last_names"})
    first = {fold(n) for group in names.values() for n in group}
    first |= {fold(n) for n in (*person["first_names_male"], *person["first_names_female"])}
    words = {fold(w) for w in _literals(_read("words"), {"word_list"})["word_list"]}
    comuni: dict[str, set[str]] = {}
    for town in json.loads(_read("municipalities")):
        if town["active"]:
            for name in {town["name"], town["name_alt"], town["name_trans"]} - {""}:
                comuni.setdefault(_key(name), set()).add(town["province"])
    caps: dict[str, set[str]] = {}
    for cap, place, province in _cap_places(_read("address")):
        caps.setdefault(cap, set()).add(province)
        comuni.setdefault(_key(place), set()).add(province)  # localities (frazioni) as well
    comuni.pop("", None)
    return Gazetteers(
        first_names=frozenset(first - NOT_NAMES),
        surnames=frozenset(fold(n) for n in person["last_names"]) - NOT_NAMES,
        everyday=frozenset((first & words) | EVERYDAY),
        words=frozenset(words | NOT_NAMES | EVERYDAY),
        comuni={k: frozenset(v) for k, v in comuni.items()},
        provinces=frozenset(p for v in comuni.values() for p in v),
        caps={k: frozenset(v) for k, v in caps.items()},
        longest_comune=max(len(k.split()) for k in comuni),
    )


# --- tokens --------------------------------------------------------------------------------------


@dataclass
class _Token:
    start: int
    end: int
    text: str
    folded: str

    @property
    def cap(self) -> bool:
        return self.text[0].isupper()


class _Text:
    """The text's words with offsets, and the small questions the finders ask about them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = [_Token(m.start(), m.end(), m.group(), _fold_word(m.group())) for m in WORD.finditer(text)]
        self.starts = [t.start for t in self.tokens]

    def index_at(self, offset: int) -> int:
        """First token starting at or after `offset`."""
        return bisect.bisect_left(self.starts, offset)

    def joined(self, a: int, b: int) -> bool:
        """Tokens a and b are neighbours in one name: one or two spaces between them, nothing else."""
        gap = self.text[self.tokens[a].end : self.tokens[b].start]
        return 0 < len(gap) <= 2 and not gap.strip(" \u00a0")

    def comune_at(self, index: int, gaz: Gazetteers) -> tuple[int, frozenset[str]] | None:
        """(end token index, provinces) of the longest comune starting at token `index`."""
        best = None
        words: list[str] = []
        for k in range(index, min(index + gaz.longest_comune, len(self.tokens))):
            if k > index and not self.joined(k - 1, k):
                break
            if k == index and not self.tokens[k].cap:
                return None
            words.append(self.tokens[k].folded)
            provinces = gaz.comuni.get(" ".join(words))
            if provinces:
                best = (k, provinces)
        return best


# --- persons -------------------------------------------------------------------------------------

# Titles and labels after which capitalised words are a name even when no word is a known first name.
TITLE = re.compile(
    r"(?<![\w.])(?:"
    r"(?i:sig(?:\.ra|\.na|\.|nor|nora|norina)|sigg\.|dott(?:\.ssa|\.|or|oressa)|dr\.|prof(?:\.ssa|\.|essor|essoressa)"
    r"|avv\.|avvocato|ing\.|ingegner|geom\.|rag\.|arch\.|egr\.|gent\.(?:mo|ma)|gentil(?:e|issimo|issima)"
    r"|egregi[oa]|car[oa]|ciao|salve|grazie|buongiorno|buonasera|sono|mi chiamo)"
    r"|(?i:nome e cognome|cognome e nome|nominativo|intestatari[oa](?: del conto)?|titolare|referente"
    r"|sottoscritt[oa]|richiedente|beneficiario|destinatario|mittente|firmato|firma)\s*:?"
    r")\s+(?=[A-ZÀ-ÖØ-Þ])"
)
# Titles proper: what follows them is a name whatever its words (greetings need a known first name).
STRONG_TITLE = re.compile(
    r"(?i:sig|sigg|dott|dr|prof|avv|avvocato|ing|ingegner|geom|rag|arch|egr|gent\.|nom|cogn"
    r"|intestat|titolare|referente|sottoscritt|richiedente|benefic|destinat|mittente|firma)"
)
# After a "name", these make it a firm's: "Mario Rossi S.p.A.", "Bianchi Impianti".
COMPANY = re.compile(
    r"\s*,?\s*(?:(?i:s\.?r\.?l|s\.?p\.?a|s\.?n\.?c|s\.?a\.?s|s\.?s|& ?c|e figli)\.?"
    r"|Group|Holding|Studio|Servizi|Impianti|Costruzioni|Consulting)(?!\w)"
)
# Before a first name, these make it a saint or a place: "San Giovanni", "Santa Maria Novella".
SAINTS = frozenset("san santa santo sant s ss beato beata".split())


def find_persons(text: str, words: _Text | None = None) -> list[Span]:
    gaz = gazetteers()
    words = words or _Text(text)
    titled: dict[int, bool] = {}  # token index after a title or a label → is it a strong one
    for m in TITLE.finditer(text):
        titled[words.index_at(m.end())] = bool(STRONG_TITLE.match(m.group()))
    spans: list[Span] = []
    done = 0  # tokens before this index belong to a found name
    i = 0
    while i < len(words.tokens):
        found = _person_at(words, i, done, titled, gaz)
        if found is None:
            i += 1
            continue
        first, last, confidence = found
        start, end = words.tokens[first].start, words.tokens[last].end
        place = last > first and " ".join(t.folded for t in words.tokens[first : last + 1]) in gaz.comuni
        if not COMPANY.match(text, end) and not (place and first not in titled):
            spans.append(Span("person", start, end, text[start:end], confidence, source=SOURCE))
        done = i = last + 1
    return spans


def _person_at(
    words: _Text, i: int, done: int, titled: dict[int, bool], gaz: Gazetteers
) -> tuple[int, int, float] | None:
    """(first token, last token, confidence) of a name starting at token i, or None."""
    tokens = words.tokens
    token = tokens[i]
    strong = titled.get(i, False)
    if not token.cap or len(token.text) < 2 or (token.folded in NOT_NAMES and not strong):
        return None
    if i > 0 and tokens[i - 1].folded in SAINTS and tokens[i - 1].cap and words.joined(i - 1, i) and not strong:
        return None
    j = i  # the given names: up to three known first names in a row
    while (
        j < len(tokens)
        and j - i < 3
        and tokens[j].cap
        and tokens[j].folded in gaz.first_names
        and (j == i or words.joined(j - 1, j))
    ):
        j += 1
    given = j - i
    if given == 0:
        if strong:  # "Dott.ssa Bianchi", "Intestatario: Kevin O'Brien"
            last = _surname_end(words, i, gaz, any_words=True)
            return (i, last, 0.85) if last >= i else None
        if i in titled and i + 1 < len(tokens) and words.joined(i, i + 1) and tokens[i + 1].folded in gaz.surnames:
            return i, _surname_end(words, i + 1, gaz, any_words=False), 0.8  # "sono Kevin Moretti"
        return None
    last = j - 1
    if j < len(tokens) and words.joined(j - 1, j):
        last = _surname_end(words, j, gaz, any_words=strong)
    if last >= j:  # a surname follows the given names
        return _with_surname_before(words, i, done, gaz), last, (0.85 if strong else 0.9)
    if given >= 2 and tokens[i].folded not in gaz.everyday:
        return i, j - 1, 0.8  # "Maria Grazia", "Paolo Amato": the last given name may be the surname
    before = _with_surname_before(words, i, done, gaz)
    if before < i:
        return before, j - 1, 0.8  # "Esposito Luca"
    if i in titled or (given == 1 and token.folded not in gaz.everyday):
        return i, i, 0.8 if i in titled else 0.65
    return None


def _surname_end(words: _Text, start: int, gaz: Gazetteers, any_words: bool) -> int:
    """Index of the last surname token from token `start` on (`start - 1` when there is none).

    Particles ("De", "Di", "La") join only when a capitalised word follows them; a second surname
    joins only when the gazetteer knows it ("Esposito Russo"); after a title, up to three words."""
    tokens = words.tokens
    last = start - 1
    taken = 0
    while taken < (3 if any_words else 2):
        k = last + 1
        if k >= len(tokens) or (taken and not words.joined(last, k)) or not tokens[k].cap:
            break
        m = k
        while (
            m < len(tokens) - 1
            and m - k < 2
            and tokens[m].folded in PARTICLES
            and words.joined(m, m + 1)
            and tokens[m + 1].cap
        ):
            m += 1
        word = tokens[m]
        if len(word.text) < 2 or word.folded in NOT_NAMES or word.folded in STREET_WORDS:
            break
        if taken and not any_words and word.folded not in gaz.surnames:
            break
        last = m
        taken += 1
    return last


def _with_surname_before(words: _Text, i: int, done: int, gaz: Gazetteers) -> int:
    """Start index of a known surname (with its particles) just before token i, else i."""
    tokens = words.tokens
    k = i - 1
    if k < done or not words.joined(k, i) or not tokens[k].cap:
        return i
    word = tokens[k]
    shouting = word.text.isupper() and tokens[i].text.isupper() and len(word.text) > 2
    if word.folded in NOT_NAMES or word.folded in STREET_WORDS or not (word.folded in gaz.surnames or shouting):
        return i
    while k - 1 >= done and words.joined(k - 1, k) and tokens[k - 1].cap and tokens[k - 1].folded in PARTICLES:
        k -= 1
    return k


# --- addresses -----------------------------------------------------------------------------------

_UP = "A-ZÀ-ÖØ-Þ"
STREET_TYPES = (
    r"via|viale|v\.le|piazza|p\.zza|p\.za|piazzale|p\.le|piazzetta|largo|corso|c\.so|vicolo|vico|strada statale"
    r"|strada provinciale|strada comunale|strada vicinale|strada|str\.|contrada|c\.da|localit[àa]|loc\.|frazione"
    r"|fraz\.|borgo|lungomare|lungotevere|lungarno|lungolago|salita|discesa|traversa|rione|calle|campo|galleria"
    r"|circonvallazione|passeggiata|rampa|stradone|vialetto|via privata|sestiere|fondamenta"
)
STREET_WORDS = frozenset(fold(w) for w in re.sub(r"\\.|\[[^]]*\]|\|", " ", STREET_TYPES).split() if len(w) > 3)
# Street types that are everyday words too ("corso di formazione", "largo consumo", "campo obbligatorio"):
# these need more than a capitalised word and a number.
WEAK_TYPES = frozenset(
    "corso c.so largo borgo galleria campo calle rione salita discesa rampa strada str. "
    "traversa vico passeggiata".split()
)
_MONTHS = "gennaio|febbraio|marzo|aprile|maggio|giugno|luglio|agosto|settembre|ottobre|novembre|dicembre"
_LINK = (
    r"(?:(?:di|del|dei|degli|della|delle|dello|da|dal|dalla|dai|dalle|e|ed|in|a|al|alla|allo|ai|alle|sul|sulla"
    r"|san|santa|santo|per|tra|fra|sotto|sopra|fuori|dietro|lungo|de|la|le|lo)\s+"
    r"|(?:d|l|dell|dall|all|sull|nell|sant|de)['’])"
)
_NAME_WORD = (
    rf"(?:(?:S|SS|Gen|Card|Mons|Prof|Dott|Ing|Avv|Cav|Fra|F\.lli|Don|Beato|Beata)\.?(?=\s)|[{_UP}]\.(?=\s)"
    rf"|[{_UP}][^\W_]*(?:['’\-][^\W\d_]+)*|\d{{1,2}}(?:°|º)?(?=\s+(?i:{_MONTHS})\b))"
)
STREET = re.compile(
    rf"(?<![\w.])(?P<type>(?i:{STREET_TYPES}))\s+"
    rf"(?P<name>{_LINK}{{0,3}}{_NAME_WORD}(?:\s+{_LINK}{{0,3}}{_NAME_WORD}){{0,6}})"
    r"\s*,?\s*(?P<number>(?i:n\.?\s*|n°\s*|nr\.?\s*|num\.?\s*|civico\s+|civ\.\s*)?"
    r"(?:\d{1,4}(?:\s?/\s?[A-Za-z0-9]{1,3}(?![\w/])|\s?-\s?\d{1,4}(?!\d)|\s?(?i:bis|ter|quater)\b|[A-Za-z](?!\w))?"
    r"|(?i:snc)\b))(?![\w/]|[.,]\d)"
)
SECONDARY = re.compile(
    r"(?:\s*,?\s*(?i:scala|sc\.|interno|int\.|piano|p\.|edificio|ed\.|palazzina|pal\.|lotto)"
    r"\s*[A-Za-z0-9]{1,3}\b){1,3}"
)
# After a civic number these say it was a quantity: "Corso Excel 2 ore", "Via Zoom 3 volte".
UNITS = frozenset(
    "ore ora giorni giorno mesi mese anni anno settimane minuti volte pezzi pz euro eur kg km m cm mm "
    "gb mb persone posti crediti cfu livelli livello moduli lezioni edizioni partecipanti %".split()
)
# Words before a weak street type that say an address comes: "residente in Corso …", "Indirizzo: Largo …".
ADDRESS_CONTEXT = frozenset(
    "in a presso sito sita situato situata residente domiciliato domiciliata abito abita "
    "abitiamo sede indirizzo consegna spedizione spedire recapito ubicato ubicata c/o".split()
)
CAP = re.compile(r"(?<![\w.,/])(\d{5})\s+(?=[A-Za-zÀ-ÿ])")
PROVINCE_CODE = re.compile(r"\(\s*([A-Z]{2})\s*\)")
PROVINCE = re.compile(r"\s*(?:\(\s*([A-Z]{2})\s*\)|[-–]\s*([A-Z]{2})\b|([A-Z]{2})\b)")


def find_addresses(text: str, words: _Text | None = None) -> list[Span]:
    gaz = gazetteers()
    words = words or _Text(text)
    spans: list[Span] = []
    taken = bytearray(len(text))  # characters inside an address found so far: one check per match
    covered = 0
    for m in STREET.finditer(text):
        if m.start() < covered or not _plausible_street(text, m, words, gaz):
            continue
        end = m.end()
        if second := SECONDARY.match(text, end):
            end = second.end()
        tail = _town_after(text, end, words, gaz, need_cap=False)
        end = tail[0] if tail else end
        spans.append(Span("address", m.start(), end, text[m.start() : end], 0.95 if tail else 0.85, source=SOURCE))
        taken[m.start() : end] = b"\x01" * (end - m.start())
        covered = end
    for m in CAP.finditer(text):
        if taken[m.start()]:
            continue
        town = _town_after(text, m.start(), words, gaz, need_cap=True)
        if town:
            end, confidence = town
            spans.append(Span("address", m.start(), end, text[m.start() : end], confidence, source=SOURCE))
            taken[m.start() : end] = b"\x01" * (end - m.start())
    for m in PROVINCE_CODE.finditer(text):
        if m.group(1) not in gaz.provinces or taken[m.start()]:
            continue
        start = _comune_before(words, m.start(), m.group(1), gaz)
        if start is not None and taken.find(1, start, m.end()) == -1:
            spans.append(Span("address", start, m.end(), text[start : m.end()], 0.75, source=SOURCE))
    return sorted(spans, key=lambda s: s.start)


def _plausible_street(text: str, m: re.Match[str], words: _Text, gaz: Gazetteers) -> bool:
    after = WORD.match(text, m.end() + 1) if m.end() < len(text) and text[m.end()] == " " else None
    if (after and fold(after.group()) in UNITS) or text[m.end() : m.end() + 2].strip().startswith("%"):
        return False
    kind = fold(m.group("type"))
    if kind not in WEAK_TYPES:
        return True
    if _town_after(text, m.end(), words, gaz, need_cap=False):
        return True
    name_words = [_fold_word(w) for w in WORD.findall(m.group("name"))]
    if any(w in gaz.first_names or w in gaz.surnames or w in gaz.comuni for w in name_words if len(w) > 2):
        return True
    if re.match(_LINK, m.group("name")):  # "Corso dell'Indipendenza 17", "Largo dei Mille 3"
        return True
    before = words.index_at(m.start()) - 1
    if before >= 0 and words.tokens[before].folded in ADDRESS_CONTEXT:
        return True
    return text[: m.start()].rstrip(" \t").endswith((":", "\n")) or not text[: m.start()].strip()


def _town_after(text: str, position: int, words: _Text, gaz: Gazetteers, need_cap: bool) -> tuple[int, float] | None:
    """(end, confidence) of "[,] 20121 Milano [(MI)]" or ", Milano (MI)" at `position`, else None."""
    m = re.compile(r"\s*[,\-–]?\s*(?:(\d{5})\s+)?").match(text, position)
    if m is None or (need_cap and not m.group(1)):
        return None
    index = words.index_at(m.end())
    if index >= len(words.tokens) or words.tokens[index].start != m.end():
        return None
    town = words.comune_at(index, gaz)
    if town is None:
        return None
    last, provinces = town
    end = words.tokens[last].end
    province = PROVINCE.match(text, end)
    code = province and (province.group(1) or province.group(2) or province.group(3))
    if code and code in provinces:
        end = province.end()
    cap = m.group(1)
    if cap:
        known = provinces & gaz.caps.get(cap, frozenset())
        return end, 0.95 if known else 0.8
    if code and code in provinces:
        return end, 0.9
    # ", Milano" alone: right after a street, or when nothing but punctuation or the end of a line follows.
    if "," not in text[position : m.end()]:
        return None
    if re.match(r"\s*(?:[.,:;!?)\n]|$)", text[end : end + 2]):
        return end, 0.85
    if not need_cap and " ".join(t.folded for t in words.tokens[index : last + 1]) not in gaz.words:
        return end, 0.8
    return None


def _comune_before(words: _Text, position: int, code: str, gaz: Gazetteers) -> int | None:
    """Start of a comune of province `code` that ends right before `position` ("Sesto San Giovanni (MI)")."""
    last = words.index_at(position) - 1
    if last < 0 or words.text[words.tokens[last].end : position].strip():
        return None
    for first in range(max(0, last - gaz.longest_comune + 1), last + 1):
        if all(words.joined(k, k + 1) for k in range(first, last)):
            key = " ".join(t.folded for t in words.tokens[first : last + 1])
            if words.tokens[first].cap and code in gaz.comuni.get(key, ()):
                return words.tokens[first].start
    return None


# --- both ----------------------------------------------------------------------------------------


def find_entities(text: str, kinds: tuple[str, ...] | list[str] = ("person", "address")) -> list[Span]:
    """Persons and addresses in text order; a "name" inside an address (Via Mario Rossi 3) is the address."""
    words = _Text(text)
    addresses = find_addresses(text, words) if "address" in kinds or "person" in kinds else []
    persons = find_persons(text, words) if "person" in kinds else []
    if persons and addresses:
        inside = bytearray(len(text))
        for a in addresses:
            inside[a.start : a.end] = b"\x01" * (a.end - a.start)
        persons = [p for p in persons if inside.find(0, p.start, p.end) != -1]
    if "address" not in kinds:
        addresses = []
    return sorted([*addresses, *persons], key=lambda s: (s.start, s.kind))
