"""Italian name and address recall on a set this module generates, through the real extractor.

The set (seeded, so the same on every machine): ticket-like Italian sentences with a person's name,
a street address, both, or neither. Names and places come from Faker's it_IT provider (its first
names, surnames, and CAP → locality → province table, converted from GeoNames) and from the first
names of python-codicefiscale — the same packages the gazetteers read, so a first name the
gazetteers lack cannot occur here: the set measures the recogniser's handling of forms and contexts
(order, particles, titles, capitals, civic numbers, CAP and province), not the gazetteers' coverage.
Name forms: "Nome Cognome", two given names, "Cognome Nome", a title and the surname, a particle
surname ("De Luca", "D'Angelo"), CAPITALS, a first name alone after a greeting. Address forms: street
types from via to contrada, lower-case or abbreviated, names of people, dates, saints and plain words,
civic numbers 12, 12/A, 12 bis, n. 12, and no town, a town, CAP + town, CAP + town + province.

A name or an address is found when the extractor's spans of that kind cover every one of its
characters (what redaction needs). Negatives are sentences with words that look like names or street
types ("via email", "corso di formazione", "Durante la chiamata"); every span found in one is a false
positive. `name_address_recall()` returns (name recall, address recall); run this file for details:

    .venv/bin/python bench/_italian_ner.py [--artifacts DIR] [--count 300]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SEED = 2026

NAME_TEMPLATES = [
    "Buongiorno, sono {p} e vi scrivo per la fattura n. {n}.",
    "Gentile assistenza, mi chiamo {p} e non riesco ad accedere al mio account.",
    "Il cliente {p} segnala un doppio addebito sulla carta di credito.",
    "Cordiali saluti,\n{p}",
    "Per conto di {p} vi chiedo di annullare l'ordine {n}.",
    "Ho parlato ieri con {p} del vostro ufficio commerciale ma nessuno mi ha richiamato.",
    "{p} ha chiesto il rimborso del canone di marzo.",
    "Intestatario del conto: {p}",
    "Vi prego di contattare {p} al numero indicato nel modulo.",
    "La pratica è seguita da {p}, che però è in ferie fino a lunedì.",
    "Grazie per l'aiuto, {p}",
    "Oggetto: reclamo di {p} per il ritardo nella consegna",
    "Allego la delega firmata da {p}.",
    "Salve, la fattura è intestata a {p} ma l'importo è sbagliato.",
]
ADDRESS_TEMPLATES = [
    "Vi prego di spedire il pacco a {a}.",
    "Il nuovo indirizzo di fatturazione è {a}.",
    "Abito in {a} e il corriere non ha trovato il citofono.",
    "La sede legale è stata trasferita in {a}",
    "Indirizzo di consegna: {a}",
    "Il tecnico deve venire in {a}, scala B.",
    "Potete ritirare la merce presso il magazzino di {a}?",
    "Consegna prevista in {a} entro venerdì.",
    "Il contatore si trova in {a} al piano terra.",
    "Residenza: {a}",
]
GREETING_TEMPLATES = [
    "Ciao {p}, ti scrivo per l'ordine {n} che non è ancora arrivato.",
    "Gentile {p}, la ringrazio per la risposta di ieri.",
    "Buongiorno {p}, il problema con la fattura {n} persiste.",
    "Grazie {p}, ora funziona tutto.",
]
BOTH_TEMPLATES = [
    "Buongiorno, sono {p}, residente in {a}. Chiedo il rimborso dell'ordine {n}.",
    "Il cliente {p} ({a}) non ha ricevuto la merce.",
    "Spedire a: {p}, {a}",
    "Mi chiamo {p} e da marzo abito in {a}: aggiornate il mio indirizzo, grazie.",
]
NEGATIVES = [
    "Vi ho già inviato la ricevuta via email tre volte.",
    "Salve, volevo sapere se offrite corsi di formazione per i nuovi dipendenti.",
    "Il corso di formazione Excel dura 2 ore e costa € 120,00.",
    "Durante la chiamata di ieri la linea è caduta due volte.",
    "Mia figlia non riesce a scaricare la fattura dal portale.",
    "Secondo il contratto il rinnovo è automatico ogni anno.",
    "Sabato mattina il negozio era chiuso, nonostante l'orario esposto.",
    "La ragione sociale è Bianchi Servizi S.r.l., P.IVA 01234567897.",
    "Piazza Affari ha chiuso in rialzo e il titolo ha guadagnato il 3%.",
    "Grazie mille per la risposta rapida.",
    "Il pagamento via bonifico risulta ancora in lavorazione.",
    "L'applicazione si blocca quando provo a esportare il report in PDF.",
    "Vorrei passare al piano Premium: quanto costa al mese?",
    "La consegna via corriere espresso richiede 2 giorni lavorativi.",
    "Buongiorno, il modem si riavvia da solo ogni 10 minuti.",
    "Fermo restando quanto concordato, vi chiedo una proroga di 30 giorni.",
    "Il largo consumo ha registrato un calo del 2% a febbraio.",
    "Le chiedo cortesemente di richiamarmi domani mattina.",
    "Ho scritto via PEC il 3 aprile 2025 senza ricevere risposta.",
    "Il servizio clienti di Milano non risponde da giorni.",
    "Nessuno mi ha ancora comunicato il numero della pratica.",
    "Vi segnalo che il link nella mail di conferma non funziona.",
]
# First names the gazetteers do not hold (Italian residents' names from elsewhere): found only from
# context (a title, "sono", "mi chiamo") and a known surname.
FOREIGN_FIRST = [
    "Mohamed",
    "Ahmed",
    "Andrei",
    "Olena",
    "Aisha",
    "Yusuf",
    "Svetlana",
    "Xin",
    "Pierre",
    "Hans",
    "Bogdan",
    "Fatou",
    "Ionut",
    "Karim",
]
TITLES = ["Sig.", "Sig.ra", "Dott.", "Dott.ssa", "Avv.", "Ing.", "il Sig.", "la Dott.ssa", "Prof."]
PARTICLES = ["De", "Di", "Del", "Della", "La", "Lo", "Da", "D'", "Dell'"]
STREET_TYPES = [
    "Via",
    "Via",
    "Via",
    "via",
    "Viale",
    "Piazza",
    "piazza",
    "Corso",
    "Largo",
    "Vicolo",
    "Piazzale",
    "Strada",
    "Contrada",
    "V.le",
    "P.zza",
    "C.so",
]
PLAIN_STREETS = [
    "Roma",
    "dei Mille",
    "della Repubblica",
    "XX Settembre",
    "4 Novembre",
    "1° Maggio",
    "San Francesco",
    "dell'Indipendenza",
    "Vittorio Emanuele II",
    "delle Rose",
    "dei Tigli",
    "del Lavoro",
    "della Libertà",
    "Matteotti",
    "Marconi",
    "Dante",
    "Cavour",
    "Mazzini",
    "del Popolo",
    "Santa Lucia",
    "dei Caduti",
    "Aldo Moro",
    "Porta Nuova",
    "Sant'Agostino",
    "Nazionale",
    "degli Alpini",
    "G. Verdi",
]


@dataclass
class Example:
    text: str
    persons: list[tuple[int, int]] = field(default_factory=list)
    addresses: list[tuple[int, int]] = field(default_factory=list)
    form: str = ""


class _Pools:
    def __init__(self, rng: random.Random) -> None:
        from faker import Faker

        from workflows.runtimes.italian import _read

        self.rng = rng
        self.faker = Faker("it_IT")
        self.faker.seed_instance(rng.randrange(2**32))
        self.extra_first = sorted({n for group in json.loads(_read("names")).values() for n in group})

    def first(self) -> str:
        return self.faker.first_name() if self.rng.random() < 0.5 else self.rng.choice(self.extra_first)

    def surname(self) -> str:
        last = self.faker.last_name()
        if self.rng.random() < 0.12:
            particle = self.rng.choice(PARTICLES)
            if particle.endswith("'"):
                return particle + last if last[0] in "AEIOU" else f"De {last}"
            return f"{particle} {last}"
        return last

    def person(self) -> tuple[str, str, str]:
        """(text to insert, the name in it, form)."""
        r = self.rng.random()
        if r < 0.5:
            name, form = f"{self.first()} {self.surname()}", "nome cognome"
        elif r < 0.6:
            name, form = f"{self.first()} {self.first()} {self.surname()}", "two given names"
        elif r < 0.7:
            name, form = f"{self.surname()} {self.first()}", "cognome nome"
        elif r < 0.8:
            name = self.surname() if self.rng.random() < 0.7 else f"{self.first()} {self.surname()}"
            return f"{self.rng.choice(TITLES)} {name}", name, "title"
        elif r < 0.85:
            name, form = f"{self.first()} {self.surname()}".upper(), "capitals"
        elif r < 0.88:
            name, form = f"{self.first()} {self.surname()}".lower(), "lower case"
        elif r < 0.92:
            name, form = f"{self.rng.choice(FOREIGN_FIRST)} {self.faker.last_name()}", "first name not listed"
        else:
            name, form = self.first(), "greeting + first name"
        return name, name, form

    def address(self) -> tuple[str, str]:
        r = self.rng.random()
        street = (
            f"{self.faker.first_name()} {self.faker.last_name()}"
            if r < 0.3
            else self.faker.last_name()
            if r < 0.55
            else self.rng.choice(PLAIN_STREETS)
        )
        number = str(self.rng.randint(1, 250))
        shape = self.rng.random()
        if shape < 0.15:
            number += "/" + self.rng.choice("ABCD")
        elif shape < 0.22:
            number += " bis"
        elif shape < 0.32:
            number = "n. " + number
        elif shape < 0.38:
            number += self.rng.choice("ab")
        separator = ", " if self.rng.random() < 0.5 else " "
        kind = self.rng.choice(STREET_TYPES)
        line = f"{kind} {street}{separator}{number}"
        if self.rng.random() < 0.06:
            return line.lower(), "lower case street + number"
        cap, town_province = self.faker.postcode_city_province().split(", ", 1)
        town, province = town_province[:-5], town_province[-3:-1]
        tail = self.rng.random()
        if tail < 0.2:
            return line, "street + number"
        if tail < 0.3:
            return f"{line}, {town}", "+ town"
        if tail < 0.55:
            return f"{line}, {cap} {town}", "+ CAP town"
        if tail < 0.85:
            return f"{line}, {cap} {town} ({province})", "+ CAP town (PR)"
        if tail < 0.93:
            return f"{line} - {cap} {town} {province}", "+ CAP town PR"
        return f"{line}\n{cap} {town} ({province})", "+ new line CAP town (PR)"


def _fill(
    template: str, rng: random.Random, person: tuple[str, str, str] | None, address: tuple[str, str] | None
) -> Example:
    example, forms = Example(""), []
    parts = template.replace("{n}", str(rng.randint(100, 99999))).split("{")
    text = parts[0]
    for part in parts[1:]:
        slot, rest = part[0], part[2:]
        if slot == "p" and person:
            inserted, name, form = person
            start = len(text) + inserted.index(name)
            example.persons.append((start, start + len(name)))
            text += inserted
            forms.append(form)
        elif slot == "a" and address:
            value, form = address
            example.addresses.append((len(text), len(text) + len(value)))
            text += value
            forms.append(form)
        text += rest
    example.text = text
    example.form = " & ".join(forms)
    return example


def generate(count: int = 300, seed: int = SEED) -> list[Example]:
    """About `count` sentences with a name, `count` with an address, count/3 with both, and every negative."""
    rng = random.Random(seed)
    pools = _Pools(rng)
    examples: list[Example] = []
    for _ in range(count):
        person = pools.person()
        alone = person[2] == "greeting + first name"
        examples.append(_fill(rng.choice(GREETING_TEMPLATES if alone else NAME_TEMPLATES), rng, person, None))
    for _ in range(count):
        examples.append(_fill(rng.choice(ADDRESS_TEMPLATES), rng, None, pools.address()))
    for _ in range(count // 3):
        person = pools.person()
        while person[2] == "greeting + first name":
            person = pools.person()
        examples.append(_fill(rng.choice(BOTH_TEMPLATES), rng, person, pools.address()))
    examples.extend(Example(text, form="negative") for text in NEGATIVES)
    return examples


def _covered(spans: list[dict], start: int, end: int, text: str) -> bool:
    mask = [False] * (end - start)
    for span in spans:
        for i in range(max(start, span["start"]), min(end, span["end"])):
            mask[i - start] = True
    return all(m or text[start + i].isspace() for i, m in enumerate(mask))


@dataclass
class Result:
    name_recall: float
    address_recall: float
    false_positives: list[tuple[str, str]]  # (kind, value) of every span found in a negative sentence
    negatives: int
    misses: list[tuple[str, str, str]]  # (kind, expected, text)
    by_form: dict[str, tuple[int, int]]  # form → (found, total)


def _outputs(examples: list[Example], artifacts: str | os.PathLike[str] | None, reader: str) -> list[dict]:
    """The extractor's outputs ("both": what it does), or what Rampart alone or the gazetteers alone find."""
    from workflows.runtimes.build import package_rampart
    from workflows.runtimes.extract import Extractor, _merge
    from workflows.runtimes.italian import find_entities
    from workflows.runtimes.patterns import find_patterns_all

    texts = [e.text for e in examples]
    if reader == "gazetteers":
        return [
            {
                "fields": {
                    kind: [s.to_json() for s in find_entities(text) if s.kind == kind] for kind in ("person", "address")
                }
            }
            for text in texts
        ]
    out = Path(artifacts or os.environ.get("CF_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")
    extractor = Extractor(package_rampart(out, log=lambda message: None), entities=["person", "address"])
    if reader == "both":
        return extractor.run([{"text": text} for text in texts])
    model, _ = extractor._model_spans(texts)
    return [
        {"fields": _merge([], find_patterns_all(text), spans, (), ("person", "address"), extractor.threshold)}
        for text, spans in zip(texts, model, strict=True)
    ]


def evaluate(examples: list[Example], artifacts: str | os.PathLike[str] | None = None, reader: str = "both") -> Result:
    outputs = _outputs(examples, artifacts, reader)
    found = {"person": [0, 0], "address": [0, 0]}
    by_form: dict[str, list[int]] = {}
    misses: list[tuple[str, str, str]] = []
    false_positives: list[tuple[str, str]] = []
    for example, output in zip(examples, outputs, strict=True):
        fields = output["fields"]
        if example.form == "negative":
            false_positives += [(kind, s["value"]) for kind in ("person", "address") for s in fields[kind]]
            continue
        ok_all = True
        for kind, expected in (("person", example.persons), ("address", example.addresses)):
            for start, end in expected:
                ok = _covered(fields[kind], start, end, example.text)
                found[kind][0] += ok
                found[kind][1] += 1
                ok_all &= ok
                if not ok:
                    misses.append((kind, example.text[start:end], example.text))
        tally = by_form.setdefault(example.form, [0, 0])
        tally[0] += ok_all
        tally[1] += 1
    return Result(
        name_recall=found["person"][0] / max(1, found["person"][1]),
        address_recall=found["address"][0] / max(1, found["address"][1]),
        false_positives=false_positives,
        negatives=sum(1 for e in examples if e.form == "negative"),
        misses=misses,
        by_form={k: (v[0], v[1]) for k, v in sorted(by_form.items())},
    )


def name_address_recall(artifacts: str | os.PathLike[str] | None = None) -> tuple[float, float]:
    """(name recall, address recall) on the generated set, through Rampart + the gazetteers."""
    result = evaluate(generate(), artifacts)
    return result.name_recall, result.address_recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifacts", default=None)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    examples = generate(args.count, args.seed)
    for reader in ("rampart", "gazetteers"):
        alone = evaluate(examples, args.artifacts, reader)
        print(
            f"{reader} alone: name recall {alone.name_recall:.3f}, address recall {alone.address_recall:.3f}, "
            f"{len(alone.false_positives)} spans in {alone.negatives} negative sentences"
        )
    result = evaluate(examples, args.artifacts)
    for form, (ok, total) in result.by_form.items():
        print(f"  {form:<45} {ok}/{total}")
    for kind, expected, text in result.misses[:40]:
        print(f"  missed {kind}: {expected!r} in {text!r}")
    for kind, value in result.false_positives:
        print(f"  false positive {kind}: {value!r}")
    print(f"sentences={len(examples)} negatives={result.negatives} false_positives={len(result.false_positives)}")
    print(f"it_name_recall={result.name_recall:.3f} it_address_recall={result.address_recall:.3f}")


if __name__ == "__main__":
    main()
