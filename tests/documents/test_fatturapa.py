"""FatturaPA e-invoices read into items: the samples in tests/data/fatturapa/ (written by hand after the
1.2.2 schema and its public examples: an ordinary invoice, one with several lines and VAT rates, a file
of two bills with withholding tax, two doubtful ones, two invalid ones and an XML that is no invoice),
signed envelopes made here with `cryptography`, and hostile XML."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from workflows.documents.fatturapa import MAX_BYTES, FatturaPAError, is_fatturapa, read_fatturapa
from workflows.graph.text import Text
from workflows.runtimes.patterns import find_patterns

DATA = Path(__file__).resolve().parents[1] / "data" / "fatturapa"
ROSSI = "IT01234567897_00001.xml"  # ordinary, two lines, clean
VERDI = "IT04311223343_00027.xml"  # five lines at 22, 10, 4 % and one excluded (N1), a sole trader
NERI = "IT11223344554_00013.xml"  # two bills in one file, with withholding tax
GIALLI = "IT07654321095_00088.xml"  # total ≠ taxable + VAT, no due date, bad IBAN
BLU = "IT11223344550_00005.xml"  # the supplier's partita IVA fails its check digit


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def read(name: str) -> list[dict]:
    return read_fatturapa(sample(name), name)


def refused(data: bytes, name: str) -> FatturaPAError:
    with pytest.raises(FatturaPAError) as caught:
        read_fatturapa(data, name)
    return caught.value


def signed(content: bytes, key_type: str = "rsa", detached: bool = False) -> bytes:
    """A CAdES-like envelope (CMS SignedData, the content inside, signed attributes) from a self-signed
    certificate, as a qualified signature would carry its own."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048) if key_type == "rsa" \
        else ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Mario Rossi"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, "TINIT-RSSMRA80A01H501U")])
    now = dt.datetime.now(dt.UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                   .not_valid_after(now + dt.timedelta(days=365)).sign(key, hashes.SHA256()))
    options = [pkcs7.PKCS7Options.Binary] + ([pkcs7.PKCS7Options.DetachedSignature] if detached else [])
    return (pkcs7.PKCS7SignatureBuilder().set_data(content).add_signer(certificate, key, hashes.SHA256())
            .sign(serialization.Encoding.DER, options))


# --- the fields of real invoices ----------------------------------------------------------------------


def test_an_ordinary_invoice_gives_its_fields():
    [item] = read(ROSSI)
    assert {k: v for k, v in item.items() if k not in ("text", "lines", "vat_summary")} == {
        "file_name": ROSSI, "invoice_index": 1, "invoices_in_file": 1, "format": "FPR12",
        "document_type": "TD01", "document_kind": "fattura",
        "supplier": "Officine Meccaniche Rossi S.r.l.", "supplier_vat_id": "IT01234567897",
        "supplier_tax_code": "01234567897",
        "customer": "Bianchi Servizi S.r.l.", "customer_vat_id": "IT02987654320", "customer_tax_code": "",
        "number": "FT-2025/0042", "date": "2025-01-31", "currency": "EUR",
        "description": "Intervento di manutenzione programmata dell'impianto di climatizzazione", "attachments": [],
        "taxable_amount": 437.0, "vat_amount": 96.14, "total_amount": 533.14, "withholding_amount": 0.0,
        "amount_due": 533.14, "payment_method": "MP05", "iban": "IT60X0542811101000000123456",
        "due_date": "2025-02-28", "signed": False, "signature_verified": None, "signer": "",
        "check": "ok", "problem_codes": [], "problems": [],
    }
    assert item["lines"] == [
        {"number": 1, "description": "Manutenzione ordinaria impianto di climatizzazione, sede di Milano - gennaio "
         "2025", "quantity": 8.0, "unit": "ORE", "unit_price": 45.0, "vat_rate": 22.0, "vat_nature": "",
         "amount": 360.0},
        {"number": 2, "description": "Filtro antipolvere F7 per unità di trattamento aria", "quantity": 2.0,
         "unit": "NR", "unit_price": 38.5, "vat_rate": 22.0, "vat_nature": "", "amount": 77.0},
    ]
    assert item["vat_summary"] == [{"vat_rate": 22.0, "vat_nature": "", "taxable": 437.0, "vat": 96.14}]
    json.dumps(item)  # an item is JSON as it is


def test_the_text_is_an_italian_summary_that_the_extractor_reads_back():
    [item] = read(ROSSI)
    text = item["text"]
    assert text.splitlines()[0] == "Fattura n. FT-2025/0042 del 31/01/2025 (TD01, FPR12)"
    for part in ("Fornitore: Officine Meccaniche Rossi S.r.l., P.IVA IT01234567897",
                 "Cliente: Bianchi Servizi S.r.l.", "8 ORE × 45,00 € = 360,00 € (IVA 22%)",
                 "Imponibile 437,00 €, IVA 96,14 €, totale documento 533,14 €",
                 "Pagamento: bonifico, scadenza 28/02/2025, 533,14 €, IBAN IT60X0542811101000000123456"):
        assert part in text, part
    assert "Da verificare" not in text
    found = {(s.kind, str(s.normalized)) for s in find_patterns(text, ["vat", "iban"])}
    assert {("vat", "IT01234567897"), ("vat", "IT02987654320"), ("iban", "IT60X0542811101000000123456")} <= found


def test_several_lines_and_vat_rates_with_an_excluded_line():
    [item] = read(VERDI)
    assert item["supplier"] == "Laura Bianchi" and item["supplier_tax_code"] == "BNCLRA85M41F205C"
    assert [(line["vat_rate"], line["vat_nature"], line["amount"]) for line in item["lines"]] == [
        (22.0, "", 225.0), (22.0, "", 129.8), (4.0, "", 84.0), (10.0, "", 21.6), (0.0, "N1", 12.0)]
    assert item["lines"][4]["quantity"] is None and item["lines"][4]["unit"] == ""
    assert {(r["vat_rate"], r["vat_nature"]): (r["taxable"], r["vat"]) for r in item["vat_summary"]} == {
        (4.0, ""): (84.0, 3.36), (10.0, ""): (21.6, 2.16), (22.0, ""): (354.8, 78.06), (0.0, "N1"): (12.0, 0.0)}
    assert (item["taxable_amount"], item["vat_amount"], item["total_amount"]) == (472.4, 83.58, 555.98)
    assert item["check"] == "ok", item["problems"]
    assert "5. Rimborso spese di spedizione anticipate in nome e per conto del cliente — 12,00 € (N1, senza IVA)" \
        in item["text"]
    assert "C.F. BNCLRA85M41F205C" in item["text"]


def test_a_file_with_two_bills_gives_two_items_and_withholding_does_not_reduce_the_total():
    first, second = read(NERI)
    assert [(i["invoice_index"], i["invoices_in_file"], i["number"], i["date"]) for i in (first, second)] == [
        (1, 2, "12/2025", "2025-02-10"), (2, 2, "13/2025", "2025-02-24")]
    assert first["document_kind"] == "parcella" and first["supplier"] == second["supplier"]
    assert (first["total_amount"], first["withholding_amount"], first["amount_due"]) == (1464.0, 240.0, 1224.0)
    assert (second["total_amount"], second["withholding_amount"], second["amount_due"]) == (976.0, 160.0, 816.0)
    assert first["check"] == second["check"] == "ok", (first["problems"], second["problems"])
    assert "Ritenuta d'acconto 240,00 €" in first["text"] and "Parcella n. 13/2025" in second["text"]


# --- the checks ----------------------------------------------------------------------------------------


def test_a_wrong_total_a_missing_due_date_and_a_bad_iban_make_an_invoice_doubtful_with_the_reasons():
    [item] = read(GIALLI)
    assert item["check"] == "da_verificare"
    assert item["problem_codes"] == ["total_mismatch", "due_date_missing", "iban_invalid"]
    assert item["problems"] == [
        "Il totale del documento (723,00 €) non è imponibile più IVA (600,00 € + 132,00 € = 732,00 €).",
        "Manca la data di scadenza del pagamento.",
        "L'IBAN IT02L0503401633000000008899 non è valido: le cifre di controllo non tornano.",
    ]
    assert item["due_date"] is None and item["total_amount"] == 723.0
    # The reason comes first, where the reviewer reads it.
    assert item["text"].startswith("Da verificare: Il totale del documento (723,00 €)")


def test_a_supplier_vat_number_with_a_wrong_check_digit_is_doubtful():
    [item] = read(BLU)
    assert item["check"] == "da_verificare" and item["problem_codes"] == ["supplier_vat_invalid"]
    assert item["problems"] == ["La partita IVA del fornitore (IT11223344550) non è valida: la cifra di controllo "
                                "non torna."]


def test_vat_that_is_not_its_rate_and_lines_that_do_not_make_the_taxable_amount_are_doubtful():
    data = sample(ROSSI).replace(b"<Imposta>96.14</Imposta>", b"<Imposta>86.14</Imposta>") \
        .replace(b"<ImportoTotaleDocumento>533.14", b"<ImportoTotaleDocumento>523.14")
    [item] = read_fatturapa(data, "iva.xml")
    assert item["problems"] == ["L'IVA al 22% (86,14 €) non corrisponde all'imponibile (437,00 €)."]
    data = sample(ROSSI).replace(b"<PrezzoTotale>77.00</PrezzoTotale>", b"<PrezzoTotale>87.00</PrezzoTotale>")
    [item] = read_fatturapa(data, "righe.xml")
    assert item["problems"] == ["Le righe al 22% sommano 447,00 €, ma il riepilogo IVA dichiara un imponibile di "
                                "437,00 €."]


def test_a_credit_note_needs_no_due_date_and_a_missing_total_is_a_reason():
    data = sample(GIALLI).replace(b"<TipoDocumento>TD01", b"<TipoDocumento>TD04") \
        .replace(b"<ImportoTotaleDocumento>723.00</ImportoTotaleDocumento>", b"")
    [item] = read_fatturapa(data, "nota.xml")
    assert item["document_kind"] == "nota di credito" and item["total_amount"] is None
    assert item["problems"] == ["Manca l'importo totale del documento."]
    assert item["text"].splitlines()[1].startswith("Nota di credito n. 2025-000881")


# --- signed invoices (.p7m) -------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", ["rsa", "ecdsa"])
def test_a_signed_invoice_reads_like_its_xml_and_says_the_signature_was_verified(key_type):
    envelope = signed(sample(ROSSI), key_type)
    name = ROSSI + ".p7m"
    assert is_fatturapa(envelope, name)
    [item] = read_fatturapa(envelope, name)
    [plain] = read(ROSSI)
    assert (item["signed"], item["signature_verified"], item["signer"]) == (True, True, "Mario Rossi")
    mine = {k: v for k, v in item.items() if k not in ("signed", "signature_verified", "signer", "text", "file_name")}
    assert mine == {k: v for k, v in plain.items() if k in mine}
    assert item["check"] == "ok" and item["text"].endswith("Firma digitale: verificata (Mario Rossi)")


def test_a_base64_envelope_and_an_envelope_signed_twice_are_opened():
    envelope = signed(sample(VERDI))
    [item] = read_fatturapa(base64.encodebytes(envelope), "fattura.xml.p7m")
    assert item["number"] == "27/A" and item["signature_verified"] is True
    [item] = read_fatturapa(signed(envelope), "fattura.xml.p7m.p7m")
    assert item["number"] == "27/A" and item["signature_verified"] is True


def test_an_invoice_altered_after_signing_is_read_but_doubtful():
    envelope = signed(sample(ROSSI)).replace(b"<ImportoPagamento>533.14", b"<ImportoPagamento>933.14")
    [item] = read_fatturapa(envelope, "alterata.xml.p7m")
    assert item["signature_verified"] is False and item["check"] == "da_verificare"
    assert item["problem_codes"] == ["signature_content_altered"]
    assert item["problems"] == ["La firma digitale non è valida: il documento è stato modificato dopo la firma."]
    assert "Firma digitale: non valida (Mario Rossi)" in item["text"]


def test_a_broken_signature_value_is_not_verified():
    envelope = bytearray(signed(sample(ROSSI)))
    envelope[-10] ^= 0xFF  # the signature value is the envelope's last field
    [item] = read_fatturapa(bytes(envelope), "firma.xml.p7m")
    assert item["signature_verified"] is False
    assert item["problems"] == ["La firma digitale non è valida."]


def test_envelopes_that_hold_no_invoice_are_refused_with_the_reason():
    error = refused(signed(sample(ROSSI), detached=True), "staccata.xml.p7m")
    assert "staccata.xml.p7m: the signed envelope (.p7m) cannot be opened: the signature is detached" in str(error)
    error = refused(b"not an envelope at all", "rotta.xml.p7m")
    assert str(error).startswith("rotta.xml.p7m: the signed envelope (.p7m) cannot be opened: it is not a "
                                 "CMS/PKCS#7 signed-data envelope")
    assert is_fatturapa(b"not an envelope at all", "rotta.xml.p7m")  # so that reading it says why
    text = signed(b"Contratto firmato, non una fattura.")
    assert not is_fatturapa(text, "contratto.txt.p7m")
    assert "contratto.txt.p7m is not a FatturaPA invoice: it is not well-formed XML" in str(refused(text,
                                                                                                    "contratto.txt.p7m"))


# --- what is refused, and how it says so ------------------------------------------------------------------


def test_files_that_are_not_invoices_are_told_apart_and_refused_with_the_reason():
    assert all(is_fatturapa(sample(name), name) for name in (ROSSI, VERDI, NERI, GIALLI, BLU))
    assert not is_fatturapa(sample("ordine_non_fattura.xml"), "ordine_non_fattura.xml")
    assert not is_fatturapa(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "fattura.pdf")
    error = refused(sample("ordine_non_fattura.xml"), "ordine_non_fattura.xml")
    assert str(error).startswith("ordine_non_fattura.xml is not a FatturaPA invoice: its root element is <Ordine> "
                                 "(urn:example:ordini:1.0), where an invoice has <FatturaElettronica>")
    error = refused(b"<FatturaElettronica><unclosed>", "tronca.xml")
    assert str(error).startswith("tronca.xml is not a FatturaPA invoice: it is not well-formed XML")
    simplified = (b'<?xml version="1.0"?><p:FatturaElettronicaSemplificata versione="FSM10" xmlns:p='
                  b'"http://ivaservizi.agenziaentrate.gov.it/docs/xsd/fatture/v1.0"/>')
    assert is_fatturapa(simplified, "s.xml")
    assert "s.xml is a simplified invoice (FatturaElettronicaSemplificata), which is not read yet" in str(
        refused(simplified, "s.xml"))
    version = sample(ROSSI).replace(b'versione="FPR12"', b'versione="FPR11"')
    assert 'versione="FPR11" is not a FatturaPA 1.2 format' in str(refused(version, "v.xml"))


def test_a_field_invalid_against_the_schema_is_named_by_its_path():
    error = refused(sample("data_non_iso.xml"), "data_non_iso.xml")
    assert str(error) == ("data_non_iso.xml is not a valid FatturaPA invoice: FatturaElettronicaBody/DatiGenerali/"
                          "DatiGeneraliDocumento/Data: Date '10/03/2025' does not begin with YYYY-mm-dd.")
    error = refused(sample("senza_numero.xml"), "senza_numero.xml")
    assert str(error).startswith("senza_numero.xml is not a valid FatturaPA invoice: FatturaElettronicaBody[1]/"
                                 "DatiGenerali/DatiGeneraliDocumento/Numero: missing value")
    stray = sample(ROSSI).replace(b"<AliquotaIVA>22.00</AliquotaIVA>\n      </DettaglioLinee>\n      <DettaglioLinee>",
                                  b"<AliquotaIVA>22.00</AliquotaIVA><Sconto>5</Sconto>\n      </DettaglioLinee>\n"
                                  b"      <DettaglioLinee>", 1)
    error = refused(stray, "riga.xml")
    assert str(error) == ("riga.xml is not a valid FatturaPA invoice: FatturaElettronicaBody/DatiBeniServizi/"
                          "DettaglioLinee[1]/Sconto: an element the FatturaPA schema does not allow here.")
    twice = sample(ROSSI).replace(b"<Divisa>EUR</Divisa>", b"<Divisa>EUR</Divisa><Divisa>USD</Divisa>")
    assert "DatiGeneraliDocumento/Divisa[1]: appears 2 times where it may appear once" in str(refused(twice, "d.xml"))
    bad_amount = sample(ROSSI).replace(b"<Imposta>96.14</Imposta>", b"<Imposta>96,14</Imposta>")
    assert "DatiBeniServizi/DatiRiepilogo/Imposta: '96,14' cannot be converted to Decimal" in str(
        refused(bad_amount, "a.xml"))


def test_the_error_is_a_value_error_with_a_translatable_message():
    error = refused(sample("ordine_non_fattura.xml"), "o.xml")
    assert isinstance(error, ValueError) and error.filename == "o.xml"
    assert isinstance(error.message, Text) and error.message.template.startswith("%(file)s is not a FatturaPA")
    assert error.message.params["file"] == "o.xml"


def test_progress_of_works_which_a38_does_not_model_is_skipped_not_refused():
    data = sample(ROSSI).replace(b"    </DatiGenerali>", b"      <DatiSAL><RiferimentoFase>3</RiferimentoFase>"
                                 b"</DatiSAL>\n    </DatiGenerali>")
    [item] = read_fatturapa(data, "sal.xml")
    assert item["number"] == "FT-2025/0042" and item["check"] == "ok"


# --- hostile XML -------------------------------------------------------------------------------------


def test_external_entities_are_refused_before_anything_is_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("the secret")
    xxe = sample(ROSSI).replace(
        b'<?xml version="1.0" encoding="UTF-8"?>',
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE p:FatturaElettronica [<!ENTITY x SYSTEM '
        f'"file://{secret}">]>'.encode()).replace(b"<Causale>Intervento", b"<Causale>&x; Intervento")
    assert is_fatturapa(xxe, "xxe.xml")  # it claims to be one: reading it says why it is refused
    error = refused(xxe, "xxe.xml")
    assert str(error).startswith("xxe.xml declares a DTD or entities, which an invoice never does: refused")
    assert "the secret" not in str(error)


def test_a_billion_laughs_is_refused_at_once():
    laughs = b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">' + b"".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">'.encode() for i in range(1, 10)) + \
        b']>\n<FatturaElettronica versione="FPR12">&lol9;</FatturaElettronica>'
    assert "declares a DTD or entities" in str(refused(laughs, "lol.xml"))


def test_a_file_over_the_sdi_limit_is_refused_with_the_limit():
    big = sample(ROSSI).replace(b"</p:FatturaElettronica>", b"<!--" + b"x" * MAX_BYTES + b"--></p:FatturaElettronica>")
    error = refused(big, "grande.xml")
    assert str(error).startswith("grande.xml is 5.0 MB: an invoice file may be at most 5 MB (the SdI's own limit)")
