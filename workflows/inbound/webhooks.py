"""Signed inbound webhooks: a third-party system (a CRM, a ticketing tool, a form service) POSTs its own
JSON to /hooks/<slug>/, and the source's mapping turns it into items of the workflow's live run.

How a sender signs a delivery (the convention of Stripe and GitHub):

    X-Factory-Timestamp: <Unix time in seconds>
    X-Factory-Signature: sha256=<hex HMAC-SHA256, keyed with the secret, of "<timestamp>.<raw body>">
    Idempotency-Key: <an id of this delivery, the same on every retry of it>

    ts=$(date +%s)
    sig=$(printf '%s.%s' "$ts" "$body" | openssl dgst -sha256 -hmac "$secret" -hex | sed 's/^.* //')

The signature covers the timestamp, so a captured delivery cannot be replayed with a fresh one; one
replayed as it was is refused once its timestamp is older than the source's window (300 s by default,
either side of the server's clock), and inside the window its idempotency key answers it with what
the first delivery got, creating nothing. The key is required for that reason. The signature does not
cover the Idempotency-Key header, so a signed message (timestamp and body) is also taken under one key
only: replayed inside the window with a key of its own, it is refused (409), not taken as new.

Checks run cheapest and least revealing first: the caller's address within its rate, the body within
its cap, the source by its slug (404), then the signature (401) — so nothing past "no such address"
is said to a caller without the secret — then enabled (403), the timestamp, the JSON, the key and the
mapping (400, naming the pointer or field at fault). Deliveries that pass the signature are kept in a
ledger (accepted ones for their key; refused ones, the last few, for the source's page to show why).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils.translation import gettext, ngettext

from workflows.engine import launch
from workflows.engine.intake import MAX_CELL_CHARS, json_loads, oversized_fields
from workflows.models import WebhookDelivery, WebhookSource

from . import secrets
from .mapping import Mapping, MappingError, NotFound, resolve

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Factory-Timestamp"
SIGNATURE_HEADER = "X-Factory-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
SCHEME = "sha256="
MAX_KEY_CHARS = 255
ORIGIN = "webhook"
SLUG = re.compile(r"[A-Za-z0-9_-]{1,40}")  # what webhook_sources draws; anything else is no address


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class Refused(Exception):
    """A delivery refused: `answer` is what the sender is told."""

    def __init__(self, status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any):
        self.answer = Answer(status, {"detail": detail, "code": code, **extra}, headers or {})
        super().__init__(detail)


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The X-Factory-Signature value a sender computes for `body` sent at `timestamp`."""
    message = str(timestamp).encode() + b"." + body
    return SCHEME + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def payload_digest(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- throttling ------------------------------------------------------------------------------------
# Fixed windows counted in the cache (Redis in production, shared by every web process), as the login
# throttle counts: every request per address per minute, and failed authentications (unknown
# address, bad signature) per address per WEBHOOK_FAILURE_WINDOW, so that guessing slugs or secrets
# stops long before it could succeed.


def sender_network(address: str) -> str:
    """What the throttle counts as one sender: an IPv4 address, or the /64 of an IPv6 one. Whoever holds
    an IPv6 address holds its /64 (2^64 addresses, the smallest block a subscriber gets), and would
    otherwise start a fresh count with each of them."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _bucket(kind: str, address: str, window: int, now: float) -> tuple[str, int]:
    start = int(now // window) * window
    digest = hashlib.sha256(sender_network(address).encode()).hexdigest()[:32]
    return f"hooks:{kind}:{digest}:{start}", max(1, math.ceil(start + window - now))


def _incr(key: str, window: int) -> int:
    cache.add(key, 0, timeout=window + 1)
    try:
        return cache.incr(key)
    except ValueError:  # the window ended between add and incr
        cache.set(key, 1, timeout=window + 1)
        return 1


def _throttle(address: str, now: float) -> None:
    failures_key, failures_left = _bucket("failures", address, settings.WEBHOOK_FAILURE_WINDOW, now)
    if (cache.get(failures_key) or 0) >= settings.WEBHOOK_FAILURE_LIMIT:
        raise Refused(429, "too_many_failures", gettext("Too many failed deliveries from your address: try again "
                                                        "in %(seconds)s s.") % {"seconds": failures_left},
                      {"Retry-After": str(failures_left)})
    rate_key, rate_left = _bucket("rate", address, 60, now)
    if _incr(rate_key, 60) > settings.WEBHOOK_RATE_LIMIT:
        raise Refused(429, "rate_limited", ngettext(
            "More than %(limit)s delivery a minute from your address: try again in %(seconds)s s.",
            "More than %(limit)s deliveries a minute from your address: try again in %(seconds)s s.",
            settings.WEBHOOK_RATE_LIMIT) % {"limit": settings.WEBHOOK_RATE_LIMIT, "seconds": rate_left},
            {"Retry-After": str(rate_left)})


def _failed(address: str, now: float) -> None:
    key, _ = _bucket("failures", address, settings.WEBHOOK_FAILURE_WINDOW, now)
    _incr(key, settings.WEBHOOK_FAILURE_WINDOW)


# --- the checks ----------------------------------------------------------------------------------


def read_body(stream: Any, content_length: Any) -> bytes:
    cap = settings.WEBHOOK_MAX_BYTES
    declared = str(content_length or "")
    if declared.isdigit() and int(declared) > cap:
        raise Refused(413, "too_large", gettext("The body is %(size)s bytes; an inbound webhook takes at most "
                                                "%(limit)s. Send fewer documents per delivery.")
                      % {"size": declared, "limit": cap})
    body = stream.read(cap + 1)
    if len(body) > cap:
        raise Refused(413, "too_large", gettext("The body is over %(limit)s bytes, the most an inbound webhook "
                                                "takes. Send fewer documents per delivery.") % {"limit": cap})
    return body


def _signatures(header: str) -> list[str]:
    found = [part.strip() for part in header.split(",") if part.strip()]
    if not found or not all(part.startswith(SCHEME) for part in found):
        raise Refused(401, "bad_signature_format", gettext(
            "%(header)s must be 'sha256=' followed by the hex HMAC-SHA256 of '<timestamp>.<body>'.")
            % {"header": SIGNATURE_HEADER})
    return found


def verify(source: WebhookSource, headers: Any, body: bytes, now: float) -> None:
    """Refused (401) unless the delivery is signed with the source's current secret within its window."""
    missing = [name for name in (TIMESTAMP_HEADER, SIGNATURE_HEADER) if not headers.get(name)]
    if missing:
        raise Refused(401, "missing_headers", ngettext(
            "The header %(headers)s is missing: sign each delivery (see the source's page).",
            "The headers %(headers)s are missing: sign each delivery (see the source's page).", len(missing))
            % {"headers": ", ".join(missing)})
    timestamp = headers[TIMESTAMP_HEADER].strip()
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise Refused(401, "bad_timestamp", gettext("%(header)s must be the Unix time in seconds, e.g. %(example)s.")
                      % {"header": TIMESTAMP_HEADER, "example": int(now)})
    offered = _signatures(headers[SIGNATURE_HEADER])
    try:
        secret = secrets.decrypt(source.secret_encrypted)
    except secrets.SecretsUnavailable:
        logger.exception("inbound webhook %s: its secret cannot be decrypted", source.pk)
        raise Refused(503, "unavailable", gettext("The server cannot verify deliveries at the moment; retry later."),
                      {"Retry-After": "60"}) from None
    expected = sign(secret, timestamp, body)
    # compare_digest for every candidate: how long the check takes says nothing of how much matched.
    if not any([hmac.compare_digest(expected.encode(), candidate.lower().encode()) for candidate in offered]):
        raise Refused(401, "bad_signature", gettext(
            "The signature does not match: compute the HMAC-SHA256 of '<timestamp>.<raw body>' with the source's "
            "current secret, over the exact bytes sent."))
    age = int(now) - int(timestamp)
    if abs(age) > source.replay_window:
        said = {"header": TIMESTAMP_HEADER, "seconds": abs(age), "window": source.replay_window}
        if age > 0:
            raise Refused(401, "stale_timestamp", gettext(
                "%(header)s is %(seconds)s s old; deliveries are taken within %(window)s s of the server's clock. "
                "Sign each delivery when it is sent, and keep the sender's clock set.") % said)
        raise Refused(401, "stale_timestamp", gettext(
            "%(header)s is %(seconds)s s in the future; deliveries are taken within %(window)s s of the server's "
            "clock. Sign each delivery when it is sent, and keep the sender's clock set.") % said)


def parse_payload(body: bytes) -> Any:
    if not body.strip():
        raise Refused(400, "empty_body", gettext("The body is empty: send the JSON document."))
    try:
        return json_loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise Refused(400, "not_json", gettext("The body is not UTF-8 text: send JSON in UTF-8.")) from None
    except ValueError as exc:
        raise Refused(400, "not_json", gettext("The body is not usable JSON: %(error)s.") % {"error": exc}) from None


def idempotency_key(source: WebhookSource, headers: Any, payload: Any) -> str:
    if source.idempotency_pointer:
        try:
            value = resolve(payload, source.idempotency_pointer)
        except NotFound as exc:
            raise Refused(400, "missing_idempotency_key", gettext(
                "The idempotency key pointer '%(pointer)s' found nothing: %(why)s. Every delivery needs its own "
                "id there, the same on retries.") % {"pointer": source.idempotency_pointer, "why": exc.why}) from None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise Refused(400, "bad_idempotency_key", gettext(
                "The idempotency key at '%(pointer)s' must be text or a whole number.")
                % {"pointer": source.idempotency_pointer})
        key, where = str(value).strip(), f"'{source.idempotency_pointer}'"
    else:
        key, where = (headers.get(IDEMPOTENCY_HEADER) or "").strip(), IDEMPOTENCY_HEADER
        if not key:
            raise Refused(400, "missing_idempotency_key", gettext(
                "The header %(header)s is missing: give every delivery an id of its own, the same on retries, so "
                "that a retry never makes the same items twice.") % {"header": IDEMPOTENCY_HEADER})
    if not key or len(key) > MAX_KEY_CHARS or not key.isprintable():
        raise Refused(400, "bad_idempotency_key", gettext(
            "The idempotency key (%(where)s) must be 1 to %(limit)s printable characters.")
            % {"where": where, "limit": MAX_KEY_CHARS})
    return key


def signed_once(source: WebhookSource, headers: Any, body: bytes, key: str, now: float) -> None:
    """Refused (409) when this signed message (its timestamp and body) came before under another
    idempotency key. The key travels in a header the signature does not cover: without this, whoever
    captured a delivery could replay it inside the window with a key of their own and make its items
    again. A sender's retry repeats the key and passes; the payload-pointer key comes from the signed
    body and always does. Remembered in the cache (shared by every web process) until the timestamp
    leaves the window, after which the window refuses the replay anyway."""
    timestamp = headers[TIMESTAMP_HEADER].strip()
    message = hashlib.sha256(timestamp.encode() + b"." + body).hexdigest()[:40]
    remembered = f"hooks:signed:{source.pk}:{message}"
    left = max(1, int(timestamp) + source.replay_window - int(now) + 1)
    if cache.add(remembered, key, timeout=left):
        return
    first = cache.get(remembered)
    if first is not None and first != key:
        raise Refused(409, "replayed_delivery", gettext(
            "This signed delivery (the same timestamp and body) was received before with another idempotency "
            "key. A retry keeps the key of its first try; a new delivery is signed when it is sent."))


def items_of(source: WebhookSource, payload: Any) -> list[dict[str, Any]]:
    """The items the source's mapping makes of `payload`, or Refused (400) naming every problem."""
    mapping = Mapping(source.mapping, source.items_pointer, tuple(launch.source_fields(source.workflow, ORIGIN)))
    try:
        items = mapping.items(payload)
    except MappingError as exc:
        raise Refused(400, "mapping", exc.message, problems=exc.problems) from None
    limit = settings.ENGINE_INTAKE_MAX_ITEMS
    if len(items) > limit:
        raise Refused(400, "too_many_items", gettext("The delivery holds %(count)s documents; send at most "
                                                     "%(limit)s per delivery.") % {"count": len(items), "limit": limit})
    long = oversized_fields(items)
    if long:
        said = "; ".join(gettext("item %(item)s: '%(field)s'") % {"item": i, "field": name} for i, name in long[:20])
        raise Refused(400, "too_long", gettext("Text longer than %(limit)s characters (%(items)s): split such a "
                                               "document into parts.")
                      % {"limit": f"{MAX_CELL_CHARS:,}", "items": said})
    return items


# --- a delivery ----------------------------------------------------------------------------------


def _accepted_answer(delivery: WebhookDelivery, replayed: bool) -> Answer:
    body = {"delivery": delivery.pk, "run": delivery.run_id, "item_ids": delivery.item_ids}
    return Answer(202, body, {REPLAYED_HEADER: "true"} if replayed else {})


def _earlier(source: WebhookSource, key: str, digest: str) -> Answer | None:
    earlier = WebhookDelivery.objects.filter(source=source, idempotency_key=key,
                                             status=WebhookDelivery.ACCEPTED).first()
    if earlier is None:
        return None
    if earlier.payload_sha256 != digest:
        raise Refused(409, "idempotency_key_reused", gettext(
            "The idempotency key '%(key)s' was used for a different payload at %(when)s: each delivery needs a key "
            "of its own.") % {"key": key, "when": earlier.received_at.isoformat(timespec="seconds")})
    return _accepted_answer(earlier, replayed=True)


def _refusal(source: WebhookSource, key: str, digest: str, answer: Answer) -> None:
    """Keep an authenticated refusal's reason for the source's page (its last REFUSALS_KEPT)."""
    with transaction.atomic():
        WebhookDelivery.objects.create(source=source, idempotency_key=key[:MAX_KEY_CHARS], payload_sha256=digest,
                                       status=WebhookDelivery.REFUSED, reason=str(answer.body.get("detail", ""))[:4000])
        old = (WebhookDelivery.objects.filter(source=source, status=WebhookDelivery.REFUSED)
               .values_list("id", flat=True)[WebhookDelivery.REFUSALS_KEPT:])
        WebhookDelivery.objects.filter(id__in=list(old)).delete()


def accept(source: WebhookSource, key: str, digest: str, items: list[dict[str, Any]]) -> Answer:
    """Items into the workflow's live webhook run and the ledger row, in one transaction; a key seen
    before answers what it got then and creates nothing."""
    with transaction.atomic():
        # One delivery of a source at a time from here to the ledger row: the key's check and its row
        # cannot interleave with a concurrent retry's (the unique constraint would refuse the second
        # anyway; the lock turns that into the same 202 instead of an error).
        WebhookSource.objects.select_for_update().filter(pk=source.pk).first()
        earlier = _earlier(source, key, digest)
        if earlier is not None:
            return earlier
        run, ids = launch.append_to_live_run(source.workflow, items, user=None, origin=ORIGIN)
        delivery = WebhookDelivery.objects.create(source=source, idempotency_key=key, payload_sha256=digest,
                                                  status=WebhookDelivery.ACCEPTED, run=run, item_ids=ids)
    return _accepted_answer(delivery, replayed=False)


def receive(slug: str, *, headers: Any, stream: Any, content_length: Any = None, address: str = "",
            now: float | None = None) -> Answer:
    """Answer one POST to /hooks/<slug>/ (`headers` case-insensitive, `stream` the request body)."""
    now = time.time() if now is None else now
    try:
        _throttle(address, now)
        body = read_body(stream, content_length)
        source = (WebhookSource.objects.select_related("workflow").filter(slug=slug).first()
                  if SLUG.fullmatch(slug) else None)
        if source is None:
            _failed(address, now)
            raise Refused(404, "not_found", gettext("No inbound webhook at this address."))
        try:
            verify(source, headers, body, now)
        except Refused as refused:
            if refused.answer.status == 401:
                _failed(address, now)
            raise
        if not source.enabled:
            raise Refused(403, "disabled", gettext("This inbound webhook is disabled: its designers can enable it "
                                                   "again."))
    except Refused as refused:
        return refused.answer
    # Authenticated from here: a refusal is kept for the source's page.
    key, digest = "", ""
    try:
        payload = parse_payload(body)
        digest = payload_digest(payload)
        key = idempotency_key(source, headers, payload)
        signed_once(source, headers, body, key, now)
        earlier = _earlier(source, key, digest)  # a retry is answered even if the mapping changed since
        if earlier is not None:
            return earlier
        items = items_of(source, payload)
        try:
            return accept(source, key, digest, items)
        except launch.StartError as exc:
            raise Refused(409, "workflow_not_ready", gettext(
                "The workflow cannot take items from this webhook now: %(problems)s")
                % {"problems": " ".join(exc.problems)}, problems=exc.problems) from None
    except Refused as refused:
        _refusal(source, key, digest, refused.answer)
        return refused.answer

