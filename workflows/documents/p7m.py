"""Signed envelopes (.p7m, CAdES): the document inside, and whether its signature holds. Pure Python.

An Italian e-invoice often travels signed: a CMS SignedData (RFC 5652) with the XML inside, DER or
base64. We take the content out and check each signature with the certificate the envelope carries:
the content's digest against the signed `messageDigest` attribute, then the signature over the signed
attributes (RSA PKCS#1 v1.5, RSA-PSS or ECDSA). We do not check that certificate against the EU
trusted lists of qualified CAs: that needs the lists from the network, which a worker does not have.
So `verified` means "the content is what the holder of the enclosed certificate signed, unaltered",
not "the holder is who the certificate says"; a missing CA bundle never refuses a document.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from asn1crypto import cms
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

# An envelope inside an envelope (signed twice, one after the other) happens; deeper is not a document.
MAX_DEPTH = 3
HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1, "sha224": hashes.SHA224, "sha256": hashes.SHA256, "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
BASE64 = re.compile(rb"^[A-Za-z0-9+/=\s]+$")
PEM = re.compile(rb"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END [A-Z0-9 ]+-----", re.DOTALL)
# DER: a SEQUENCE whose first element is the signedData OID (1.2.840.113549.1.7.2), in the first bytes.
SIGNED_DATA_OID = bytes.fromhex("06092a864886f70d010702")


class EnvelopeError(ValueError):
    """The bytes are not a signed envelope with its content inside; `detail` says what is wrong (English)."""

    def __init__(self, detail: str):
        self.detail = detail
        super().__init__(detail)


@dataclass(frozen=True)
class Signature:
    """One signer's signature. `problem` is empty when verified, else one of: no_certificate (the
    envelope does not enclose the signer's certificate), unsupported_algorithm, content_altered (the
    content's digest is not the one signed), bad_signature."""

    verified: bool
    signer: str
    problem: str = ""


def _der(data: bytes) -> bytes:
    """DER from the encodings signing tools write: DER as it is, PEM, or bare base64 (with line breaks)."""
    stripped = data.strip()
    if stripped.startswith(b"0"):  # 0x30, a DER SEQUENCE
        return data
    pem = PEM.search(stripped)
    if pem:
        stripped = pem.group(1)
    if BASE64.match(stripped):
        try:
            return base64.b64decode(b"".join(stripped.split()), validate=True)
        except (binascii.Error, ValueError):
            pass
    return data


def looks_like_envelope(data: bytes) -> bool:
    """Whether the bytes start like a CMS SignedData (DER, PEM or base64); cheap, decides nothing more."""
    head = data.lstrip()[:4096]
    if head[:1] != b"0":
        if head.startswith(b"-----BEGIN"):
            head = head.partition(b"\n")[2]
        compact = b"".join(head.split())
        try:
            head = base64.b64decode(compact[: len(compact) // 4 * 4], validate=True)
        except (binascii.Error, ValueError):
            return False
    return head[:1] == b"0" and SIGNED_DATA_OID in head[:32]


def open_envelope(data: bytes) -> tuple[bytes, list[Signature]]:
    """The document inside a signed envelope (envelopes inside it opened too) and every signature met
    on the way, outermost first. Raises EnvelopeError when the bytes are no SignedData or hold no content
    (a detached signature)."""
    signatures: list[Signature] = []
    content = data
    for _ in range(MAX_DEPTH):
        content, found = _open_one(content)
        signatures.extend(found)
        if not looks_like_envelope(content):
            return content, signatures
    raise EnvelopeError(f"the envelope holds envelopes more than {MAX_DEPTH} levels deep")


def _open_one(data: bytes) -> tuple[bytes, list[Signature]]:
    der = _der(data)
    try:
        info = cms.ContentInfo.load(der)
        if info["content_type"].native != "signed_data":
            raise EnvelopeError(f"it is a CMS {info['content_type'].native}, not signed data")
        signed = info["content"]
        encap = signed["encap_content_info"]
        content = encap["content"].native if encap["content"] is not None else None
        if content is None:
            raise EnvelopeError("the signature is detached: the envelope holds no document (the invoice must be "
                                "inside the .p7m)")
        if not isinstance(content, bytes):
            raise EnvelopeError("the signed content is not a document (bytes)")
        certificates = [c.chosen for c in (signed["certificates"] or []) if c.name == "certificate"]
        signatures = [_verify(s, certificates, content, encap["content_type"].dotted)
                      for s in signed["signer_infos"]]
    except EnvelopeError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        # asn1crypto parses lazily: a malformed structure surfaces as any of these when first read.
        raise EnvelopeError(f"it is not a CMS/PKCS#7 signed-data envelope ({exc})") from exc
    if not signatures:
        raise EnvelopeError("the envelope has no signer")
    return content, signatures


def _certificate(sid: Any, certificates: list[Any]) -> Any:
    if sid.name == "issuer_and_serial_number":
        issuer, serial = sid.chosen["issuer"], sid.chosen["serial_number"].native
        return next((c for c in certificates if c.serial_number == serial and c.issuer == issuer), None)
    return next((c for c in certificates if c.key_identifier == sid.chosen.native), None)


def _signer_name(certificate: Any) -> str:
    subject = certificate.subject.native
    return str(subject.get("common_name") or certificate.subject.human_friendly)


def _verify(info: Any, certificates: list[Any], content: bytes, content_type: str) -> Signature:
    certificate = _certificate(info["sid"], certificates)
    if certificate is None:
        return Signature(False, "", "no_certificate")
    signer = _signer_name(certificate)
    digest_name = info["digest_algorithm"]["algorithm"].native
    if digest_name not in HASHES:
        return Signature(False, signer, "unsupported_algorithm")
    attributes = info["signed_attrs"]
    if attributes.native is not None:
        found = {a["type"].native: a["values"][0] for a in attributes}
        digest = hashes.Hash(HASHES[digest_name]())
        digest.update(content)
        if "message_digest" not in found or found["message_digest"].native != digest.finalize():
            return Signature(False, signer, "content_altered")
        if "content_type" in found and found["content_type"].dotted != content_type:
            return Signature(False, signer, "content_altered")
        # The signature covers the attributes' DER with the SET tag, not the [0] tag they are stored under.
        signed_bytes = b"\x31" + attributes.dump()[1:]
    else:
        signed_bytes = content
    try:
        key = x509.load_der_x509_certificate(certificate.dump()).public_key()
        _check(key, info["signature_algorithm"], info["signature"].native, signed_bytes, HASHES[digest_name])
    except InvalidSignature:
        return Signature(False, signer, "bad_signature")
    except (UnsupportedAlgorithm, ValueError, TypeError, KeyError):
        return Signature(False, signer, "unsupported_algorithm")
    return Signature(True, signer)


def _check(key: Any, algorithm: Any, signature: bytes, data: bytes, digest: type[hashes.HashAlgorithm]) -> None:
    kind = algorithm.signature_algo
    if kind == "rsassa_pkcs1v15" and isinstance(key, rsa.RSAPublicKey):
        key.verify(signature, data, padding.PKCS1v15(), digest())
    elif kind == "rsassa_pss" and isinstance(key, rsa.RSAPublicKey):
        params = algorithm["parameters"]
        pss_hash = HASHES[params["hash_algorithm"]["algorithm"].native]
        mgf_hash = HASHES[params["mask_gen_algorithm"]["parameters"]["algorithm"].native]
        key.verify(signature, data, padding.PSS(padding.MGF1(mgf_hash()), params["salt_length"].native), pss_hash())
    elif kind == "ecdsa" and isinstance(key, ec.EllipticCurvePublicKey):
        key.verify(signature, data, ec.ECDSA(digest()))
    else:
        raise UnsupportedAlgorithm(f"{kind} with a {type(key).__name__}")
