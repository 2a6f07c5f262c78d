from __future__ import annotations

from workflows.runtimes.patterns import (
    codice_fiscale_check,
    find_patterns,
    iban_valid,
    parse_number,
    partita_iva_valid,
)


def kinds(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for span in find_patterns(text):
        found.setdefault(span.kind, []).append(span.value)
    return found


def test_iban_checksum_accepts_valid_and_rejects_one_wrong_digit():
    assert iban_valid("IT60X0542811101000000123456")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("IT60X0542811101000000123457")
    assert kinds("IBAN IT60 X054 2811 1010 0000 0123 457 grazie").get("iban") is None


def test_iban_stops_at_its_country_length():
    assert kinds("pay to DE89370400440532013000 TODAY")["iban"] == ["DE89370400440532013000"]


def test_partita_iva_check_digit():
    assert partita_iva_valid("01234567897")
    assert not partita_iva_valid("01234567890")
    assert kinds("P.IVA 01234567897")["vat"] == ["01234567897"]
    assert "vat" not in kinds("P.IVA 01234567890")


def test_codice_fiscale_check_character():
    assert codice_fiscale_check("RSSMRA85T10A562S") == "S"
    assert kinds("CF: RSSMRA85T10A562S.")["codice_fiscale"] == ["RSSMRA85T10A562S"]
    assert "codice_fiscale" not in kinds("CF: RSSMRA85T10A562X.")


def test_amounts_in_italian_and_english_formats():
    spans = {
        s.value: s.normalized for s in find_patterns("€ 1.234,56 or EUR 1,234.56 or $99.90 or 250 euro", ["amount"])
    }
    assert spans == {
        "€ 1.234,56": {"amount": 1234.56, "currency": "EUR"},
        "EUR 1,234.56": {"amount": 1234.56, "currency": "EUR"},
        "$99.90": {"amount": 99.9, "currency": "USD"},
        "250 euro": {"amount": 250.0, "currency": "EUR"},
    }
    assert parse_number("1.234.567") == 1234567.0
    assert parse_number("12,5") == 12.5


def test_dates_in_english_and_italian_formats():
    spans = {
        s.value: s.normalized
        for s in find_patterns(
            "12/03/2025, 12 marzo 2025, March 12, 2025, 1° aprile 2024, 2025-03-12, 31/02/2025", ["date"]
        )
    }
    assert spans == {
        "12/03/2025": "2025-03-12",
        "12 marzo 2025": "2025-03-12",
        "March 12, 2025": "2025-03-12",
        "1° aprile 2024": "2024-04-01",
        "2025-03-12": "2025-03-12",
    }


def test_phone_numbers_and_not_order_numbers():
    found = kinds("Call +39 06 6982 3000, 347 123 4567 or (0039) 02-1234567; order 12345678.")
    assert found["phone"] == ["+39 06 6982 3000", "347 123 4567", "(0039) 02-1234567"]


def test_emails_and_that_an_iban_is_not_a_phone():
    found = kinds("Write to anna.bianchi+fatture@studio-legale.it about IT60 X054 2811 1010 0000 0123 456.")
    assert found["email"] == ["anna.bianchi+fatture@studio-legale.it"]
    assert "phone" not in found
