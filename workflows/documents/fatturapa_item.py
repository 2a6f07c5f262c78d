"""One FatturaPA invoice body as an item: its fields, the checks a clerk makes before registering it,
and an Italian summary as `text` (what text models classify and a reviewer reads). Pure Python.

The item's fields:

    file_name, invoice_index, invoices_in_file which file, which of its bodies (1-based), how many
    format, document_type, document_kind       FPR12/FPA12, TD01…, "fattura", "nota di credito", …
    supplier, supplier_vat_id, supplier_tax_code, customer, customer_vat_id, customer_tax_code
    number, date (ISO), currency, description (the Causale), attachments (their names)
    lines: [{number, description, quantity, unit, unit_price, vat_rate, vat_nature, amount}]
    vat_summary: [{vat_rate, vat_nature, taxable, vat}]
    taxable_amount, vat_amount, total_amount, withholding_amount, amount_due
    payment_method (MP05…), iban, due_date (ISO, the earliest)
    signed, signature_verified (None when not signed), signer
    check: "ok" or "da_verificare" (what a route branches on)
    problem_codes: why, as codes (REASONS' keys); problems: the same, one Italian sentence each

Amounts, rates and quantities are JSON numbers, as the extract node gives amounts: formats.money()
shows a number and the Italian CSV export writes it with a decimal comma (a "533.14" string would
reach Italian Excel as text). The checks themselves compute in Decimal on the XML's own values.
A value the invoice does not give is None (an absent total stays absent: it is one of the checks).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from workflows.runtimes.patterns import codice_fiscale_check, iban_valid, partita_iva_valid

from .p7m import Signature

# The SdI's own tolerance (checks 00421 and 00422): one euro between the VAT, the taxable amount and
# the lines that make it up.
SDI_TOLERANCE = Decimal("1.00")
TEXT_LINES = 30  # lines shown in the summary; every line stays in `lines`
DESCRIPTION_CHARS = 300
KINDS = {
    "TD01": "fattura", "TD02": "acconto/anticipo su fattura", "TD03": "acconto/anticipo su parcella",
    "TD04": "nota di credito", "TD05": "nota di debito", "TD06": "parcella",
    "TD16": "integrazione fattura reverse charge interno", "TD17": "integrazione/autofattura per servizi dall'estero",
    "TD18": "integrazione per beni intracomunitari", "TD19": "integrazione/autofattura per beni ex art. 17 c. 2",
    "TD20": "autofattura per regolarizzazione", "TD21": "autofattura per splafonamento",
    "TD22": "estrazione beni da deposito IVA", "TD23": "estrazione beni da deposito IVA con versamento dell'IVA",
    "TD24": "fattura differita", "TD25": "fattura differita (triangolare interna)",
    "TD26": "cessione di beni ammortizzabili", "TD27": "fattura per autoconsumo o cessioni gratuite",
    "TD28": "acquisti da San Marino con IVA",
}
NO_PAYMENT = {"TD04"}  # a credit note is not paid: no due date or IBAN to check
METHODS = {
    "MP01": "contanti", "MP02": "assegno", "MP03": "assegno circolare", "MP05": "bonifico",
    "MP08": "carta di pagamento", "MP09": "RID", "MP12": "RIBA", "MP19": "SEPA Direct Debit",
    "MP21": "SEPA Direct Debit B2B", "MP23": "PagoPA",
}
# Why an invoice needs a person, by code. The sentences are part of the invoice's Italian summary (its
# `text`, what the reviewer reads and the text models see), data about an Italian tax document like the
# summary itself, not interface texts: they stay Italian whatever the reader's language. The codes are
# for programs (and for a page that would show the reasons in the reader's language).
REASONS = {
    "supplier_vat_invalid": "La partita IVA del fornitore ({vat}) non è valida: la cifra di controllo non torna.",
    "supplier_tax_code_invalid": "Il codice fiscale del fornitore ({code}) non è valido.",
    "vat_not_rate": "L'IVA {rate} ({vat}) non corrisponde all'imponibile ({taxable}).",
    "lines_not_taxable": "Le righe {rate} sommano {lines}, ma il riepilogo IVA dichiara un imponibile di {taxable}.",
    "total_missing": "Manca l'importo totale del documento.",
    "total_mismatch": "Il totale del documento ({total}) non è imponibile più IVA ({taxable} + {vat} = {expected}).",
    "due_date_missing": "Manca la data di scadenza del pagamento.",
    "iban_missing": "Il pagamento è un bonifico ma manca l'IBAN.",
    "iban_invalid": "L'IBAN {iban} non è valido: le cifre di controllo non tornano.",
    "signature_content_altered": "La firma digitale non è valida: il documento è stato modificato dopo la firma.",
    "signature_bad_signature": "La firma digitale non è valida.",
    "signature_no_certificate": "La firma digitale non è verificabile: la busta non contiene il certificato del "
                                "firmatario.",
    "signature_unsupported_algorithm": "La firma digitale non è verificabile: usa un algoritmo che non sappiamo "
                                       "verificare.",
}
Reason = tuple[str, str]  # (code, sentence)


def _reason(code: str, **params: Any) -> Reason:
    return code, REASONS[code].format(**params)


def signature_fields(signatures: list[Signature] | None) -> dict[str, Any]:
    """What every body of a file carries about the file's signatures (an XML file has none)."""
    if signatures is None:
        return {"signed": False, "signature_verified": None, "signer": "", "signature_reasons": []}
    reasons = [_reason(f"signature_{s.problem}") for s in signatures if not s.verified]
    return {"signed": True, "signature_verified": not reasons,
            "signer": ", ".join(dict.fromkeys(s.signer for s in signatures if s.signer)),
            "signature_reasons": list(dict.fromkeys(reasons))}


def body_item(fattura: Any, body: Any, *, file: str, index: int, count: int,
              signature: dict[str, Any]) -> dict[str, Any]:
    header = fattura.fattura_elettronica_header
    supplier = header.cedente_prestatore.dati_anagrafici
    customer = header.cessionario_committente.dati_anagrafici
    document = body.dati_generali.dati_generali_documento
    goods = body.dati_beni_servizi
    payments = [d for p in body.dati_pagamento for d in p.dettaglio_pagamento]
    taxable = sum((r.imponibile_importo for r in goods.dati_riepilogo), Decimal(0))
    vat = sum((r.imposta for r in goods.dati_riepilogo), Decimal(0))
    dues = sorted(d.data_scadenza_pagamento for d in payments if d.data_scadenza_pagamento)
    iban = next((_compact(d.iban) for d in payments if d.iban), "")
    item: dict[str, Any] = {
        "file_name": file, "invoice_index": index, "invoices_in_file": count,
        "format": fattura.get_versione(), "document_type": document.tipo_documento,
        "document_kind": KINDS.get(document.tipo_documento, document.tipo_documento),
        "supplier": _name(supplier.anagrafica), "supplier_vat_id": _fiscal_id(supplier.id_fiscale_iva),
        "supplier_tax_code": supplier.codice_fiscale or "",
        "customer": _name(customer.anagrafica), "customer_vat_id": _fiscal_id(customer.id_fiscale_iva),
        "customer_tax_code": customer.codice_fiscale or "",
        "number": document.numero, "date": document.data.isoformat(), "currency": document.divisa,
        "description": " ".join(c for c in document.causale if c),
        "attachments": [a.nome_attachment for a in body.allegati],
        "lines": [{"number": line.numero_linea, "description": line.descrizione, "quantity": _number(line.quantita),
                   "unit": line.unita_misura or "", "unit_price": _number(line.prezzo_unitario),
                   "vat_rate": _number(line.aliquota_iva), "vat_nature": line.natura or "",
                   "amount": _number(line.prezzo_totale)} for line in goods.dettaglio_linee],
        "vat_summary": [{"vat_rate": _number(r.aliquota_iva), "vat_nature": r.natura or "",
                         "taxable": _number(r.imponibile_importo), "vat": _number(r.imposta)}
                        for r in goods.dati_riepilogo],
        "taxable_amount": _number(taxable), "vat_amount": _number(vat),
        "total_amount": _number(document.importo_totale_documento),
        "withholding_amount": _number(sum((r.importo_ritenuta for r in document.dati_ritenuta), Decimal(0))),
        "amount_due": _number(sum((d.importo_pagamento for d in payments), Decimal(0))) if payments else None,
        "payment_method": payments[0].modalita_pagamento if payments else "",
        "iban": iban, "due_date": dues[0].isoformat() if dues else None,
        "signed": signature["signed"], "signature_verified": signature["signature_verified"],
        "signer": signature["signer"],
    }
    reasons = list(dict.fromkeys(_reasons(item, supplier, body, payments, taxable, vat)
                                 + signature["signature_reasons"]))
    item["check"] = "da_verificare" if reasons else "ok"
    item["problem_codes"] = [code for code, _sentence in reasons]
    item["problems"] = [sentence for _code, sentence in reasons]
    item["text"] = _text(item, body, payments, taxable, vat)
    return item


def _compact(value: str) -> str:
    return "".join(value.split()).upper()


def _name(anagrafica: Any) -> str:
    return (anagrafica.full_name or "").strip() if anagrafica is not None else ""


def _fiscal_id(value: Any) -> str:
    if value is None or not value.has_value():
        return ""
    return f"{value.id_paese or ''}{value.id_codice or ''}"


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


# --- checks ---------------------------------------------------------------------------------------


def _reasons(item: dict[str, Any], supplier: Any, body: Any, payments: list[Any], taxable: Decimal,
             vat: Decimal) -> list[Reason]:
    reasons = []
    vat_id = supplier.id_fiscale_iva
    if vat_id.id_paese == "IT" and not partita_iva_valid(vat_id.id_codice or ""):
        reasons.append(_reason("supplier_vat_invalid", vat=item["supplier_vat_id"]))
    code = (supplier.codice_fiscale or "").upper()
    if code and not (partita_iva_valid(code) if code.isdigit() else
                     len(code) == 16 and code.isalnum() and _cf_ok(code)):
        reasons.append(_reason("supplier_tax_code_invalid", code=code))
    document = body.dati_generali.dati_generali_documento
    currency = document.divisa
    reasons += _summary_reasons(body, currency)
    total = document.importo_totale_documento
    expected = taxable + vat + (document.arrotondamento or 0)
    if total is None:
        reasons.append(_reason("total_missing"))
    elif total != expected:
        reasons.append(_reason("total_mismatch", total=_money(total, currency), taxable=_money(taxable, currency),
                               vat=_money(vat, currency), expected=_money(expected, currency)))
    if document.tipo_documento not in NO_PAYMENT:
        if not item["due_date"]:
            reasons.append(_reason("due_date_missing"))
        for payment in payments:
            iban = _compact(payment.iban or "")
            if payment.modalita_pagamento == "MP05" and not iban:
                reasons.append(_reason("iban_missing"))
            elif iban and not iban_valid(iban):
                reasons.append(_reason("iban_invalid", iban=iban))
    return reasons


def _cf_ok(code: str) -> bool:
    try:
        return codice_fiscale_check(code) == code[15]
    except (KeyError, ValueError):
        return False


def _summary_reasons(body: Any, currency: str) -> list[Reason]:
    """The SdI's checks 00421 and 00422, each within a euro: the VAT of each rate is that rate of its
    taxable amount, and the taxable amount is what the lines at that rate (plus the pension fund's
    contribution, ancillary costs and rounding) add up to."""
    goods = body.dati_beni_servizi
    by_rate: dict[tuple[Decimal, str], Decimal] = defaultdict(Decimal)
    for line in goods.dettaglio_linee:
        by_rate[(line.aliquota_iva, line.natura or "")] += line.prezzo_totale or 0
    for fund in body.dati_generali.dati_generali_documento.dati_cassa_previdenziale:
        by_rate[(fund.aliquota_iva, fund.natura or "")] += fund.importo_contributo_cassa or 0
    reasons = []
    for row in goods.dati_riepilogo:
        rate = _rate(row.aliquota_iva, row.natura)
        if abs(row.imponibile_importo * row.aliquota_iva / 100 - row.imposta) > SDI_TOLERANCE:
            reasons.append(_reason("vat_not_rate", rate=rate, vat=_money(row.imposta, currency),
                                   taxable=_money(row.imponibile_importo, currency)))
        lines = by_rate.get((row.aliquota_iva, row.natura or ""), Decimal(0))
        declared = row.imponibile_importo - (row.spese_accessorie or 0) - (row.arrotondamento or 0)
        if abs(lines - declared) > SDI_TOLERANCE:
            reasons.append(_reason("lines_not_taxable", rate=rate, lines=_money(lines, currency),
                                   taxable=_money(row.imponibile_importo, currency)))
    return reasons


# --- the Italian summary --------------------------------------------------------------------------


def _italian(value: Decimal, places: int | None = 2) -> str:
    """1.234,50 — Italian grouping and decimal comma; places=None keeps the value's own decimals."""
    if places is None:
        value = value.normalize()
        exponent = value.as_tuple().exponent
        places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    text = f"{value:,.{places}f}"
    return text.replace(",", " ").replace(".", ",").replace(" ", ".")


def _money(value: Decimal | int, currency: str) -> str:
    value = Decimal(value)
    exponent = value.normalize().as_tuple().exponent
    shown = _italian(value, max(2, min(8, -exponent)) if isinstance(exponent, int) else 2)
    return f"{shown} €" if currency == "EUR" else f"{shown} {currency}"


def _rate(rate: Decimal, nature: str | None) -> str:
    return f"({nature}, senza IVA)" if nature else f"al {_italian(rate, None)}%"


def _date(value: dt.date) -> str:
    return value.strftime("%d/%m/%Y")


def _text(item: dict[str, Any], body: Any, payments: list[Any], taxable: Decimal, vat: Decimal) -> str:
    document = body.dati_generali.dati_generali_documento
    currency = document.divisa
    out = []
    if item["problems"]:
        out.append("Da verificare: " + " ".join(item["problems"]))
    kind = item["document_kind"]
    out.append(f"{kind[:1].upper()}{kind[1:]} n. {item['number']} del {_date(document.data)} "
               f"({item['document_type']}, {item['format']})")
    for role, who, vat_id, code in (("Fornitore", item["supplier"], item["supplier_vat_id"], item["supplier_tax_code"]),
                                    ("Cliente", item["customer"], item["customer_vat_id"], item["customer_tax_code"])):
        ids = [f"P.IVA {vat_id}"] if vat_id else []
        ids += [f"C.F. {code}"] if code and code not in vat_id else []
        out.append(f"{role}: {', '.join([who, *ids])}")
    if item["description"]:
        out.append(f"Causale: {item['description']}")
    lines = body.dati_beni_servizi.dettaglio_linee
    out.append("Righe:")
    for line in lines[:TEXT_LINES]:
        description = line.descrizione if len(line.descrizione) <= DESCRIPTION_CHARS else (
            line.descrizione[:DESCRIPTION_CHARS].rstrip() + "…")
        amount = _money(line.prezzo_totale, currency)
        if line.quantita is not None:
            unit = f" {line.unita_misura}" if line.unita_misura else ""
            amount = f"{_italian(line.quantita, None)}{unit} × {_money(line.prezzo_unitario, currency)} = {amount}"
        tax = f"IVA {_italian(line.aliquota_iva, None)}%" if not line.natura else f"{line.natura}, senza IVA"
        out.append(f"{line.numero_linea}. {description} — {amount} ({tax})")
    if len(lines) > TEXT_LINES:
        out.append(f"… e altre {len(lines) - TEXT_LINES} righe")
    total = document.importo_totale_documento
    out.append(f"Imponibile {_money(taxable, currency)}, IVA {_money(vat, currency)}, totale documento "
               + (_money(total, currency) if total is not None else "non indicato"))
    for withholding in document.dati_ritenuta:
        out.append(f"Ritenuta d'acconto {_money(withholding.importo_ritenuta, currency)}")
    for payment in payments:
        method = METHODS.get(payment.modalita_pagamento, payment.modalita_pagamento)
        parts = [f"Pagamento: {method}"]
        if payment.data_scadenza_pagamento:
            parts.append(f"scadenza {_date(payment.data_scadenza_pagamento)}")
        parts.append(_money(payment.importo_pagamento, currency))
        if payment.iban:
            parts.append(f"IBAN {_compact(payment.iban)}")
        out.append(", ".join(parts))
    if item["signed"]:
        state = "verificata" if item["signature_verified"] else "non valida"
        out.append(f"Firma digitale: {state}" + (f" ({item['signer']})" if item["signer"] else ""))
    return "\n".join(out)
