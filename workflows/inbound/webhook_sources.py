"""Setting up inbound webhooks: create a source for a workflow, rotate its secret, disable it, edit how
it reads a delivery, and try that reading on a sample payload. The one write path of the pages and
the API; creating, rotating, disabling and editing each write an audit entry in the same transaction.

The secret is returned by `create_source` and `rotate_secret` only: the caller shows it once, and
after that only its last four characters exist anywhere outside the encrypted column.
"""

from __future__ import annotations

import json
import secrets as random
import shlex
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from workflows.engine import launch
from workflows.engine.intake import json_loads
from workflows.models import WebhookSource
from workflows.models.audit import record
from workflows.models.webhooks import DEFAULT_REPLAY_WINDOW

from . import secrets
from .mapping import Mapping, MappingError, NotFound, PointerError, example, mapping_problems, resolve
from .webhooks import IDEMPOTENCY_HEADER, ORIGIN, SIGNATURE_HEADER, TIMESTAMP_HEADER

SECRET_PREFIX = "whsec_"
SETTINGS = ("name", "mapping", "items_pointer", "idempotency_pointer", "replay_window")
MIN_WINDOW, MAX_WINDOW = 30, 3600
MAX_SAMPLE_BYTES = 1024 * 1024


class SourceInvalid(ValueError):
    """Settings that cannot be saved: `problems` by setting name, each saying what to fix."""

    def __init__(self, problems: dict[str, list[str]]):
        self.problems = problems
        super().__init__(" ".join(m for ms in problems.values() for m in ms))


def new_secret() -> str:
    return SECRET_PREFIX + random.token_urlsafe(32)


def required_fields(workflow: Any) -> list[str]:
    """The fields every item of the workflow's inbound webhook source carries (its node's settings)."""
    return launch.source_fields(workflow, ORIGIN)


def default_mapping(workflow: Any) -> dict[str, str]:
    return {name: "/" + name for name in required_fields(workflow)}


def settings_problems(workflow: Any, values: dict[str, Any],
                      instance: WebhookSource | None = None) -> dict[str, list[str]]:
    problems = mapping_problems(values.get("mapping"), values.get("items_pointer", ""),
                                values.get("idempotency_pointer", ""), required_fields(workflow))
    name = values.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.setdefault("name", []).append(gettext("Give the inbound webhook a name, e.g. the sending system's."))
    elif len(name.strip()) > 120:
        problems.setdefault("name", []).append(gettext("At most 120 characters."))
    elif (WebhookSource.objects.filter(workflow=workflow, name=name.strip())
          .exclude(pk=getattr(instance, "pk", None)).exists()):
        problems.setdefault("name", []).append(gettext("This workflow already has an inbound webhook with this name."))
    window = values.get("replay_window")
    if isinstance(window, bool) or not isinstance(window, int) or not MIN_WINDOW <= window <= MAX_WINDOW:
        problems.setdefault("replay_window", []).append(
            gettext("A whole number of seconds from %(low)s to %(high)s.") % {"low": MIN_WINDOW, "high": MAX_WINDOW})
    return problems


def _clean(workflow: Any, values: dict[str, Any], instance: WebhookSource | None) -> dict[str, Any]:
    current = {name: getattr(instance, name) for name in SETTINGS} if instance else {
        "name": "", "mapping": default_mapping(workflow), "items_pointer": "", "idempotency_pointer": "",
        "replay_window": DEFAULT_REPLAY_WINDOW}
    merged = {**current, **{k: v for k, v in values.items() if k in SETTINGS}}
    for name in ("items_pointer", "idempotency_pointer"):
        merged[name] = merged[name] or ""
    if isinstance(merged["name"], str):
        merged["name"] = merged["name"].strip()
    problems = settings_problems(workflow, merged, instance)
    if problems:
        raise SourceInvalid(problems)
    return merged


def create_source(workflow: Any, values: dict[str, Any], *, user: Any) -> tuple[WebhookSource, str]:
    """A new enabled source and its secret (to show once). SourceInvalid names every bad setting;
    secrets.SecretsUnavailable when the server has no key to encrypt with."""
    cleaned = _clean(workflow, values, None)
    secret = new_secret()
    encrypted = secrets.encrypt(secret)
    for _attempt in range(3):
        try:
            with transaction.atomic():
                source = WebhookSource.objects.create(
                    workflow=workflow, slug=random.token_urlsafe(18), secret_encrypted=encrypted,
                    secret_last4=secret[-4:], created_by=user if getattr(user, "is_authenticated", False) else None,
                    **cleaned)
                record("webhook_source.create", actor=user, obj=source, workflow=workflow.pk, name=source.name,
                       mapping=source.mapping, items_pointer=source.items_pointer,
                       idempotency_pointer=source.idempotency_pointer, replay_window=source.replay_window)
            return source, secret
        except IntegrityError:  # a slug drawn twice (2^-144), or a name taken since the check
            if WebhookSource.objects.filter(workflow=workflow, name=cleaned["name"]).exists():
                raise SourceInvalid({"name": [gettext("This workflow already has an inbound webhook with this "
                                                      "name.")]}) from None
    raise RuntimeError("could not draw a free slug")


def update_source(source: WebhookSource, values: dict[str, Any], *, user: Any) -> WebhookSource:
    """Change how the source reads deliveries (name, mapping, pointers, replay window); never the secret."""
    cleaned = _clean(source.workflow, values, source)
    with transaction.atomic():
        current = WebhookSource.objects.select_for_update().get(pk=source.pk)
        before = {name: getattr(current, name) for name in SETTINGS}
        changed = {name: value for name, value in cleaned.items() if before[name] != value}
        if changed:
            WebhookSource.objects.filter(pk=source.pk).update(**changed)
            record("webhook_source.update", actor=user, obj=source, workflow=source.workflow_id,
                   before={k: before[k] for k in changed}, after=changed)
    for name, value in cleaned.items():
        setattr(source, name, value)
    return source


def rotate_secret(source: WebhookSource, *, user: Any) -> str:
    """A new secret (to show once); the old one stops verifying at once."""
    secret = new_secret()
    encrypted = secrets.encrypt(secret)
    now = timezone.now()
    with transaction.atomic():
        WebhookSource.objects.filter(pk=source.pk).update(secret_encrypted=encrypted, secret_last4=secret[-4:],
                                                          rotated_at=now)
        record("webhook_source.rotate", actor=user, obj=source, workflow=source.workflow_id,
               old_last4=source.secret_last4, new_last4=secret[-4:])
    source.secret_encrypted, source.secret_last4, source.rotated_at = encrypted, secret[-4:], now
    return secret


def set_enabled(source: WebhookSource, enabled: bool, *, user: Any) -> bool:
    """Enable or disable; False when it already was (nothing written, nothing audited)."""
    with transaction.atomic():
        changed = WebhookSource.objects.filter(pk=source.pk, enabled=not enabled).update(enabled=enabled)
        if changed:
            record("webhook_source.enable" if enabled else "webhook_source.disable", actor=user, obj=source,
                   workflow=source.workflow_id)
    source.enabled = enabled
    return bool(changed)


@dataclass
class Preview:
    """What a sample payload makes: the items (no run is started) and the delivery's key, or why not."""

    items: list[dict[str, Any]] = field(default_factory=list)
    key: str = ""
    problems: list[str] = field(default_factory=list)


def preview(source: WebhookSource, sample: str, values: dict[str, Any] | None = None) -> Preview:
    """Read `sample` (the JSON text a sender would post) with the source's settings, or with unsaved
    `values` (the form being edited). Nothing is stored."""
    settings = {name: getattr(source, name) for name in SETTINGS}
    settings.update({k: v for k, v in (values or {}).items() if k in SETTINGS and v is not None})
    problems = mapping_problems(settings["mapping"], settings["items_pointer"] or "",
                                settings["idempotency_pointer"] or "", required_fields(source.workflow))
    if problems:
        return Preview(problems=[m for ms in problems.values() for m in ms])
    if len(sample.encode()) > MAX_SAMPLE_BYTES:
        return Preview(problems=[gettext("The sample is over %(limit)s bytes.") % {"limit": MAX_SAMPLE_BYTES}])
    if not sample.strip():
        return Preview(problems=[gettext("Paste a sample payload: the JSON a sender would post.")])
    try:
        payload = json_loads(sample)
    except ValueError as exc:
        return Preview(problems=[gettext("The sample is not usable JSON: %(error)s.") % {"error": exc}])
    result = Preview()
    if settings["idempotency_pointer"]:
        try:
            result.key = str(resolve(payload, settings["idempotency_pointer"]))
        except NotFound as exc:
            result.problems.append(gettext("The idempotency key pointer '%(pointer)s' found nothing: %(why)s.")
                                   % {"pointer": settings["idempotency_pointer"], "why": exc.why})
    mapping = Mapping(settings["mapping"], settings["items_pointer"] or "", tuple(required_fields(source.workflow)))
    try:
        result.items = mapping.items(payload)
    except MappingError as exc:
        result.problems += exc.problems
    return result


def sample_payload(source: WebhookSource) -> str:
    try:
        document = example(source.mapping, source.items_pointer, source.idempotency_pointer)
    except PointerError:
        document = {"text": "…"}
    return json.dumps(document, ensure_ascii=False)


def curl_example(source: WebhookSource, url: str, secret: str | None = None) -> str:
    """A shell script that signs a sample delivery with openssl and posts it with curl. The secret is
    written in only when it is being shown anyway (at creation and rotation)."""
    secret_line = (f"secret={shlex.quote(secret)}" if secret else
                   "secret='whsec_…'  # " + gettext("the secret shown when the webhook was created or last rotated "
                                                    "(it ends in %(last4)s)") % {"last4": source.secret_last4})
    key_line = ("" if source.idempotency_pointer else
                'key="delivery-$(date +%s)"  # ' + gettext("your own id of this delivery: the same on every retry")
                + "\n")
    key_header = "" if source.idempotency_pointer else f'  -H "{IDEMPOTENCY_HEADER}: $key" \\\n'
    return (
        f"{secret_line}\n"
        f"body={shlex.quote(sample_payload(source))}\n"
        "ts=$(date +%s)\n"
        "sig=$(printf '%s.%s' \"$ts\" \"$body\" | openssl dgst -sha256 -hmac \"$secret\" | sed 's/^.*= //')\n"
        f"{key_line}"
        f"curl -sS -X POST {shlex.quote(url)} \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        f'  -H "{TIMESTAMP_HEADER}: $ts" \\\n'
        f'  -H "{SIGNATURE_HEADER}: sha256=$sig" \\\n'
        f"{key_header}"
        '  --data-binary "$body"\n'
    )
