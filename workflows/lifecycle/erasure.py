"""Erasure on request (GDPR art. 17): find every place holding a person's e-mail address, codice
fiscale or full name, show what was found, and erase it once an administrator confirms.

Two steps, so that nobody erases blind: `search` finds (lifecycle/places.py), records the request
with a confirmation token and answers counts per place with a few masked samples; `confirm` takes the
token and the identifier again, finds once more (what arrived meanwhile is erased too) and erases, in
one transaction. The identifier itself is never stored: the request row and both audit entries keep
an HMAC of it (a key the database does not hold, a salt of its own per request), the counts, who and
when — enough to show that a request was honoured without keeping the data it erased.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from workflows import statuses
from workflows.models import ErasureRequest, Item
from workflows.models.audit import record
from workflows.roles import require

from . import ledger, places

TOKEN_MINUTES = 30
MIN_LENGTH, MAX_LENGTH = 5, 254
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The codice fiscale: 6 letters, 2 digits, a letter, 2 digits, a letter and 3 digits, a check letter;
# omocodia replaces digits with L M N P Q R S T U V.
TAX_CODE = re.compile(r"^[A-Z]{6}[0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{2}[A-Z][0-9LMNP-V]{3}[A-Z]$", re.IGNORECASE)
NAME = re.compile(r"^[^\W\d_]{2,}(?:[ '’.-]+[^\W\d_]+)*$")


class ErasureError(ValidationError):
    """The request cannot go on; the message says what to do."""


def check_identifier(raw: Any) -> tuple[str, str]:
    """(the identifier as searched, its kind: email, tax_code or name) or ErasureError saying what to type.
    A single word is refused: a surname alone names many people, and erasure cannot be undone."""
    value = " ".join(str(raw or "").split())
    if not MIN_LENGTH <= len(value) <= MAX_LENGTH:
        raise ErasureError(gettext("Enter the person's e-mail address, codice fiscale or full name (%(min)s to "
                                   "%(max)s characters).") % {"min": MIN_LENGTH, "max": MAX_LENGTH})
    if EMAIL.match(value):
        return value, "email"
    if TAX_CODE.match(value):
        return value, "tax_code"
    if NAME.match(value) and " " in value:
        return value, "name"
    raise ErasureError(gettext("'%(value)s' is neither an e-mail address, a codice fiscale nor a full name: a name "
                               "needs first name and surname (letters only), so that other people with the same "
                               "surname are not erased.") % {"value": value[:80]})


def needles(value: str, kind: str) -> list[str]:
    """What is searched for an identifier: a name in each order of its words that keeps them in turn
    (Italian registers and forms write the surname first: "Rossi Mario", "Bianchi Maria Rosa")."""
    if kind != "name":
        return [value]
    words = value.split(" ")
    return list(dict.fromkeys(" ".join(words[i:] + words[:i]) for i in range(len(words))))


def _key() -> bytes:
    key = getattr(settings, "ERASURE_HASH_KEY", "") or ""
    return key.encode() if key else hashlib.sha256(b"erasure-identifier:" + settings.SECRET_KEY.encode()).digest()


def identifier_hash(salt: str, value: str) -> str:
    return hmac.new(_key(), f"{salt}:{value.lower()}".encode(), hashlib.sha256).hexdigest()


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Search:
    request: ErasureRequest
    token: str
    found: dict[str, places.Found]
    # Documents of runs still working: what their steps write after the erasure is not erased.
    in_active_runs: int

    @property
    def total(self) -> int:
        return sum(f.count for f in self.found.values())

    @property
    def places(self) -> list[places.Found]:
        """What was found, place by place in the order pages list them."""
        return list(self.found.values())


def _counts(found: dict[str, places.Found]) -> dict[str, int]:
    return {kind: f.count for kind, f in found.items()}


def search(raw: Any, *, user: Any) -> Search:
    """Find every place holding the identifier; the request to confirm, with its token (shown once)."""
    require(user, "data.erase")
    value, kind = check_identifier(raw)
    found = places.find_any(needles(value, kind))
    active = Item.objects.filter(pk__in=found["items"].ids, run__status__in=statuses.ACTIVE_RUN_STATUSES).count()
    token, salt = secrets.token_urlsafe(32), secrets.token_hex(16)
    with transaction.atomic():
        request = ErasureRequest.objects.create(
            token_hash=_token_hash(token), salt=salt, identifier_hash=identifier_hash(salt, value), kind=kind,
            found=_counts(found), requested_by=user, expires_at=timezone.now() + dt.timedelta(minutes=TOKEN_MINUTES))
        record("erasure.search", actor=user, obj=request, kind=kind, identifier_hash=request.identifier_hash,
               salt=salt, found=request.found)
    return Search(request, token, found, active)


def confirm(token: Any, raw: Any, *, user: Any) -> ErasureRequest:
    """Erase what the search behind `token` looks for; the request, with the counts erased.
    ErasureError when the token is unknown, used or expired, or the identifier is not the one searched."""
    require(user, "data.erase")
    request = ErasureRequest.objects.filter(token_hash=_token_hash(str(token or ""))).first()
    if request is None:
        raise ErasureError(gettext("This confirmation is unknown: search again, then confirm."))
    if request.status != ErasureRequest.SEARCHED:
        raise ErasureError(gettext("This search was confirmed already; search again to erase more."))
    if request.expires_at < timezone.now():
        raise ErasureError(gettext("This search expired (confirm within %(minutes)s minutes): search again.")
                           % {"minutes": TOKEN_MINUTES})
    value, kind = check_identifier(raw)
    if not hmac.compare_digest(identifier_hash(request.salt, value), request.identifier_hash):
        raise ErasureError(gettext("The identifier is not the one this search was made for: confirm with the same "
                                   "e-mail address, codice fiscale or name."))
    with transaction.atomic():
        now = timezone.now()
        if ErasureRequest.objects.filter(pk=request.pk, status=ErasureRequest.SEARCHED).update(
                status=ErasureRequest.ERASED, erased_by=user, erased_at=now) != 1:
            raise ErasureError(gettext("This search was confirmed already; search again to erase more."))
        erased: dict[str, int] = {}
        shas: set[str] = set()
        for needle in needles(value, kind):  # each order in turn: what one erased, the next no longer finds
            done, gone = places.erase_all(places.find_all(needle), needle)
            erased = {k: erased.get(k, 0) + n for k, n in done.items()}
            shas |= gone
        ErasureRequest.objects.filter(pk=request.pk).update(erased=erased)
        record("erasure.erase", actor=user, obj=request, kind=request.kind, identifier_hash=request.identifier_hash,
               salt=request.salt, erased=erased)
    ledger.remove_unreferenced(shas)
    request.refresh_from_db()
    return request
