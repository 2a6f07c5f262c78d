"""Italian person names and street addresses: found by the extractor (Rampart + gazetteers), and
redacted before any text leaves for a large model."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from bench._italian_ner import evaluate, generate
from tests.runtimes.test_patterns_adversarial import budget  # the same linear-time guard
from workflows.runtimes import italian
from workflows.runtimes.extract import Extractor
from workflows.runtimes.italian import GazetteerError, find_entities, gazetteers
from workflows.runtimes.llm import redact

ROOT = Path(__file__).resolve().parents[1]
TICKET = (
    "Buongiorno, sono Luca Esposito e scrivo per il rimborso della fattura 118. Il pacco va spedito "
    "in Via Giuseppe Garibaldi 24/B, 80134 Napoli (NA). IBAN IT60 X054 2811 1010 0000 0123 456."
)


# Ten Italian tickets written for this test (not generated): (text, names, addresses, IBANs).
TICKETS = [
    (
        "Buongiorno, sono Luca Esposito. Il rimborso della fattura 2025/118 va accreditato sull'IBAN "
        "IT60 X054 2811 1010 0000 0123 456. Il mio indirizzo è Via Toledo 256, 80134 Napoli (NA).",
        ["Luca Esposito"],
        ["Via Toledo 256, 80134 Napoli (NA)"],
        ["IT60 X054 2811 1010 0000 0123 456"],
    ),
    (
        "Salve, scrivo per conto di mia madre, la Sig.ra Giovanna Ferraro, residente in Corso Vittorio Emanuele II "
        "n. 45, 10121 Torino. La bolletta di marzo è stata addebitata due volte.",
        ["Giovanna Ferraro"],
        ["Corso Vittorio Emanuele II n. 45, 10121 Torino"],
        [],
    ),
    (
        "Gentile assistenza,\nil pacco ordinato il 3 aprile non è mai arrivato. Indirizzo di consegna: "
        "Piazza Duomo 3/B, 20122 Milano MI.\nCordiali saluti,\nFrancesca Colombo",
        ["Francesca Colombo"],
        ["Piazza Duomo 3/B, 20122 Milano MI"],
        [],
    ),
    (
        "Il tecnico non si è presentato all'appuntamento in via dei Mille 12, Bologna. Chiedo di essere richiamato. "
        "Marco De Santis",
        ["Marco De Santis"],
        ["via dei Mille 12, Bologna"],
        [],
    ),
    (
        "Richiesta di cambio intestatario: da ROSSI GIUSEPPE a Bianchi Alessandra, stesso indirizzo (Viale Europa 7, "
        "00144 Roma). IBAN per l'addebito: IT80 L030 6909 6061 0000 0063 713.",
        ["ROSSI GIUSEPPE", "Bianchi Alessandra"],
        ["Viale Europa 7, 00144 Roma"],
        ["IT80 L030 6909 6061 0000 0063 713"],
    ),
    (
        "Ciao Sara, come da telefonata ti confermo il nuovo indirizzo della sede: Largo Augusto 1, 20122 Milano. "
        "Grazie, Paolo",
        ["Sara", "Paolo"],
        ["Largo Augusto 1, 20122 Milano"],
        [],
    ),
    (
        "Sono l'avvocato dello Studio Legale Greco. Il mio assistito, Dott. Antonio Russo, contesta la fattura "
        "n. 5521. Recapito: Via Etnea 120, 95131 Catania (CT).",
        ["Antonio Russo"],
        ["Via Etnea 120, 95131 Catania (CT)"],
        [],
    ),
    (
        "Vorrei sapere perché il bonifico di € 540,00 dall'IBAN IT60 X054 2811 1010 0000 0123 456 risulta respinto. "
        "Titolare del conto: Chiara D'Amico.",
        ["Chiara D'Amico"],
        [],
        ["IT60 X054 2811 1010 0000 0123 456"],
    ),
    (
        "Il contatore si trova in Contrada San Leonardo 14, 90040 Cinisi (PA). Referente in loco: Salvatore La Rosa, "
        "tel. 333 123 4567.",
        ["Salvatore La Rosa"],
        ["Contrada San Leonardo 14, 90040 Cinisi (PA)"],
        [],
    ),
    (
        "Buonasera, mi chiamo Elena Marchetti e abito in Borgo Pinti 80, 50121 Firenze. Da tre giorni internet non "
        "funziona. Potete mandare qualcuno?",
        ["Elena Marchetti"],
        ["Borgo Pinti 80, 50121 Firenze"],
        [],
    ),
]


@pytest.fixture(scope="module")
def rampart() -> dict:
    from workflows.runtimes.build import package_rampart

    out = Path(os.environ.get("CF_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")
    return package_rampart(out, log=lambda message: None)


@pytest.fixture(scope="module")
def redactor(rampart) -> Extractor:
    # What the large-model and webhook nodes build for redaction (engine/nodes/llm.py, webhook.py).
    return Extractor(rampart, patterns=[], entities=["person", "address"])


def values(out: dict, kind: str) -> list[str]:
    return [f["value"] for f in out["fields"][kind]]


def found(text: str) -> list[tuple[str, str]]:
    return [(s.kind, s.value) for s in find_entities(text)]


# --- the extractor -------------------------------------------------------------------------------


def test_extractor_finds_the_italian_name_and_address_rampart_misses(rampart):
    [out] = Extractor(rampart).run([{"text": TICKET}])
    assert "Luca Esposito" in values(out, "person")
    assert "Via Giuseppe Garibaldi 24/B, 80134 Napoli (NA)" in values(out, "address")
    assert values(out, "iban") == ["IT60 X054 2811 1010 0000 0123 456"]
    for spans in out["fields"].values():
        for span in spans:
            assert TICKET[span["start"] : span["end"]] == span["value"]


def test_what_only_the_gazetteers_find_says_so_and_what_rampart_finds_too_stays_model(rampart):
    text = (
        "Intestatario: ESPOSITO LUCA, Piazza del Popolo 3, 00187 Roma (RM). Buongiorno, sono Mario Rossi "
        "e abito in Via Giuseppe Garibaldi 24/B, 80134 Napoli (NA)."
    )
    extractor = Extractor(rampart)
    [out] = extractor.run([{"text": text}])
    [model] = extractor._model_spans([text])[0]  # what Rampart alone finds
    sources = {(kind, f["value"]): f["source"] for kind in ("person", "address") for f in out["fields"][kind]}
    assert {
        ("person", "ESPOSITO LUCA"),
        ("person", "Mario Rossi"),
        ("address", "Piazza del Popolo 3, 00187 Roma (RM)"),
        ("address", "Via Giuseppe Garibaldi 24/B, 80134 Napoli (NA)"),
    } <= set(sources)
    for (kind, value), source in sources.items():
        start = text.index(value)
        by_model = any(m.kind == kind and m.start < start + len(value) and start < m.end for m in model)
        assert source == ("model" if by_model else "gazetteer"), (value, source)
    assert "gazetteer" in sources.values()


def test_a_name_inside_an_email_is_not_a_person_but_an_address_with_phone_like_digits_is_kept(rampart):
    text = "Scrivete a Luca.Esposito@example.it oppure passate in Via Roma 123 20121 Milano."
    [out] = Extractor(rampart).run([{"text": text}])
    assert not [v for v in values(out, "person") if "Esposito" in v]
    assert "Via Roma 123 20121 Milano" in values(out, "address")


def test_entities_not_asked_for_are_not_returned(rampart):
    [out] = Extractor(rampart, entities=["address"]).run([{"text": TICKET}])
    assert "person" not in out["fields"] and values(out, "address")


def covered(spans: list[dict], text: str, value: str) -> bool:
    start = text.index(value)
    inside = {i for s in spans for i in range(s["start"], s["end"])}
    return all(i in inside or text[i].isspace() for i in range(start, start + len(value)))


@pytest.mark.parametrize("ticket", TICKETS, ids=lambda t: t[1][0])
def test_every_name_address_and_iban_of_the_italian_tickets_is_found(rampart, ticket):
    text, names, addresses, ibans = ticket
    # The Ticket triage template's extraction, with addresses asked for as well.
    extractor = Extractor(
        rampart, patterns=["email", "phone", "iban", "vat", "amount", "date"], entities=["person", "address"]
    )
    [out] = extractor.run([{"text": text}])
    for name in names:
        assert covered(out["fields"]["person"], text, name), (name, out["fields"]["person"])
    for address in addresses:
        assert covered(out["fields"]["address"], text, address), (address, out["fields"]["address"])
    assert values(out, "iban") == ibans


# --- redaction -----------------------------------------------------------------------------------


def test_an_italian_ticket_loses_its_name_address_and_iban_before_it_leaves(redactor):
    sent, kinds = redact(TICKET, redactor)
    for secret in ("Luca", "Esposito", "Garibaldi", "80134", "Napoli", "IT60", "0123 456"):
        assert secret not in sent, sent
    assert {"person", "address", "iban"} <= set(kinds)


def test_names_and_addresses_only_the_gazetteers_find_are_redacted_too(redactor):
    ticket = (
        "Intestatario: ESPOSITO LUCA, Piazza del Popolo 3, 00187 Roma (RM). Per conto della Dott.ssa "
        "Bianchi. IBAN IT60 X054 2811 1010 0000 0123 456."
    )
    sent, _ = redact(ticket, redactor)
    for secret in ("ESPOSITO", "LUCA", "Popolo", "00187", "Bianchi", "IT60"):
        assert secret not in sent, sent
    for text, names, addresses, ibans in TICKETS:
        sent, _ = redact(text, redactor)
        for value in (*names, *addresses, *ibans):
            assert value not in sent, sent


# --- the recogniser ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Buongiorno, sono Luca Esposito.", ("person", "Luca Esposito")),
        ("Esposito Luca ha chiamato ieri.", ("person", "Esposito Luca")),
        ("Gentile Dott.ssa Maria Grazia De Luca,", ("person", "Maria Grazia De Luca")),
        ("Egregio Sig. D'Angelo, le scrivo", ("person", "D'Angelo")),
        ("INTESTATARIO: ESPOSITO LUCA", ("person", "ESPOSITO LUCA")),
        ("Cordiali saluti,\nAnna Maria Ferri", ("person", "Anna Maria Ferri")),
        ("Ciao Serena, ti scrivo per l'ordine.", ("person", "Serena")),
        ("Grazie, sono Kevin Moretti", ("person", "Kevin Moretti")),
        ("Ho sentito Nicolò Bianchi stamattina.", ("person", "Nicolò Bianchi")),
        ("spedire in Via Roma 12, 20121 Milano (MI).", ("address", "Via Roma 12, 20121 Milano (MI)")),
        ("Piazza della Repubblica 1, 00185 Roma RM", ("address", "Piazza della Repubblica 1, 00185 Roma RM")),
        ("in Via XX Settembre 12", ("address", "Via XX Settembre 12")),
        ("in Viale 4 Novembre 3/A", ("address", "Viale 4 Novembre 3/A")),
        ("in via dell'Indipendenza n. 8 int. 3", ("address", "via dell'Indipendenza n. 8 int. 3")),
        ("in Via G. Verdi 5 bis", ("address", "Via G. Verdi 5 bis")),
        ("abito in corso Buenos Aires 33, Milano.", ("address", "corso Buenos Aires 33, Milano")),
        ("residente a Sesto San Giovanni (MI)", ("address", "Sesto San Giovanni (MI)")),
        ("CAP 73048 Nardo' (LE)", ("address", "73048 Nardo' (LE)")),
        (
            "Contrada Pantano 5\n95030 Gravina di Catania (CT)",
            ("address", "Contrada Pantano 5\n95030 Gravina di Catania (CT)"),
        ),
    ],
)
def test_it_finds(text, expected):
    assert expected in found(text)


@pytest.mark.parametrize(
    "text",
    [
        "Vi ho già inviato la ricevuta via email 3 volte.",
        "Salve, volevo sapere se offrite corsi di formazione per i nuovi dipendenti.",
        "Il Corso Excel 2 ore costa € 120,00.",
        "Durante la chiamata di ieri la linea è caduta.",
        "Mia figlia non riesce a scaricare la fattura.",
        "Secondo il contratto il rinnovo è automatico.",
        "Sabato mattina il negozio era chiuso.",
        "La ragione sociale è Bianchi Servizi S.r.l., P.IVA 01234567897.",
        "Il fornitore è Mario Rossi S.p.A. di Torino.",
        "Piazza Affari ha chiuso in rialzo del 3%.",
        "Fermo restando quanto concordato, vi chiedo una proroga.",
        "Il largo consumo ha registrato un calo del 2% a febbraio.",
        "Grazie Mille per la risposta.",
        "Ordine 20121 spedito ieri.",
    ],
)
def test_it_finds_nothing_in(text):
    assert found(text) == []


def test_a_name_inside_an_address_is_the_address():
    assert found("Spedire in Via Mario Rossi 3, Torino.") == [("address", "Via Mario Rossi 3, Torino")]


# --- the gazetteers ------------------------------------------------------------------------------


def test_gazetteers_hold_italian_first_names_surnames_comuni_and_caps():
    gaz = gazetteers()
    assert {"luca", "andrea", "sofia", "nicolo", "giulia"} <= gaz.first_names
    assert {"rossi", "esposito", "bianchi"} <= gaz.surnames
    assert gaz.comuni["milano"] == {"MI"} and "CT" in gaz.comuni["gravina di catania"]
    assert "NA" in gaz.caps["80134"] and len(gaz.comuni) > 7800


def test_a_gazetteer_file_that_is_not_the_pinned_one_is_refused(monkeypatch):
    monkeypatch.setitem(italian.FILES, "names", dataclasses.replace(italian.FILES["names"], sha256="0" * 64))
    with pytest.raises(GazetteerError, match=r"python-codicefiscale==0\.12\.1"):
        italian._read("names")


# --- linear time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unit",
    [
        "Via Roma ",
        "Via ",
        "Mario ",
        "Sig. ",
        "20121 ",
        "(MI) ",
        "Luca Esposito ",
        "Via dei della ",
        "De ",
        "Via Roma 1/",
        "San ",
    ],
)
def test_long_runs_of_name_and_address_pieces_stay_linear(unit):
    text = unit * (200_000 // len(unit))
    gazetteers()
    with budget(10.0):  # a linear scan of 200,000 characters takes about a second here
        spans = find_entities(text)
    for span in spans:
        assert text[span.start : span.end] == span.value


# --- the generated set ---------------------------------------------------------------------------


def test_generated_set_recall_is_at_least_09_for_names_and_for_addresses():
    examples = generate(count=120)
    assert generate(count=120)[5].text == examples[5].text  # seeded
    result = evaluate(examples)
    assert result.name_recall >= 0.9 and result.address_recall >= 0.9, result.misses[:10]


@pytest.mark.parametrize("text", [
    "L'ordine 55821 doveva arrivare il 14 marzo 2025 in Via Giuseppe Verdi 21, 80133 Napoli, ma il corriere è fermo.",
    "Sulla fattura n. 118 del 12 marzo 2025 mi avete addebitato € 1.234,56 invece di € 234,56.",
])
def test_a_bare_number_is_never_a_person_or_an_address(rampart, text):
    """The NER model sometimes tags an order or invoice number as an address: a name or an address
    has letters in it."""
    out = Extractor(rampart, patterns=[], entities=["person", "address"]).run([{"text": text}])[0]
    for kind in ("person", "address"):
        assert all(any(c.isalpha() for c in v) for v in values(out, kind)), values(out, kind)
