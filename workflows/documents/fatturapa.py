"""Italian e-invoices (FatturaPA 1.2: FPR12 between private parties, FPA12 to a public administration),
as the SdI delivers them, plain XML or signed (.p7m), turned into items. Pure Python: no Django.

`is_fatturapa` tells the upload dispatcher whether a file is one (cheaply, from its first bytes);
`read_fatturapa` gives one item per invoice body (a file may hold a batch of invoices from the same
supplier), each with an Italian summary as `text` and the invoice's fields (fatturapa_item.py). A file
that cannot be read raises FatturaPAError, whose `message` (a translatable Text) names the file and
what to fix: not XML, not an invoice, a field invalid against the schema (with its path), a signed
envelope that holds no document. Nothing is half-read: one bad body refuses the file.

The parsing and the schema rules are a38's (Apache-2.0, the FatturaPA model of Truelite); the XML is
parsed first by defusedxml with DTDs forbidden, as an invoice never has one: entity expansion (billion
laughs) and external entities cannot reach the parser. Files are capped at the SdI's own 5 MB limit.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as StdET
from collections import Counter
from typing import Any

import a38
from a38 import fields as a38_fields
from a38.validation import Validation
from defusedxml import DefusedXmlException
from defusedxml import ElementTree as SafeET

from workflows.graph.text import Text, _

from .fatturapa_item import body_item, signature_fields
from .p7m import EnvelopeError, looks_like_envelope, open_envelope

MAX_BYTES = 5 * 1024 * 1024  # the SdI refuses files over 5 MB, attachments included
NS = "http://ivaservizi.agenziaentrate.gov.it/docs/xsd/fatture/v1.2"
NS_SIMPLIFIED = "http://ivaservizi.agenziaentrate.gov.it/docs/xsd/fatture/v1.0"
FORMATS = {"FPR12": a38.FatturaPrivati12, "FPA12": a38.FatturaPA12}
ERRORS_LISTED = 5
# The root element, after the XML declaration, comments, processing instructions and a doctype (a file
# with a doctype is still recognised, so that reading it refuses it and says why).
ROOT = re.compile(r"^\ufeff?\s*(?:(?:<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^\[>]*(?:\[.*?\])?\s*>)\s*)*"
                  r"<(?:[A-Za-z_][\w.-]*:)?FatturaElettronica(?:Semplificata)?[\s>/]", re.DOTALL)


class FatturaPAError(ValueError):
    """Why a file cannot be read as an invoice: `message` is a Text (English, translated where shown)."""

    def __init__(self, filename: str, message: Text):
        self.filename = filename
        self.message = message
        super().__init__(str(message))


def is_fatturapa(data: bytes, filename: str) -> bool:
    """Whether the file is (or claims to be) a FatturaPA invoice: an XML whose root is
    <FatturaElettronica>, or a signed envelope holding one. A file named .p7m that is no envelope counts,
    so that reading it says what is wrong with it; a signed PDF does not."""
    if looks_like_envelope(data):
        if len(data) > MAX_BYTES:
            return True
        try:
            content, _signatures = open_envelope(data)
        except EnvelopeError:
            return True
        return _root_is_invoice(content)
    if (filename or "").lower().endswith(".p7m"):
        return True
    return _root_is_invoice(data)


def _root_is_invoice(data: bytes) -> bool:
    head = data[:16 * 1024]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = head.decode("utf-16", errors="ignore")
    else:
        text = head.decode("latin-1")
    return ROOT.match(text) is not None


def read_fatturapa(data: bytes, filename: str) -> list[dict[str, Any]]:
    """One item per invoice body of the file (see fatturapa_item.py for its fields), or FatturaPAError."""
    name = filename or "file"
    if len(data) > MAX_BYTES:
        raise FatturaPAError(name, _(
            "%(file)s is %(size)s MB: an invoice file may be at most %(limit)s MB (the SdI's own limit). Check "
            "that it is one invoice and not an archive of several.",
            file=name, size=f"{len(data) / 2**20:.1f}", limit=MAX_BYTES // 2**20))
    signatures = None
    if looks_like_envelope(data) or name.lower().endswith(".p7m"):
        try:
            data, signatures = open_envelope(data)
        except EnvelopeError as exc:
            raise FatturaPAError(name, _(
                "%(file)s: the signed envelope (.p7m) cannot be opened: %(detail)s. Send the .p7m as the SdI "
                "delivered it, or the XML invoice inside it.", file=name, detail=exc.detail)) from exc
    root = _parse(name, data)
    fattura = _load(name, root)
    _validate(name, fattura)
    bodies = fattura.fattura_elettronica_body
    signed = signature_fields(signatures)
    return [body_item(fattura, body, file=name, index=index, count=len(bodies), signature=signed)
            for index, body in enumerate(bodies, start=1)]


def _parse(name: str, data: bytes) -> StdET.Element:
    try:
        root = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise FatturaPAError(name, _(
            "%(file)s declares a DTD or entities, which an invoice never does: refused, as it could expand "
            "entities without end or read files and addresses (%(detail)s).", file=name, detail=type(exc).__name__)
        ) from exc
    except StdET.ParseError as exc:
        raise FatturaPAError(name, _("%(file)s is not a FatturaPA invoice: it is not well-formed XML (%(detail)s).",
                                     file=name, detail=str(exc))) from exc
    if root.tag == f"{{{NS_SIMPLIFIED}}}FatturaElettronicaSemplificata":
        raise FatturaPAError(name, _(
            "%(file)s is a simplified invoice (FatturaElettronicaSemplificata), which is not read yet: only "
            "ordinary invoices (FPR12, FPA12) are.", file=name))
    if root.tag != f"{{{NS}}}FatturaElettronica":
        namespace, _brace, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", root.tag)
        raise FatturaPAError(name, _(
            "%(file)s is not a FatturaPA invoice: its root element is <%(root)s>%(namespace)s, where an invoice "
            "has <FatturaElettronica> in the namespace %(expected)s.", file=name, root=local,
            namespace=f" ({namespace})" if namespace else "", expected=NS))
    version = root.get("versione")
    if version not in FORMATS:
        raise FatturaPAError(name, _(
            "%(file)s: versione=\"%(version)s\" is not a FatturaPA 1.2 format: use FPR12 (between private "
            "parties) or FPA12 (to a public administration).", file=name, version=version or ""))
    # DatiSAL (progress of works) is valid FatturaPA that a38 does not model; we do not read it either.
    for general in root.iter("DatiGenerali"):
        for progress in general.findall("DatiSAL"):
            general.remove(progress)
    return root


def _load(name: str, root: StdET.Element) -> Any:
    try:
        return a38.auto_from_etree(root)
    except (RuntimeError, TypeError, ValueError, ArithmeticError, AttributeError) as exc:
        found = _locate(FORMATS[root.get("versione", "")], root, "")
        where, problem = found if found else ("FatturaElettronica", str(exc))
        raise FatturaPAError(name, _("%(file)s is not a valid FatturaPA invoice: %(field)s: %(problem)s.",
                                     file=name, field=where, problem=problem)) from exc


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _locate(model: Any, element: StdET.Element, path: str) -> tuple[str, str] | None:
    """Where a38 stopped reading, walked the way it reads (a38 says what, not where): the path of the
    first element it cannot take and why."""
    tags = {field.get_xmltag(): field for field in model._meta.values()}
    counts = Counter(child.tag for child in element)
    seen: Counter[str] = Counter()
    for child in element:
        seen[child.tag] += 1
        field = tags.get(child.tag)
        label = _local(child.tag) + (f"[{seen[child.tag]}]" if counts[child.tag] > 1 else "")
        here = f"{path}/{label}" if path else label
        if field is None:
            return here, "an element the FatturaPA schema does not allow here"
        if not field.multivalue and counts[child.tag] > 1:
            return here, f"appears {counts[child.tag]} times where it may appear once"
        if isinstance(field, a38_fields.ModelField | a38_fields.ModelListField):
            found = _locate(field.model, child, here)
            if found:
                return found
            continue
        leaf = field.field if isinstance(field, a38_fields.ListField) else field
        try:
            leaf.clean_value(child.text)
        except (TypeError, ValueError, ArithmeticError) as exc:
            return here, str(exc)
    return None


def _validate(name: str, fattura: Any) -> None:
    validation = Validation()
    for key, field in fattura._meta.items():
        if key != "fattura_elettronica_body":
            field.validate(validation, getattr(fattura, key))
    fattura.validate_model(validation)
    bodies = fattura.fattura_elettronica_body
    if not bodies:
        validation.add_error(fattura._meta["fattura_elettronica_body"], "missing value")
    for index, body in enumerate(bodies):
        with validation.subfield(f"fattura_elettronica_body.{index}") as sub:
            body.validate_fields(sub)
        _body_rules(body, validation)
    if validation.errors:
        shown = [f"{_path(e.prefix, e.field)}: {e.msg}" + (f" (SdI {e.code})" if e.code else "")
                 for e in validation.errors[:ERRORS_LISTED]]
        more = len(validation.errors) - len(shown)
        raise FatturaPAError(name, _("%(file)s is not a valid FatturaPA invoice: %(problems)s%(more)s.", file=name,
                                     problems="; ".join(shown), more=f" (and {more} more)" if more else ""))


def _body_rules(body: Any, validation: Validation) -> None:
    """a38's own rules for a body. a38 0.1.8 crashes on every body with a withholding (Ritenuta SI on a
    line: it asks the list of DatiRitenuta for has_value()) before recording anything; then its two
    rules are checked here as it meant them."""
    try:
        body.validate_model(validation)
        return
    except AttributeError:
        pass
    document = body.dati_generali.dati_generali_documento
    lines = body.dati_beni_servizi.dettaglio_linee
    if any(line.ritenuta == "SI" for line in lines) and not document.dati_ritenuta:
        validation.add_error(document._meta["dati_ritenuta"], "field empty while a line has Ritenuta SI",
                             code="00411")
    if not body.dati_beni_servizi.dati_riepilogo and any(line.aliquota_iva is not None for line in lines):
        validation.add_error(body.dati_beni_servizi._meta["dati_riepilogo"],
                             "dati_riepilogo is empty while a line has an AliquotaIVA", code="00419")


def _path(prefix: str | None, field: Any) -> str:
    """a38's dotted Python path ("fattura_elettronica_body.0.dati_generali") as the XML's element path
    ("FatturaElettronicaBody[1]/DatiGenerali/…"), which is what a person finds in the file."""
    parts: list[str] = []
    model: Any = a38.FatturaPrivati12
    for part in (prefix or "").split("."):
        if not part:
            continue
        if part.isdigit() and parts:
            parts[-1] += f"[{int(part) + 1}]"
            continue
        known = model._meta.get(part) if model is not None else None
        if known is None:
            if parts[-1:] != ["…"]:
                parts.append("…")
            model = None
            continue
        parts.append(_local(known.get_xmltag()))
        model = getattr(known, "model", None)
    if model is not None and field not in model._meta.values() and parts[-1:] != ["…"]:
        parts.append("…")  # a rule a model checks on a field of a child model: a38 names the parent
    parts.append(_local(field.get_xmltag()))
    return "/".join(parts)
